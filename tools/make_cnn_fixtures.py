#!/usr/bin/python3
"""Modern-CNN operator fixtures for issue 11: small seeded PyTorch models exported with
torch.onnx.export, with PyTorch's float outputs and MASE-semantics fake-quantized outputs.

Regenerate every file under tests/fixtures/cnn/ with (from the repository root):

    /usr/bin/python3 tools/make_cnn_fixtures.py

Options: --out (default tests/fixtures/cnn). One CPU thread, a few seconds, deterministic. The
weights are random (seeded), not trained: the fixtures check operator semantics, not accuracy.

Models (MODELS below; each exported at the listed opsets as <name>_opset<k>.onnx):
  conv1d_net         Conv1d(3, 8, 5, stride 2, padding 2) -> ReLU -> depthwise Conv1d(8, 8, 3,
                     dilation 2, padding 2, groups 8) -> ReLU -> Conv1d(8, 6, 1) -> flatten ->
                     Linear(6 * L', 5).
  mobilenetv3_block  MobileNetV3's inverted residual with squeeze-excitation (HardSwish,
                     HardSigmoid; opset 13 writes HardSwish as x * HardSigmoid(x)), global max
                     pool, Linear head.
  convnext_block     ConvNeXt's block (ConvNeXtBlock below) at opsets 11, 13, 17.
  decoder            conv, nn.Upsample nearest 2x, conv, bilinear 2x, conv, F.interpolate to
                     a fixed size (bilinear, align_corners), conv.
  decoder_convtranspose  conv, ConvTranspose2d (output_padding), ReLU, Upsample nearest,
                     grouped ConvTranspose2d, conv.
  conv_transpose     ConvTranspose2d with groups, dilation, asymmetric strides, output_padding.
  resize_*           nn.Upsample / F.interpolate by a scale or to a size, nearest / bilinear
                     (align_corners False / True), between two Conv2d.
  global_max_pool (torch's MaxPool rewritten to GlobalMaxPool, see to_global_max_pool),
  hardsigmoid, hardswish, pad_constant (C, H and W, value 0.75), pad_reflect,
  pad_edge (F.pad's replicate): one op, between two Conv2d for the configs.

Output cnn_ref.json: {"models": {name: {"files": [...], "input_shape": [...], "input": flat list,
"float": flat list, "output_shape": [...], "configs": {config: {"formats": {mase_op: {"data_in":
{width, frac}, "weight": {...}}}, "fake": flat list}}}}}. The input values are multiples of 2^-5 in
[-2, 2). Fake quantization follows MASE's forwards (mase.md §6.2):
  linear:  F.linear(q(x, data_in), q(W, weight), b)        (bias kept float)
  conv1d:  F.conv1d(q(x, data_in), q(W, weight), b, ...)   (bias kept float)
  conv2d:  F.conv2d(q(x, data_in), q(W, weight), b, ...)
  convtranspose2d: F.conv_transpose2d(q(x, data_in), q(W, weight), b, ...) (MASE's
           convtranspose2d key: conv2d's entries)
Everything else (BatchNorm, HardSwish, HardSigmoid, pools, Pad, Mul) in float32.
q(v) = clamp(round(v * 2^f), -2^(w-1), 2^(w-1)-1) / 2^f, round half to even.
"""

import argparse
import json
import os

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

QCFG = None  # the active config's formats while computing the fake-quantized reference


def q(x, fmt):
    w, f = fmt["width"], fmt["frac"]
    scale = 2.0 ** f
    return torch.clamp(torch.round(x * scale), -(2 ** (w - 1)), 2 ** (w - 1) - 1) / scale


def linear(mod, x):
    c = QCFG and QCFG.get("linear")
    if not c:
        return mod(x)
    return F.linear(q(x, c["data_in"]), q(mod.weight, c["weight"]), mod.bias)


def conv(mod, x):
    if isinstance(mod, nn.ConvTranspose2d):
        c = QCFG and QCFG.get("convtranspose2d")
        if not c:
            return mod(x)
        return F.conv_transpose2d(q(x, c["data_in"]), q(mod.weight, c["weight"]), mod.bias,
                                  mod.stride, mod.padding, mod.output_padding, mod.groups,
                                  mod.dilation)
    op = "conv1d" if isinstance(mod, nn.Conv1d) else "conv2d"
    c = QCFG and QCFG.get(op)
    if not c:
        return mod(x)
    fn = F.conv1d if op == "conv1d" else F.conv2d
    return fn(q(x, c["data_in"]), q(mod.weight, c["weight"]), mod.bias, mod.stride, mod.padding,
              mod.dilation, mod.groups)


class Conv1dNet(nn.Module):
    def __init__(self, length):
        super().__init__()
        self.c1 = nn.Conv1d(3, 8, 5, stride=2, padding=2)
        self.c2 = nn.Conv1d(8, 8, 3, dilation=2, padding=2, groups=8)
        self.c3 = nn.Conv1d(8, 6, 1)
        out_len = (length + 4 - 5) // 2 + 1
        self.fc = nn.Linear(6 * out_len, 5)

    def forward(self, x):
        x = F.relu(conv(self.c1, x))
        x = F.relu(conv(self.c2, x))
        x = conv(self.c3, x)
        return linear(self.fc, torch.flatten(x, 1))


class MobileV3Block(nn.Module):
    """1x1 expand + BN + HardSwish, depthwise 3x3 + BN + HardSwish, squeeze-excitation (global
    average pool, 1x1 conv, ReLU, 1x1 conv, HardSigmoid, Mul), 1x1 project + BN, residual; a
    global max pool and a Linear head."""

    def __init__(self, c=8, e=16):
        super().__init__()
        self.expand = nn.Conv2d(c, e, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(e)
        self.dw = nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False)
        self.bn2 = nn.BatchNorm2d(e)
        self.se1 = nn.Conv2d(e, 4, 1)
        self.se2 = nn.Conv2d(4, e, 1)
        self.project = nn.Conv2d(e, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, 5)
        for bn in (self.bn1, self.bn2, self.bn3):  # non-trivial statistics
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x):
        h = F.hardswish(self.bn1(conv(self.expand, x)))
        h = F.hardswish(self.bn2(conv(self.dw, h)))
        s = F.adaptive_avg_pool2d(h, 1)
        s = F.hardsigmoid(conv(self.se2, F.relu(conv(self.se1, s))))
        h = self.bn3(conv(self.project, h * s)) + x
        return linear(self.fc, torch.flatten(F.adaptive_max_pool2d(h, 1), 1))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block: depthwise 7x7, LayerNorm over channels (permute to NHWC), Linear 4x,
    GELU, Linear back, layer scale, permute back, residual; a pooled Linear head. Opsets 11 and
    13 write the LayerNorm as ReduceMean / Sub / Pow / Sqrt / Div (fused at import), 17 as
    LayerNormalization; GELU as Erf."""

    def __init__(self, c=8):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.pwconv2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.rand(c) * 0.5 + 0.25)
        self.head = nn.Linear(c, 5)

    def forward(self, x):
        h = conv(self.dwconv, x).permute(0, 2, 3, 1)
        h = linear(self.pwconv2, F.gelu(linear(self.pwconv1, self.norm(h))))
        h = x + (self.gamma * h).permute(0, 3, 1, 2)
        return linear(self.head, h.mean(dim=(2, 3)))


class Decoder(nn.Module):
    """A small decoder: conv, nearest 2x upsampling (nn.Upsample), conv, bilinear 2x
    (align_corners False), conv, bilinear to a fixed size (align_corners True), conv."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.c2 = nn.Conv2d(6, 4, 3, padding=1)
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.c3 = nn.Conv2d(4, 4, 3)
        self.c4 = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        h = F.relu(conv(self.c1, x))
        h = F.relu(conv(self.c2, self.up1(h)))
        h = F.relu(conv(self.c3, self.up2(h)))
        h = F.interpolate(h, size=(9, 11), mode="bilinear", align_corners=True)
        return conv(self.c4, h)


class ConvTDecoder(nn.Module):
    """conv, ConvTranspose2d(k 3, stride 2, padding 1, output_padding 1), ReLU, nn.Upsample
    nearest 2x, grouped ConvTranspose2d(k 4, stride 2, padding 1, groups 2), conv."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.t1 = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.t2 = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, groups=2)
        self.c2 = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        h = F.relu(conv(self.c1, x))
        h = F.relu(conv(self.t1, h))
        return conv(self.c2, conv(self.t2, self.up(h)))


class OneOp(nn.Module):
    """A conv, the op under test, a conv: the op sees and feeds quantized layers."""

    def __init__(self, op, c_mid=4):
        super().__init__()
        self.op = op
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.c2 = nn.Conv2d(c_mid, 3, 3)

    def forward(self, x):
        h = conv(self.c1, x)
        h = conv(self.op, h) if isinstance(self.op, nn.ConvTranspose2d) else self.op(h)
        return conv(self.c2, h)


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def fmt(w, f):
    return {"width": w, "frac": f}


CONV1D_CONFIGS = {
    "uniform8": {"conv1d": {"data_in": fmt(8, 5), "weight": fmt(8, 6)},
                 "linear": {"data_in": fmt(8, 4), "weight": fmt(8, 6)}},
    "mixed": {"conv1d": {"data_in": fmt(6, 3), "weight": fmt(5, 4)},
              "linear": {"data_in": fmt(10, 5), "weight": fmt(4, 3)}},
    "conv1d_only": {"conv1d": {"data_in": fmt(4, 2), "weight": fmt(3, 2)}},
}

CONV2D_CONFIGS = {
    "uniform8": {"conv2d": {"data_in": fmt(8, 5), "weight": fmt(8, 6)},
                 "linear": {"data_in": fmt(8, 4), "weight": fmt(8, 6)}},
    "mixed": {"conv2d": {"data_in": fmt(6, 3), "weight": fmt(5, 4)},
              "linear": {"data_in": fmt(10, 5), "weight": fmt(4, 3)}},
}
CONV2D_CONFIGS_NO_LINEAR = {
    "uniform8": {"conv2d": {"data_in": fmt(8, 4), "weight": fmt(8, 6)}},
    "mixed": {"conv2d": {"data_in": fmt(7, 3), "weight": fmt(5, 4)}},
}
CONVNEXT_CONFIGS = {
    "uniform8": {"conv2d": {"data_in": fmt(8, 5), "weight": fmt(8, 6)},
                 "linear": {"data_in": fmt(8, 4), "weight": fmt(8, 6)}},
    "linear_only": {"linear": {"data_in": fmt(6, 3), "weight": fmt(5, 4)}},
}
CONVT_CONFIGS = {
    "uniform8": {"conv2d": {"data_in": fmt(8, 4), "weight": fmt(8, 6)},
                 "convtranspose2d": {"data_in": fmt(8, 4), "weight": fmt(8, 6)}},
    "convt_only": {"convtranspose2d": {"data_in": fmt(5, 2), "weight": fmt(4, 3)}},
}
ONE_OP_CONFIGS = {"conv8": {"conv2d": {"data_in": fmt(8, 4), "weight": fmt(8, 6)}}}

# name -> (builder, input shape, opsets, configs)
MODELS = {
    "conv1d_net": (lambda: Conv1dNet(24), [4, 3, 24], (11, 13, 17), CONV1D_CONFIGS),
    "mobilenetv3_block": (MobileV3Block, [3, 8, 7, 6], (13, 17), CONV2D_CONFIGS),
    "global_max_pool": (lambda: Lambda(lambda x: F.adaptive_max_pool2d(x, 1)), [3, 4, 5, 6], (13,),
                        {}),
    "hardsigmoid": (lambda: OneOp(nn.Hardsigmoid()), [3, 2, 6, 5], (13, 17), ONE_OP_CONFIGS),
    "hardswish": (lambda: OneOp(nn.Hardswish()), [3, 2, 6, 5], (13, 17), ONE_OP_CONFIGS),
    "pad_constant": (lambda: OneOp(Lambda(lambda x: F.pad(x, (1, 2, 0, 1, 1, 0), value=0.75)), 5),
                     [3, 2, 6, 5], (11, 13, 17), ONE_OP_CONFIGS),
    "pad_reflect": (lambda: OneOp(Lambda(lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"))),
                    [3, 2, 6, 5], (11, 13, 17), ONE_OP_CONFIGS),
    "convnext_block": (ConvNeXtBlock, [3, 8, 9, 9], (11, 13, 17), CONVNEXT_CONFIGS),
    "decoder": (Decoder, [2, 3, 5, 4], (11, 13, 17), CONV2D_CONFIGS_NO_LINEAR),
    "decoder_convtranspose": (ConvTDecoder, [2, 3, 3, 4], (11, 13, 17), CONVT_CONFIGS),
    "conv_transpose": (lambda: OneOp(nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3),
                                                        padding=(2, 1), output_padding=(1, 0),
                                                        dilation=(2, 1), groups=2), 6),
                       [3, 2, 4, 5], (11, 13, 17), CONVT_CONFIGS),
    "resize_nearest": (lambda: OneOp(nn.Upsample(scale_factor=2, mode="nearest")), [3, 2, 4, 5],
                       (11, 13, 17), ONE_OP_CONFIGS),
    "resize_nearest_size": (lambda: OneOp(Lambda(lambda x: F.interpolate(x, size=(7, 9)))),
                            [3, 2, 4, 5], (11, 13, 17), ONE_OP_CONFIGS),
    "resize_bilinear": (lambda: OneOp(nn.Upsample(scale_factor=2, mode="bilinear")),
                        [3, 2, 4, 5], (11, 13, 17), ONE_OP_CONFIGS),
    "resize_bilinear_align_corners": (
        lambda: OneOp(nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True)),
        [3, 2, 4, 5], (11, 13, 17), ONE_OP_CONFIGS),
    "resize_bilinear_size": (
        lambda: OneOp(Lambda(lambda x: F.interpolate(x, size=(7, 3), mode="bilinear"))),
        [3, 2, 4, 5], (11, 13, 17), ONE_OP_CONFIGS),
    "pad_edge": (lambda: OneOp(Lambda(lambda x: F.pad(x, (0, 3, 2, 1), mode="replicate"))),
                 [3, 2, 6, 5], (11, 13, 17), ONE_OP_CONFIGS),
}


def to_global_max_pool(path):
    """torch writes adaptive_max_pool2d(x, 1) as a MaxPool over the whole (fixed) plane; other
    exporters (tf2onnx, keras2onnx) write ONNX's GlobalMaxPool, which this rewrite produces."""
    m = onnx.load(path)
    for n in m.graph.node:
        if n.op_type == "MaxPool":
            n.op_type = "GlobalMaxPool"
            del n.attribute[:]
    onnx.checker.check_model(m)
    onnx.save(m, path)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def main():
    global QCFG
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/cnn")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    ref = {"models": {}}
    for i, (name, (build, shape, opsets, configs)) in enumerate(MODELS.items()):
        torch.manual_seed(1000 + i)
        m = build().eval()
        x = torch.randint(-64, 64, shape).float() / 32.0
        files = []
        for opset in opsets:
            f = f"{name}_opset{opset}.onnx"
            torch.onnx.export(m, x[:1], os.path.join(args.out, f), opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              training=torch.onnx.TrainingMode.PRESERVE,  # keep BatchNorm: MASE quantizes the conv's own weight
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            if name == "global_max_pool":
                to_global_max_pool(os.path.join(args.out, f))
            files.append(f)
        with torch.no_grad():
            QCFG = None
            y = m(x)
            entry = {"files": files, "input_shape": shape, "input": flat(x), "float": flat(y),
                     "output_shape": list(y.shape), "configs": {}}
            for cname, formats in configs.items():
                QCFG = formats
                entry["configs"][cname] = {"formats": formats, "fake": flat(m(x))}
            QCFG = None
        ref["models"][name] = entry
    with open(os.path.join(args.out, "cnn_ref.json"), "w") as fh:
        json.dump(ref, fh, indent=None, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
