#!/usr/bin/python3
"""1-D and 3-D pooling fixtures (issue 14): small seeded PyTorch models exported with
torch.onnx.export, with PyTorch's float outputs and MASE-semantics fake-quantized outputs, in the
format of tools/make_cnn_fixtures.py (whose quantizers this script reuses), read by the same
test (tests/runtime/cnn_fixture_test.cc).

Regenerate every file under tests/fixtures/nd/ with (from the repository root):

    /usr/bin/python3 tools/make_nd_fixtures.py

Models (each exported at opsets 11, 13 and 17 as <name>_opset<k>.onnx):
  conv1d_pool   Conv1d -> ReLU -> MaxPool1d(3, stride 2, padding 1) -> Conv1d -> AvgPool1d(3,
                stride 2, padding 1, ceil_mode, count_include_pad=False) -> flatten -> Linear.
  pool3d        MaxPool3d((2, 3, 3), stride (2, 2, 1), padding (1, 1, 0)) and AvgPool3d((3, 2,
                2), stride (1, 2, 2), padding (1, 1, 0), ceil_mode, count_include_pad=False) of
                the input, AdaptiveAvgPool3d(1) (GlobalAveragePool on 5-D) of the max pool, the
                three flattened and concatenated -> Linear.
  pool3d_dilated  MaxPool3d(2, dilation 2, padding 1) -> AvgPool3d(2, stride 2, padding 1)
                (count_include_pad) -> flatten -> Linear.
  conv3d_net    Conv3d(2, 6, (3, 3, 2), stride (1, 2, 1), padding (1, 1, 0)) -> BatchNorm3d
                (kept: MASE quantizes the conv's own weight) -> ReLU -> MaxPool3d(2) -> grouped
                Conv3d(6, 4, (2, 1, 3), dilation (1, 2, 1), padding (1, 0, 1), groups 2) ->
                AdaptiveAvgPool3d(1) -> flatten -> Linear.
  convt1d_net   Conv1d(3, 4, 3, padding 1) -> ReLU -> ConvTranspose1d(4, 6, 3, stride 2, padding
                1, output_padding 1) -> ReLU -> grouped ConvTranspose1d(6, 4, 2, dilation 2,
                groups 2, no bias) -> flatten -> Linear (qsearch imports the 1-D ConvTranspose
                as the 2-D one between views).
  convt3d_net   ConvTranspose3d(2, 4, (3, 2, 3), stride (2, 1, 2), padding (1, 0, 1),
                output_padding (1, 0, 1)) -> ReLU -> grouped ConvTranspose3d(4, 6, (2, 3, 2),
                stride (1, 2, 1), padding (1, 1, 0), output_padding (1, 1, 0), dilation (2, 1, 1),
                groups 2, no bias) -> AdaptiveAvgPool3d(1) -> flatten -> Linear (qsearch imports
                the 3-D ConvTranspose as a transposed Im2Col3d, the 2-D ConvTranspose of kernel
                (1, kW) and a view).
conv3d_net_data.npz, convt3d_net_data.npz: the two models' inputs (x) and labels 0, 1, 2 (y),
                for `qsearch --dataset npz:` (e2e export and train tests).

BatchNorm after N-D convolutions (`fold_batch_norm`; the format of tools/make_bn_fixtures.py's
linconvt_bn, read by tests/runtime/fold_batch_norm_test.cc and tests/e2e/batchnorm_e2e_test.cc):
  nd_bn         Conv3d(2, 6, (3, 3, 2), stride (1, 2, 1), padding (1, 1, 0)) + BatchNorm3d + ReLU
                -> grouped Conv3d(6, 4, (2, 1, 3), padding (0, 0, 1), groups 2, no bias) +
                BatchNorm3d + ReLU -> flatten(2) -> Conv1d(4, 6, 3, padding 1, no bias) +
                BatchNorm1d + ReLU -> ConvTranspose1d(6, 4, 3, stride 2, padding 1,
                output_padding 1) + BatchNorm1d + ReLU -> grouped ConvTranspose1d(4, 4, 2,
                dilation 2, groups 2, no bias) + BatchNorm1d -> mean over L -> Linear(4, 5).
                Random BatchNorm statistics (gamma in [0.3, 3], running var in [0.3, 2]).
  nd_bn_preserve.onnx  exported with training=PRESERVE, do_constant_folding=False (every
                BatchNormalization kept); nd_bn_eval.onnx  the default eval export (PyTorch folds
                the BatchNorm after each Conv itself); nd_bn_data.npz (x, y);
  nd_bn_ref.json  input, labels, formats (conv3d, conv1d, convtranspose2d, linear: data_in,
                weight, bias), "float", "fake_mase" (MASE: op(q(x), q(W), q(b)), BatchNorm
                float), "fake_folded" (each BatchNorm first folded into its conv as
                ir::fold_batch_norm does: float64, rounded once to float32, then the same
                quantization) and loss_mase / loss_folded.
Output nd_ref.json: as make_cnn_fixtures.py's cnn_ref.json, with fake quantization for the 3-D
convolutions as MASE's conv2d generalized (qsearch's `conv3d` key, conv2d's entries):
  conv3d:  F.conv3d(q(x, data_in), q(W, weight), b, ...)   (bias kept float)
and for the 1-D transposed convolutions as MASE's convtranspose2d key (conv2d's entries):
  convtranspose2d:  F.conv_transpose1d(q(x, data_in), q(W, weight), b, ...)
and for the 3-D ones as qsearch's convtranspose3d key (conv2d's entries):
  convtranspose3d:  F.conv_transpose3d(q(x, data_in), q(W, weight), b, ...)
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_cnn_fixtures as cnn  # noqa: E402  (q, conv, linear, fmt and the QCFG switch)


class Conv1dPool(nn.Module):
    def __init__(self, length):
        super().__init__()
        self.c1 = nn.Conv1d(3, 6, 3, padding=1)
        self.pool1 = nn.MaxPool1d(3, stride=2, padding=1)
        self.c2 = nn.Conv1d(6, 8, 3)
        self.pool2 = nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        with torch.no_grad():
            n = self.pool2(self.c2(self.pool1(self.c1(torch.zeros(1, 3, length))))).numel()
        self.fc = nn.Linear(n, 5)

    def forward(self, x):
        x = self.pool1(F.relu(cnn.conv(self.c1, x)))
        x = self.pool2(cnn.conv(self.c2, x))
        return cnn.linear(self.fc, torch.flatten(x, 1))


class Pool3d(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.maxp = nn.MaxPool3d((2, 3, 3), stride=(2, 2, 1), padding=(1, 1, 0))
        self.avgp = nn.AvgPool3d((3, 2, 2), stride=(1, 2, 2), padding=(1, 1, 0), ceil_mode=True,
                                 count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool3d(1)
        with torch.no_grad():
            n = self.features(torch.zeros(shape)).shape[1]
        self.fc = nn.Linear(n, 4)

    def features(self, x):
        m = self.maxp(x)
        return torch.cat([torch.flatten(m, 1), torch.flatten(self.avgp(x), 1),
                          torch.flatten(self.gap(m), 1)], 1)

    def forward(self, x):
        return cnn.linear(self.fc, self.features(x))


class Pool3dDilated(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.maxp = nn.MaxPool3d(2, dilation=2, padding=1)
        self.avgp = nn.AvgPool3d(2, stride=2, padding=1)
        with torch.no_grad():
            n = self.avgp(self.maxp(torch.zeros(shape))).numel()
        self.fc = nn.Linear(n, 3)

    def forward(self, x):
        return cnn.linear(self.fc, torch.flatten(self.avgp(self.maxp(x)), 1))


def conv3d(mod, x):
    c = cnn.QCFG and cnn.QCFG.get("conv3d")
    if not c:
        return mod(x)
    return F.conv3d(cnn.q(x, c["data_in"]), cnn.q(mod.weight, c["weight"]), mod.bias, mod.stride,
                    mod.padding, mod.dilation, mod.groups)


class Conv3dNet(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.c1 = nn.Conv3d(2, 6, (3, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0))
        self.bn = nn.BatchNorm3d(6)
        self.pool = nn.MaxPool3d(2)
        self.c2 = nn.Conv3d(6, 4, (2, 1, 3), dilation=(1, 2, 1), padding=(1, 0, 1), groups=2)
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():  # non-trivial BatchNorm statistics
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(conv3d(self.c1, x))))
        x = self.gap(conv3d(self.c2, x))
        return cnn.linear(self.fc, torch.flatten(x, 1))


def convt1d(mod, x):
    c = cnn.QCFG and cnn.QCFG.get("convtranspose2d")
    if not c:
        return mod(x)
    return F.conv_transpose1d(cnn.q(x, c["data_in"]), cnn.q(mod.weight, c["weight"]), mod.bias,
                              mod.stride, mod.padding, mod.output_padding, mod.groups,
                              mod.dilation)


class ConvT1dNet(nn.Module):
    def __init__(self, length):
        super().__init__()
        self.c1 = nn.Conv1d(3, 4, 3, padding=1)
        self.t1 = nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.t2 = nn.ConvTranspose1d(6, 4, 2, dilation=2, groups=2, bias=False)
        with torch.no_grad():
            n = self.t2(self.t1(self.c1(torch.zeros(1, 3, length)))).numel()
        self.fc = nn.Linear(n, 3)

    def forward(self, x):
        x = F.relu(cnn.conv(self.c1, x))
        x = convt1d(self.t2, F.relu(convt1d(self.t1, x)))
        return cnn.linear(self.fc, torch.flatten(x, 1))


def convt3d(mod, x):
    c = cnn.QCFG and cnn.QCFG.get("convtranspose3d")
    if not c:
        return mod(x)
    return F.conv_transpose3d(cnn.q(x, c["data_in"]), cnn.q(mod.weight, c["weight"]), mod.bias,
                              mod.stride, mod.padding, mod.output_padding, mod.groups,
                              mod.dilation)


class ConvT3dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.t1 = nn.ConvTranspose3d(2, 4, (3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1),
                                     output_padding=(1, 0, 1))
        self.t2 = nn.ConvTranspose3d(4, 6, (2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0),
                                     output_padding=(1, 1, 0), dilation=(2, 1, 1), groups=2,
                                     bias=False)
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = convt3d(self.t2, F.relu(convt3d(self.t1, x)))
        return cnn.linear(self.fc, torch.flatten(self.gap(x), 1))


CONVT3D_CONFIGS = {
    "uniform8": {"convtranspose3d": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(8, 6)},
                 "linear": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(8, 6)}},
    "mixed": {"convtranspose3d": {"data_in": cnn.fmt(6, 3), "weight": cnn.fmt(5, 4)},
              "linear": {"data_in": cnn.fmt(10, 5), "weight": cnn.fmt(4, 3)}},
    "convt3d_only": {"convtranspose3d": {"data_in": cnn.fmt(5, 2), "weight": cnn.fmt(4, 3)}},
}

CONVT1D_CONFIGS = {
    "uniform8": {"conv1d": {"data_in": cnn.fmt(8, 5), "weight": cnn.fmt(8, 6)},
                 "convtranspose2d": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(8, 6)},
                 "linear": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(8, 6)}},
    "mixed": {"conv1d": {"data_in": cnn.fmt(6, 3), "weight": cnn.fmt(5, 4)},
              "convtranspose2d": {"data_in": cnn.fmt(7, 3), "weight": cnn.fmt(5, 4)},
              "linear": {"data_in": cnn.fmt(10, 5), "weight": cnn.fmt(4, 3)}},
    "convt_only": {"convtranspose2d": {"data_in": cnn.fmt(5, 2), "weight": cnn.fmt(4, 3)}},
}

CONV3D_CONFIGS = {
    "uniform8": {"conv3d": {"data_in": cnn.fmt(8, 5), "weight": cnn.fmt(8, 6)},
                 "linear": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(8, 6)}},
    "mixed": {"conv3d": {"data_in": cnn.fmt(6, 3), "weight": cnn.fmt(5, 4)},
              "linear": {"data_in": cnn.fmt(10, 5), "weight": cnn.fmt(4, 3)}},
    "conv3d_only": {"conv3d": {"data_in": cnn.fmt(4, 2), "weight": cnn.fmt(3, 2)}},
}

LINEAR_CONFIGS = {
    "uniform8": {"linear": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(8, 6)}},
    "mixed": {"linear": {"data_in": cnn.fmt(6, 3), "weight": cnn.fmt(5, 4)}},
}

# name -> (builder, input shape, opsets, configs)
MODELS = {
    "conv1d_pool": (lambda: Conv1dPool(21), [4, 3, 21], (11, 13, 17), cnn.CONV1D_CONFIGS),
    "pool3d": (lambda: Pool3d([1, 2, 5, 6, 7]), [3, 2, 5, 6, 7], (11, 13, 17), LINEAR_CONFIGS),
    "pool3d_dilated": (lambda: Pool3dDilated([1, 2, 6, 5, 7]), [3, 2, 6, 5, 7], (11, 13, 17),
                       LINEAR_CONFIGS),
    "conv3d_net": (lambda: Conv3dNet([1, 2, 5, 7, 6]), [3, 2, 5, 7, 6], (11, 13, 17),
                   CONV3D_CONFIGS),
    "convt1d_net": (lambda: ConvT1dNet(9), [4, 3, 9], (11, 13, 17), CONVT1D_CONFIGS),
    "convt3d_net": (ConvT3dNet, [3, 2, 3, 4, 3], (11, 13, 17), CONVT3D_CONFIGS),
}


BN_FORMATS = {
    "conv3d": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(6, 4), "bias": cnn.fmt(10, 5)},
    "conv1d": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(6, 4), "bias": cnn.fmt(10, 5)},
    "convtranspose2d": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(6, 4),
                        "bias": cnn.fmt(10, 5)},
    "linear": {"data_in": cnn.fmt(8, 4), "weight": cnn.fmt(6, 4), "bias": cnn.fmt(10, 5)},
}


class NdBN(nn.Module):
    PAIRS = (("c1", "bn1"), ("c2", "bn2"), ("c3", "bn3"), ("t1", "bn4"), ("t2", "bn5"))

    def __init__(self):
        super().__init__()
        self.c1, self.bn1 = nn.Conv3d(2, 6, (3, 3, 2), (1, 2, 1), (1, 1, 0)), nn.BatchNorm3d(6)
        self.c2 = nn.Conv3d(6, 4, (2, 1, 3), padding=(0, 0, 1), groups=2, bias=False)
        self.bn2 = nn.BatchNorm3d(4)
        self.c3, self.bn3 = nn.Conv1d(4, 6, 3, padding=1, bias=False), nn.BatchNorm1d(6)
        self.t1 = nn.ConvTranspose1d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.bn4 = nn.BatchNorm1d(4)
        self.t2 = nn.ConvTranspose1d(4, 4, 2, dilation=2, groups=2, bias=False)
        self.bn5 = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 5)
        self.quant = None  # "mase" | "folded" | None (float)
        self.folded = {}  # conv name -> (W', b')
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm3d)):
                    c = m.num_features
                    m.weight.copy_(torch.rand(c) * 2.7 + 0.3)
                    m.bias.copy_(torch.randn(c) * 0.2)
                    m.running_mean.copy_(torch.randn(c) * 0.3)
                    m.running_var.copy_(torch.rand(c) * 1.7 + 0.3)
            self.fc.weight.mul_(4)  # larger logits, so the two semantics' losses differ clearly

    def op(self, name, x):
        mod = getattr(self, name)
        w, b = mod.weight, mod.bias
        if self.quant == "folded":
            w, b = self.folded[name]
        kind = {nn.Conv3d: "conv3d", nn.Conv1d: "conv1d", nn.ConvTranspose1d: "convtranspose2d",
                nn.Linear: "linear"}[type(mod)]
        if self.quant is not None:
            c = BN_FORMATS[kind]
            x, w = cnn.q(x, c["data_in"]), cnn.q(w, c["weight"])
            b = cnn.q(b, c["bias"]) if b is not None else None
        if kind == "linear":
            return F.linear(x, w, b)
        if kind == "convtranspose2d":
            return F.conv_transpose1d(x, w, b, mod.stride, mod.padding, mod.output_padding,
                                      mod.groups, mod.dilation)
        f = F.conv3d if kind == "conv3d" else F.conv1d
        return f(x, w, b, mod.stride, mod.padding, mod.dilation, mod.groups)

    def bn(self, name, x):
        return x if self.quant == "folded" else getattr(self, name)(x)

    def forward(self, x):
        x = F.relu(self.bn("bn1", self.op("c1", x)))
        x = F.relu(self.bn("bn2", self.op("c2", x)))
        x = F.relu(self.bn("bn3", self.op("c3", torch.flatten(x, 2))))
        x = F.relu(self.bn("bn4", self.op("t1", x)))
        x = self.bn("bn5", self.op("t2", x))
        return self.op("fc", x.mean(2))

    def fold(self):
        """ir::fold_batch_norm's arithmetic: float64, rounded once to float32. A conv's output
        channel is its weight's dim 0; a transposed one's (ci // (C/group)) * (M/group) + j."""
        for name, bn_name in self.PAIRS:
            mod, bn = getattr(self, name), getattr(self, bn_name)
            a = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() +
                                                         float(np.float32(bn.eps)))
            w = mod.weight.detach().double()
            if isinstance(mod, nn.ConvTranspose1d):
                cin, per_out, g = w.shape[0], w.shape[1], mod.groups
                scale = a.reshape(g, 1, per_out).expand(g, cin // g, per_out).reshape(cin, per_out)
                w = w * scale.unsqueeze(-1)
            else:
                w = w * a.reshape(-1, *([1] * (w.dim() - 1)))
            b0 = mod.bias.detach().double() if mod.bias is not None else torch.zeros_like(a)
            b = ((b0 - bn.running_mean.double()) * a + bn.bias.detach().double()).float()
            self.folded[name] = (w.float(), b)
        self.folded["fc"] = (self.fc.weight, self.fc.bias)


def write_nd_bn(out_dir):
    torch.manual_seed(3141)
    model = NdBN().eval()
    x = torch.randint(-64, 64, (8, 2, 4, 7, 5)).float() / 32
    labels = torch.randint(0, 5, (8,))
    common = dict(opset_version=13, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    torch.onnx.export(model, x, os.path.join(out_dir, "nd_bn_preserve.onnx"),
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      **common)
    torch.onnx.export(model, x, os.path.join(out_dir, "nd_bn_eval.onnx"), **common)
    model.fold()
    out = {"input_shape": list(x.shape), "input": flat(x), "labels": labels.tolist(),
           "formats": BN_FORMATS}
    with torch.no_grad():
        for key, mode in (("float", None), ("fake_mase", "mase"), ("fake_folded", "folded")):
            model.quant = mode
            logits = model(x)
            out[key] = flat(logits)
            if mode:
                out["loss_" + mode] = float(F.cross_entropy(logits, labels))
    np.savez(os.path.join(out_dir, "nd_bn_data.npz"), x=x.numpy(),
             y=labels.numpy().astype(np.int64))
    with open(os.path.join(out_dir, "nd_bn_ref.json"), "w") as fh:
        json.dump(out, fh)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/nd")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    ref = {"models": {}}
    for i, (name, (build, shape, opsets, configs)) in enumerate(MODELS.items()):
        torch.manual_seed(3000 + i)
        m = build().eval()
        x = torch.randint(-64, 64, shape).float() / 32.0
        files = []
        for opset in opsets:
            f = f"{name}_opset{opset}.onnx"
            torch.onnx.export(m, x[:1], os.path.join(args.out, f), opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              training=torch.onnx.TrainingMode.PRESERVE,  # keep BatchNorm3d
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            files.append(f)
        with torch.no_grad():
            cnn.QCFG = None
            y = m(x)
            entry = {"files": files, "input_shape": shape, "input": flat(x), "float": flat(y),
                     "output_shape": list(y.shape), "configs": {}}
            for cname, formats in configs.items():
                cnn.QCFG = formats
                entry["configs"][cname] = {"formats": formats, "fake": flat(m(x))}
            cnn.QCFG = None
        ref["models"][name] = entry
        if name in ("conv3d_net", "convt3d_net"):  # data sets for the CLI (export, train: e2e)
            np.savez(os.path.join(args.out, f"{name}_data.npz"), x=x.numpy(),
                     y=torch.arange(x.shape[0]).remainder(3).numpy().astype(np.int64))
    with open(os.path.join(args.out, "nd_ref.json"), "w") as fh:
        json.dump(ref, fh, indent=None, separators=(",", ":"))
        fh.write("\n")
    write_nd_bn(args.out)


if __name__ == "__main__":
    main()
