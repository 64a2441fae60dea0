#!/usr/bin/python3
"""Fake-quantized MLP and CNN predictions on MNIST, computed by PyTorch with MASE's semantics.

Regenerate every file under tests/fixtures/quant_models/ with (from the repository root):

    /usr/bin/python3 tools/make_quant_model_fixtures.py

Options: --data-dir (default ~/.cache/qsearch/data/mnist, the uncompressed IDX files), --out
(default tests/fixtures/quant_models). Reads the weights of tests/fixtures/torch/mlp_opset13.onnx and
cnn_opset13.onnx (architectures in tools/make_torch_fixtures.py) into PyTorch modules and runs the
10000 MNIST test images (pixels / 255, float32) through MASE's quantized forward passes (reference
mase.md §6), re-implemented here from the reference text:

  integer quantizer   q(x) = clamp(torch.round(x * 2**f), lo, hi) / 2**f   (round half to even,
                      computed in float32, signed [-2^(w-1), 2^(w-1)-1] or unsigned [0, 2^w-1])
  LinearInteger       F.linear(q_in(x), q_w(W), q_b(b))     (output unquantized, or q_out if given;
                      without bias keys the bias stays float: the MLP's config float_bias32)
  Conv2dInteger       F.conv2d(q_in(x), q_w(W), q_b(b), ...) (the bias really is copied: MASE's
                      conv bias bug is not reproduced)
  ReLUInteger         F.relu(q_in(x)) with an unsigned data_in
  BatchNorm2dInteger  F.batch_norm(q_in(x), running stats, weight, bias) (eval mode)
  add_integer         q_in(a) + q_in(b)
Nodes not in a config run in float32, max pooling and views always do.

Outputs, per model (mlp, cnn):
  <model>_quant_ref.json  for each config: its per-node formats (keyed by qsearch's config names,
                          see `qsearch inspect`), PyTorch's predictions on all 10000 test images, the
                          accuracy, and the logits of the first 4 images.
  <model>_<config>.toml   the same config as a MASE [passes.quantize] table (by = "name"), for
                          `qsearch eval --quant` / `qsearch quantize`.
Runs on one CPU thread in well under a minute; deterministic.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixtures import load_mnist  # noqa: E402

FIRST_N = 4


def fmt(width, frac, signed=True):
    return {"width": width, "frac": frac, "signed": signed}


def linear(data_in, weight, bias=None, data_out=None):
    """A linear / conv config; bias None means no bias_* keys: the bias stays float (qsearch)."""
    c = {"data_in": fmt(*data_in), "weight": fmt(*weight)}
    if bias:
        c["bias"] = fmt(*bias)
    if data_out:
        c["data_out"] = fmt(*data_out)
    return c


def relu(width, frac):
    return {"data_in": fmt(width, frac, False)}


def data_in(width, frac):
    return {"data_in": fmt(width, frac)}


# Formats per config name (qsearch's config names: fc1 is "/fc1/Gemm", block_conv "/block/conv/Conv").
MLP_CONFIGS = {
    "uniform8": {
        "fc1": linear((8, 6), (8, 7), (8, 7)), "relu1": relu(8, 3),
        "fc2": linear((8, 3), (8, 7), (8, 7)), "relu2": relu(8, 3),
        "fc3": linear((8, 3), (8, 7), (8, 7)),
    },
    "weights4": {
        "fc1": linear((8, 6), (4, 4), (8, 7)), "relu1": relu(8, 3),
        "fc2": linear((8, 3), (4, 3), (8, 7)), "relu2": relu(8, 3),
        "fc3": linear((8, 3), (4, 3), (8, 7)),
    },
    "mixed": {
        "fc1": linear((6, 5), (2, 2), (4, 3)), "relu1": relu(5, 1),
        "fc2": linear((12, 7), (6, 5), (8, 6)),
        "fc3": linear((8, 3), (8, 7), (16, 12)),
    },
    "relu_unsigned": {
        "fc1": linear((8, 6), (8, 7), (8, 7)), "relu1": relu(3, 0),
        "fc2": linear((8, 3), (8, 7), (8, 7)), "relu2": relu(4, 1),
        "fc3": linear((8, 3), (8, 7), (8, 7)),
    },
    "frac_gt_width": {
        "fc1": linear((6, 8), (4, 6), (6, 9)), "relu1": relu(8, 3),
        "fc2": linear((8, 3), (5, 7), (4, 6)), "relu2": relu(8, 3),
        "fc3": linear((8, 3), (8, 7), (8, 7)),
    },
    "neg_frac": {
        "fc1": linear((8, 6), (8, 7), (4, -1)), "relu1": relu(6, -1),
        "fc2": linear((6, -1), (8, 7), (8, 7)), "relu2": relu(8, 3),
        "fc3": linear((8, 3), (8, 7), (3, -2)),
    },
    "data_out": {
        "fc1": linear((8, 6), (8, 7), (8, 7), data_out=(8, 2)), "relu1": relu(8, 3),
        "fc2": linear((8, 3), (8, 7), (8, 7), data_out=(6, 1)),
        "fc3": linear((8, 3), (8, 7), (8, 7)),
    },
    "wide16": {
        "fc1": linear((16, 14), (16, 15), (16, 15)), "relu1": relu(16, 10),
        "fc2": linear((16, 10), (16, 15), (16, 15)), "relu2": relu(16, 10),
        "fc3": linear((16, 10), (16, 15), (16, 15)),
    },
    "wide32": {
        "fc1": linear((24, 16), (32, 24), (32, 24)), "relu1": relu(24, 16),
        "fc2": linear((24, 16), (32, 24), (32, 24)),
        "fc3": linear((20, 14), (30, 24), (32, 28)),
    },
    "float_bias32": {
        "fc1": linear((32, 16), (32, 16)), "fc2": linear((32, 16), (32, 16)),
        "fc3": linear((32, 16), (32, 16)),
    },
}

CNN_CONFIGS = {
    "uniform8": {
        "conv1": linear((8, 6), (8, 8), (8, 8)), "bn1": data_in(8, 5), "relu1": relu(8, 4),
        "block_conv": linear((8, 4), (8, 8), (8, 8)), "block_bn": data_in(8, 4),
        "block_relu": relu(8, 4), "block_add": data_in(8, 3), "fc": linear((8, 3), (8, 8), (8, 8)),
    },
    "weights4": {
        "conv1": linear((8, 6), (4, 4), (8, 8)), "bn1": data_in(8, 5), "relu1": relu(8, 4),
        "block_conv": linear((8, 4), (4, 5), (8, 8)), "block_bn": data_in(8, 4),
        "block_relu": relu(8, 4), "block_add": data_in(8, 3), "fc": linear((8, 3), (4, 5), (8, 8)),
    },
    "mixed": {
        "conv1": linear((4, 3), (6, 6), (8, 8)), "relu1": relu(6, 2),
        "block_conv": linear((10, 6), (3, 4), (12, 10)), "block_bn": data_in(12, 7),
        "block_add": data_in(6, 2), "fc": linear((8, 3), (8, 8), (4, 4)),
    },
    "relu_unsigned": {
        "conv1": linear((8, 6), (8, 8), (8, 8)), "relu1": relu(3, 1),
        "block_conv": linear((8, 4), (8, 8), (8, 8)), "block_relu": relu(4, 1),
        "fc": linear((8, 3), (8, 8), (8, 8)),
    },
    "frac_gt_width": {
        "conv1": linear((8, 6), (6, 7), (4, 6)), "bn1": data_in(8, 5), "relu1": relu(8, 4),
        "block_conv": linear((8, 4), (5, 7), (5, 8)), "block_add": data_in(8, 3),
        "fc": linear((8, 3), (8, 8), (4, 7)),
    },
    "neg_frac": {
        "conv1": linear((8, 6), (8, 8), (4, -1)), "relu1": relu(4, -1),
        "block_conv": linear((6, -1), (8, 8), (8, 8)), "block_add": data_in(6, -1),
        "fc": linear((5, -1), (8, 8), (3, -2)),
    },
    "conv_only": {
        "conv1": linear((8, 6), (8, 8), (8, 8)), "block_conv": linear((8, 4), (8, 8), (8, 8)),
        "fc": linear((8, 3), (8, 8), (8, 8)),
    },
}


def q(x, f):
    """MASE's _integer_quantize in float32 (mase.md §6.1)."""
    w, frac, signed = f["width"], f["frac"], f["signed"]
    lo, hi = (-(2 ** (w - 1)), 2 ** (w - 1) - 1) if signed else (0, 2 ** w - 1)
    scale = 2 ** frac
    return torch.clamp(torch.round(x * scale), lo, hi) / scale


def qb(b, c):
    """The bias as MASE quantizes it with bias_* keys; without them it stays float (qsearch's
    documented choice: MASE's LinearInteger has no behaviour there, it raises a KeyError)."""
    return q(b, c["bias"]) if "bias" in c else b


def read_weights(path):
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
            for i in onnx.load(path).graph.initializer}


class MaseModel:
    """The fixtures' models with MASE's quantized modules substituted per config."""

    def __init__(self, weights, config):
        self.w, self.c = weights, config

    def linear(self, name, x, prefix=None):
        prefix = prefix or name
        W, b = self.w[prefix + ".weight"], self.w[prefix + ".bias"]
        c = self.c.get(name)
        if not c:
            return F.linear(x, W, b)
        y = F.linear(q(x, c["data_in"]), q(W, c["weight"]), qb(b, c))
        return q(y, c["data_out"]) if "data_out" in c else y

    def conv(self, name, x, prefix):
        W, b = self.w[prefix + ".weight"], self.w[prefix + ".bias"]
        c = self.c.get(name)
        if not c:
            return F.conv2d(x, W, b, padding=1)
        y = F.conv2d(q(x, c["data_in"]), q(W, c["weight"]), qb(b, c), padding=1)
        return q(y, c["data_out"]) if "data_out" in c else y

    def relu(self, name, x):
        c = self.c.get(name)
        return F.relu(q(x, c["data_in"]) if c else x)

    def bn(self, name, x, prefix):
        c = self.c.get(name)
        x = q(x, c["data_in"]) if c else x
        return F.batch_norm(x, self.w[prefix + ".running_mean"], self.w[prefix + ".running_var"],
                            self.w[prefix + ".weight"], self.w[prefix + ".bias"], False, 0.0, 1e-5)

    def add(self, name, a, b):
        c = self.c.get(name)
        return q(a, c["data_in"]) + q(b, c["data_in"]) if c else a + b


def mlp_forward(m, x):
    h = x.reshape(x.shape[0], -1)
    h = m.relu("relu1", m.linear("fc1", h))
    h = m.linear("fc2", h)
    h = m.relu("relu2", h)
    return m.linear("fc3", h)


def cnn_forward(m, x):
    h = m.relu("relu1", m.bn("bn1", m.conv("conv1", x, "conv1"), "bn1"))
    p = F.max_pool2d(h, 2)
    h = m.relu("block_relu", m.bn("block_bn", m.conv("block_conv", p, "block.conv"), "block.bn"))
    h = F.max_pool2d(m.add("block_add", h, p), 2)
    return m.linear("fc", h.reshape(h.shape[0], -1))


def toml_of(config, model_ops):
    lines = ["# Made by tools/make_quant_model_fixtures.py: MASE's quantize pass, one table per node.",
             "[passes.quantize]", 'by = "name"', "", "[passes.quantize.default.config]",
             'name = "NA"']
    keys = {"data_in": "data_in", "weight": "weight", "bias": "bias", "data_out": "data_out"}
    for node, c in config.items():
        lines += ["", f"[passes.quantize.{node}.config]", 'name = "integer"']
        for group, key in keys.items():
            if group in c:
                lines.append(f"{key}_width = {c[group]['width']}")
                lines.append(f"{key}_frac_width = {c[group]['frac']}")
        assert model_ops[node] == "relu" or all(f["signed"] for f in c.values()), node
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.expanduser("~/.cache/qsearch/data/mnist"))
    parser.add_argument("--out", default="tests/fixtures/quant_models")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    x, y = load_mnist(args.data_dir, "test")
    models = {
        "mlp": (MLP_CONFIGS, mlp_forward, "mlp_opset13.onnx",
                {"fc1": "linear", "fc2": "linear", "fc3": "linear", "relu1": "relu",
                 "relu2": "relu"}),
        "cnn": (CNN_CONFIGS, cnn_forward, "cnn_opset13.onnx",
                {"conv1": "conv2d", "bn1": "batch_norm2d", "relu1": "relu",
                 "block_conv": "conv2d", "block_bn": "batch_norm2d", "block_relu": "relu",
                 "block_add": "add", "fc": "linear"}),
    }
    for name, (configs, forward, onnx_file, ops) in models.items():
        weights = read_weights(os.path.join("tests/fixtures/torch", onnx_file))
        out = {"model": onnx_file, "input": "mnist test split, pixels/255 as float32",
               "first_n": FIRST_N, "configs": []}
        for cname, config in configs.items():
            m = MaseModel(weights, config)
            with torch.no_grad():
                logits = torch.cat([forward(m, x[i:i + 1000]) for i in range(0, x.shape[0], 1000)])
            pred = logits.argmax(dim=1)
            acc = float((pred == y).float().mean())
            out["configs"].append({
                "name": cname,
                "nodes": config,
                "accuracy": acc,
                "predictions": "".join(str(int(p)) for p in pred.tolist()),
                "logits": [[float(v) for v in row] for row in logits[:FIRST_N].tolist()],
            })
            with open(os.path.join(args.out, f"{name}_{cname}.toml"), "w") as f:
                f.write(toml_of(config, ops))
            print(f"  {name} {cname}: accuracy {acc:.4f}")
        with open(os.path.join(args.out, f"{name}_quant_ref.json"), "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
