#!/usr/bin/python3
"""BatchNorm fixtures for issue 14 ("BatchNorm as MASE sees it"): a small ResNet-style model with
trained-looking (random, seeded) BatchNorm statistics, exported two ways, and PyTorch's outputs
under both quantization semantics.

Regenerate every file under tests/fixtures/bn/ with (from the repository root):

    /usr/bin/python3 tools/make_bn_fixtures.py

One CPU thread, a few seconds, deterministic.

Model (ResNetBN below): conv 3->8 (3x3, no bias) + BN + ReLU; a basic block with stride 2 (conv
8->16 + BN + ReLU, conv 16->16 + BN; downsample conv 8->16 1x1 WITH a bias + BN; add, ReLU); a
BatchNorm after the add (its input is an Add, not a conv: never folded); global average pool;
Linear 16->12 + BatchNorm1d + ReLU (a Gemm followed by BatchNormalization); Linear 12->10.
Every BatchNorm has random gamma in [0.3, 3], beta ~ N(0, 0.2), running mean ~ N(0, 0.3),
running var in [0.3, 2], so folding changes the weights a lot; fc2's weights are scaled by 4.

Files:
  resnet_bn_preserve.onnx   torch.onnx.export in eval mode with training=PRESERVE and
                            do_constant_folding=False: every BatchNormalization kept as a node
                            (what qsearch needs for MASE's semantics);
  resnet_bn_eval.onnx       the default eval export: PyTorch folds each BatchNorm into the conv
                            before it (the BN after the add and the BatchNorm1d stay);
  bn_ref.json               {"input_shape", "input" (multiples of 2^-5 in [-2, 2)), "labels",
                            "formats": {mase_op: {"data_in", "weight", "bias": {width, frac}}},
                            "float", "fake_mase", "fake_folded": flat logits [N, 10],
                            "loss_mase", "loss_folded": PyTorch's mean cross-entropy};
  bn_data.npz               the same inputs and labels (x, y) for `qsearch --dataset npz:`.

fake_mase is MASE's semantics (mase.md 6.2): conv2d / linear compute
op(q(x, data_in), q(W, weight), q(b, bias)) (bias float when absent), every BatchNorm stays a float
op. fake_folded is a deployment's: each BatchNorm directly after a conv / linear that it alone
reads is first folded into it (ir::fold_batch_norm's arithmetic, in float64, rounded once to
float32: a = gamma / sqrt(var + eps), W' = W * a per output channel, b' = (b - mean) * a + beta;
a conv without a bias gets one), then the same fake quantization; the BN after the add stays.
q(v) = clamp(round(v * 2^f), -2^(w-1), 2^(w-1)-1) / 2^f, round half to even.

A second model (LinConvTBN below) covers the other folds: ConvTranspose2d 3->8 (stride 2, no
bias) + BatchNorm2d + ReLU; grouped ConvTranspose2d 8->6 (groups 2, with a bias) + BatchNorm2d +
ReLU; global average pool; x @ W1 + b1 (a MatMul + bias Add linear) + BatchNorm1d + ReLU; x @ W2
(a MatMul without a bias) + BatchNorm1d + ReLU; Linear 10->8 (Gemm) + BatchNorm1d + ReLU; Linear
8->5. Same BatchNorm statistics distribution, same export (PRESERVE, no constant folding):
  linconvt_bn_preserve.onnx, linconvt_bn_ref.json (the keys of bn_ref.json; the formats also
  have convtranspose2d), linconvt_bn_data.npz. Its folded linears get b' even when they had no bias.
"""

import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMATS = {
    "conv2d": {"data_in": {"width": 8, "frac": 4}, "weight": {"width": 6, "frac": 4},
               "bias": {"width": 10, "frac": 5}},
    "linear": {"data_in": {"width": 8, "frac": 4}, "weight": {"width": 6, "frac": 4},
               "bias": {"width": 10, "frac": 5}},
}
FORMATS_CT = dict(FORMATS, convtranspose2d={"data_in": {"width": 8, "frac": 4},
                                            "weight": {"width": 6, "frac": 4},
                                            "bias": {"width": 10, "frac": 5}})


def q(x, fmt):
    w, f = fmt["width"], fmt["frac"]
    scale = 2.0 ** f
    return torch.clamp(torch.round(x * scale), -(2 ** (w - 1)), 2 ** (w - 1) - 1) / scale


class ResNetBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)
        self.b_conv1, self.b_bn1 = nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16)
        self.b_conv2, self.b_bn2 = nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.down, self.down_bn = nn.Conv2d(8, 16, 1, 2, 0, bias=True), nn.BatchNorm2d(16)
        self.post_bn = nn.BatchNorm2d(16)
        self.fc1, self.bn_fc = nn.Linear(16, 12), nn.BatchNorm1d(12)
        self.fc2 = nn.Linear(12, 10)
        self.quant = None  # "mase" | "folded" | None (float)
        self.folded = {}  # conv / linear name -> (W', b') for "folded"

    def lin(self, name, x):
        """conv / linear `name` under the active semantics."""
        mod = getattr(self, name)
        w, b = mod.weight, mod.bias
        if self.quant == "folded" and name in self.folded:
            w, b = self.folded[name]
        op = "linear" if isinstance(mod, nn.Linear) else "conv2d"
        if self.quant is not None:
            c = FORMATS[op]
            x, w = q(x, c["data_in"]), q(w, c["weight"])
            b = q(b, c["bias"]) if b is not None else None
        if op == "linear":
            return F.linear(x, w, b)
        return F.conv2d(x, w, b, mod.stride, mod.padding, mod.dilation, mod.groups)

    def bn(self, conv_name, bn_name, x):
        """The BatchNorm after conv / linear `conv_name`: skipped when folded into it."""
        if self.quant == "folded" and conv_name in self.folded:
            return x
        return getattr(self, bn_name)(x)

    def forward(self, x):
        x = F.relu(self.bn("conv1", "bn1", self.lin("conv1", x)))
        y = F.relu(self.bn("b_conv1", "b_bn1", self.lin("b_conv1", x)))
        y = self.bn("b_conv2", "b_bn2", self.lin("b_conv2", y))
        x = F.relu(y + self.bn("down", "down_bn", self.lin("down", x)))
        x = self.post_bn(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = F.relu(self.bn("fc1", "bn_fc", self.lin("fc1", x)))
        return self.lin("fc2", x)


PAIRS = (("conv1", "bn1"), ("b_conv1", "b_bn1"), ("b_conv2", "b_bn2"), ("down", "down_bn"),
         ("fc1", "bn_fc"))


def fold(model):
    """ir::fold_batch_norm's arithmetic: float64, rounded once to float32."""
    out = {}
    for conv_name, bn_name in PAIRS:
        conv, bn = getattr(model, conv_name), getattr(model, bn_name)
        g = bn.weight.detach().double()
        a = g / torch.sqrt(bn.running_var.double() + float(np.float32(bn.eps)))
        w = conv.weight.detach().double()
        w = (w * a.reshape(-1, *([1] * (w.dim() - 1)))).float()
        b0 = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(a)
        b = ((b0 - bn.running_mean.double()) * a + bn.bias.detach().double()).float()
        out[conv_name] = (w, b)
    return out


class LinConvTBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.ct1, self.bn_ct1 = nn.ConvTranspose2d(3, 8, 3, 2, 1, 1, bias=False), nn.BatchNorm2d(8)
        self.ct2 = nn.ConvTranspose2d(8, 6, 3, 1, 1, groups=2, bias=True)
        self.bn_ct2 = nn.BatchNorm2d(6)
        self.w1 = nn.Parameter(torch.randn(6, 12) * 0.5)
        self.b1 = nn.Parameter(torch.randn(12) * 0.2)
        self.bn_mm1 = nn.BatchNorm1d(12)
        self.w2 = nn.Parameter(torch.randn(12, 10) * 0.4)
        self.bn_mm2 = nn.BatchNorm1d(10)
        self.fc1, self.bn_fc = nn.Linear(10, 8), nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 5)
        self.quant = None  # "mase" | "folded" | None (float)
        self.folded = {}  # name -> (W', b')

    def params(self, name):
        """(weight, bias, op, kind) of conv / linear `name`, weight in its own layout."""
        if name == "mm1":
            return self.w1, self.b1, "linear", "matmul"
        if name == "mm2":
            return self.w2, None, "linear", "matmul"
        mod = getattr(self, name)
        if isinstance(mod, nn.Linear):
            return mod.weight, mod.bias, "linear", "linear"
        return mod.weight, mod.bias, "convtranspose2d", "convt"

    def lin(self, name, x):
        w, b, op, kind = self.params(name)
        if self.quant == "folded" and name in self.folded:
            w, b = self.folded[name]
        if self.quant is not None:
            c = FORMATS_CT[op]
            x, w = q(x, c["data_in"]), q(w, c["weight"])
            b = q(b, c["bias"]) if b is not None else None
        if kind == "matmul":
            y = x @ w
            return y + b if b is not None else y
        if kind == "linear":
            return F.linear(x, w, b)
        mod = getattr(self, name)
        return F.conv_transpose2d(x, w, b, mod.stride, mod.padding, mod.output_padding,
                                  mod.groups, mod.dilation)

    def bn(self, name, bn_name, x):
        if self.quant == "folded" and name in self.folded:
            return x
        return getattr(self, bn_name)(x)

    def forward(self, x):
        x = F.relu(self.bn("ct1", "bn_ct1", self.lin("ct1", x)))
        x = F.relu(self.bn("ct2", "bn_ct2", self.lin("ct2", x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = F.relu(self.bn("mm1", "bn_mm1", self.lin("mm1", x)))
        x = F.relu(self.bn("mm2", "bn_mm2", self.lin("mm2", x)))
        x = F.relu(self.bn("fc1", "bn_fc", self.lin("fc1", x)))
        return self.lin("fc2", x)


PAIRS_CT = (("ct1", "bn_ct1"), ("ct2", "bn_ct2"), ("mm1", "bn_mm1"), ("mm2", "bn_mm2"),
            ("fc1", "bn_fc"))


def fold_ct(model):
    """The same arithmetic per output channel: ConvTranspose weight [C, M/group, kH, kW] (channel
    (ci // (C/group)) * (M/group) + j), MatMul weight [K, M] (column o)."""
    out = {}
    for name, bn_name in PAIRS_CT:
        w, b, _, kind = model.params(name)
        bn = getattr(model, bn_name)
        a = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() +
                                                     float(np.float32(bn.eps)))
        w = w.detach().double()
        if kind == "matmul":
            w = w * a.reshape(1, -1)
        elif kind == "linear":
            w = w * a.reshape(-1, 1)
        else:
            groups = getattr(model, name).groups
            cin, per_out = w.shape[0], w.shape[1]
            scale = a.reshape(groups, 1, per_out).expand(groups, cin // groups, per_out)
            w = w * scale.reshape(cin, per_out, 1, 1)
        b0 = b.detach().double() if b is not None else torch.zeros_like(a)
        b = ((b0 - bn.running_mean.double()) * a + bn.bias.detach().double()).float()
        out[name] = (w.float(), b)
    return out


def randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.weight.copy_(torch.rand(c) * 2.7 + 0.3)
                m.bias.copy_(torch.randn(c) * 0.2)
                m.running_mean.copy_(torch.randn(c) * 0.3)
                m.running_var.copy_(torch.rand(c) * 1.7 + 0.3)


def write_linconvt(out_dir, common):
    torch.manual_seed(141)
    model = LinConvTBN()
    randomize_bn(model)
    with torch.no_grad():
        model.fc2.weight.mul_(4)
    model.eval()
    n = 8
    x = torch.randint(-64, 64, (n, 3, 5, 5)).float() / 32
    labels = torch.randint(0, 5, (n,))
    torch.onnx.export(model, x, os.path.join(out_dir, "linconvt_bn_preserve.onnx"),
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      **common)
    model.folded = fold_ct(model)
    out = {"input_shape": list(x.shape), "input": x.flatten().tolist(),
           "labels": labels.tolist(), "formats": FORMATS_CT}
    with torch.no_grad():
        for key, mode in (("float", None), ("fake_mase", "mase"), ("fake_folded", "folded")):
            model.quant = mode
            logits = model(x)
            out[key] = logits.flatten().tolist()
            if mode:
                out["loss_" + mode] = float(F.cross_entropy(logits, labels))
    np.savez(os.path.join(out_dir, "linconvt_bn_data.npz"), x=x.numpy(),
             y=labels.numpy().astype(np.int64))
    with open(os.path.join(out_dir, "linconvt_bn_ref.json"), "w") as f:
        json.dump(out, f)
    print(f"wrote linconvt_bn_preserve.onnx, linconvt_bn_ref.json; loss MASE "
          f"{out['loss_mase']:.5f}, folded {out['loss_folded']:.5f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                 "fixtures", "bn"))
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(14)
    model = ResNetBN()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.weight.copy_(torch.rand(c) * 2.7 + 0.3)
                m.bias.copy_(torch.randn(c) * 0.2)
                m.running_mean.copy_(torch.randn(c) * 0.3)
                m.running_var.copy_(torch.rand(c) * 1.7 + 0.3)
        model.fc2.weight.mul_(4)  # larger logits, so the two semantics' losses differ clearly
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    n = 8
    x = torch.randint(-64, 64, (n, 3, 16, 16)).float() / 32
    labels = torch.randint(0, 10, (n,))
    common = dict(opset_version=13, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    torch.onnx.export(model, x, os.path.join(args.out, "resnet_bn_preserve.onnx"),
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      **common)
    torch.onnx.export(model, x, os.path.join(args.out, "resnet_bn_eval.onnx"), **common)
    model.folded = fold(model)
    out = {"input_shape": list(x.shape), "input": x.flatten().tolist(),
           "labels": labels.tolist(), "formats": FORMATS}
    with torch.no_grad():
        for key, mode in (("float", None), ("fake_mase", "mase"), ("fake_folded", "folded")):
            model.quant = mode
            logits = model(x)
            out[key] = logits.flatten().tolist()
            if mode:
                out["loss_" + mode] = float(F.cross_entropy(logits, labels))
    model.quant = None
    np.savez(os.path.join(args.out, "bn_data.npz"), x=x.numpy(), y=labels.numpy().astype(np.int64))
    with open(os.path.join(args.out, "bn_ref.json"), "w") as f:
        json.dump(out, f)
    print(f"wrote resnet_bn_preserve.onnx, resnet_bn_eval.onnx, bn_ref.json to {args.out}; "
          f"loss MASE {out['loss_mase']:.5f}, folded {out['loss_folded']:.5f}")
    write_linconvt(args.out, common)


if __name__ == "__main__":
    main()
