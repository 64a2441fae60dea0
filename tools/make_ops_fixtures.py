#!/usr/bin/python3
"""Issue 11's operators that no other fixture exports from PyTorch at opsets 11, 13 and 17, in
small seeded models (random weights, no training), each with a quantizable Linear / Conv before
and after the op under test:

  seq_ops     Split, Slice (steps), Neg, Exp, Clip, Concat, ReduceSum, ReduceMax, Unsqueeze,
              Squeeze, Gather (x[:, 0]) on [N, 5, 12] tokens
  mask_ops    nn.Embedding of int64 ids [N, 7] (Gather), ids == 0 (Equal), unsqueeze + expand
              (Expand), torch.where(mask, zeros_like(h), h) (Where with a batch-dependent
              ConstantOfShape), ids != 0 (Not), Cast to float, ReduceSum, clamp (Clip), Div
  attn_axis1  attention over 2 heads with Softmax on axis 1 (the heads), batched MatMuls of two
              activations, a Linear on 3-D tokens (MatMul + Add)
  se_block    Hardswish (HardSigmoid + Mul below opset 14), asymmetric F.pad folded into a
              depthwise dilated Conv, SiLU (Sigmoid + Mul), squeeze-excitation (GlobalAveragePool,
              Sigmoid, Mul), Hardsigmoid, adaptive_max_pool2d (GlobalMaxPool)

Writes tests/fixtures/ops/<case>_opset<k>.onnx and ops_ref.json: per case the 16 inputs, the
float outputs and the outputs under MASE's integer fake quantization (every Linear / Conv2d and
activation matmul at data_in 8.4, weight 8.6, bias 16.8; matmul operand 1 at the weight
format: bench/torch_fakequant_eval.py's semantics). Read by tests/runtime/ops_fixture_test.cc.

  /usr/bin/python3 tools/make_ops_fixtures.py [--out tests/fixtures/ops]
"""
import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

Q = {"on": False}
FORMATS = {"data_in": (8, 4), "weight": (8, 6), "bias": (16, 8)}


def iq(x, wf):
    w, f = wf
    s = 2.0 ** f
    return torch.clamp(torch.round(x * s), -(2 ** (w - 1)), 2 ** (w - 1) - 1) / s


class QLinear(nn.Linear):
    def forward(self, x):
        if not Q["on"]:
            return super().forward(x)
        return F.linear(iq(x, FORMATS["data_in"]), iq(self.weight, FORMATS["weight"]),
                        iq(self.bias, FORMATS["bias"]))


class QConv2d(nn.Conv2d):
    def forward(self, x):
        if not Q["on"]:
            return super().forward(x)
        return self._conv_forward(iq(x, FORMATS["data_in"]), iq(self.weight, FORMATS["weight"]),
                                  iq(self.bias, FORMATS["bias"]))


def qmatmul(a, b):
    if not Q["on"]:
        return torch.matmul(a, b)
    return torch.matmul(iq(a, FORMATS["data_in"]), iq(b, FORMATS["weight"]))


class SeqOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = QLinear(12, 12), QLinear(13, 4)

    def forward(self, x):
        h = self.l1(x)
        a, b, c = torch.split(h, [4, 4, 4], dim=-1)
        e = torch.exp(c[:, ::2].clamp(max=3))
        z = torch.cat([a[:, 1:], -b[:, :-1], torch.cat([e, e], 1)[:, :4]], dim=-1)
        r = z.sum(1) + z.max(1).values
        m = r.unsqueeze(1).squeeze(1)
        return self.l2(torch.cat([m, h[:, 0, :1]], -1))


class MaskOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.e, self.l = nn.Embedding(20, 8), QLinear(8, 5)

    def forward(self, ids):
        h = self.e(ids)
        m = (ids == 0).unsqueeze(-1).expand(-1, -1, 8)
        h = torch.where(m, torch.zeros_like(h), h)
        n = (ids != 0).to(torch.float32).sum(1, keepdim=True).clamp(min=1)
        return self.l(h.sum(1) / n)


class AttnAxis1(nn.Module):
    def __init__(self, d=16, heads=2):
        super().__init__()
        self.qkv, self.o, self.h = QLinear(d, 3 * d), QLinear(d, 10), heads

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        a = torch.softmax(qmatmul(q, k.transpose(-2, -1)) / 2.0, dim=1)
        c = qmatmul(a, v).transpose(1, 2).reshape(B, T, d)
        return self.o(c.mean(1))


class SeBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = QConv2d(3, 8, 3, padding=1)
        self.dw = QConv2d(8, 8, 3, groups=8, dilation=2, padding=2)
        self.se1, self.se2 = QConv2d(8, 4, 1), QConv2d(4, 8, 1)
        self.pw = QConv2d(8, 6, 1)
        self.fc = QLinear(6, 5)

    def forward(self, x):
        h = F.hardswish(self.c1(x))
        h = F.pad(h, (0, 1, 1, 0))
        h = F.silu(self.dw(h))
        se = torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(h, 1)))))
        h = h * se
        h = F.hardsigmoid(self.pw(h)) * h[:, :6]
        return self.fc(F.adaptive_max_pool2d(h, 1).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "ops"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    n = 16

    def randn(*shape):  # on a 2^-8 grid: short decimals in the JSON, exact as float32
        return torch.round(torch.randn(*shape) * 256) / 256
    cases = {
        "seq_ops": (SeqOps(), randn(n, 5, 12)),
        "mask_ops": (MaskOps(), torch.randint(0, 20, (n, 7))),
        "attn_axis1": (AttnAxis1(), randn(n, 6, 16)),
        "se_block": (SeBlock(), randn(n, 3, 12, 12)),
    }
    ref = {"formats": {op: {k: {"width": w, "frac": f} for k, (w, f) in FORMATS.items()
                            if op == "linear" or op == "conv2d" or k != "bias"}
                       for op in ("linear", "conv2d", "matmul")},
           "cases": {}}
    for name, (m, x) in cases.items():
        m.eval()
        with torch.no_grad():
            Q["on"] = False
            y = m(x)
            Q["on"] = True
            yq = m(x)
            Q["on"] = False
        for opset in (11, 13, 17):
            torch.onnx.export(m, x[:2], os.path.join(args.out, f"{name}_opset{opset}.onnx"),
                              opset_version=opset, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        ref["cases"][name] = {
            "shape": list(x.shape),
            "dtype": "int64" if x.dtype == torch.int64 else "float32",
            "x": x.flatten().tolist(),
            "float": [[float("%.8g" % v) for v in row] for row in y.tolist()],
            "fake": [[float("%.8g" % v) for v in row] for row in yq.tolist()],
        }
    with open(os.path.join(args.out, "ops_ref.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
