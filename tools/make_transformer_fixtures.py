#!/usr/bin/python3
"""A small ViT-style transformer encoder trained on MNIST, exported at opsets 13 and 17, with
PyTorch's float and MASE-semantics fake-quantized outputs (issue 11).

Regenerate every file under tests/fixtures/transformer/ with (from the repository root):

    /usr/bin/python3 tools/make_transformer_fixtures.py

Options: --data-dir (default ~/.cache/qsearch/data/mnist), --out (default
tests/fixtures/transformer). One CPU thread, about a minute, deterministic (seeded).

The model (Vit below): 28x28 image -> 16 patches of 7x7 by reshape/permute -> patch Linear(49, 32)
-> + learned position embedding -> 2 pre-norm encoder blocks (LayerNorm, 4-head self-attention with
separate q/k/v/out projections, the two attention MatMuls batched over heads, scaling by Div in
block 0 and by Mul in block 1, Softmax on the last axis, residual Add, LayerNorm, MLP 32-64-32 with
exact GELU (Erf) in block 0 and tanh GELU in block 1) -> LayerNorm -> concat(token 0 (Gather),
mean of tokens 1.. (Slice + ReduceMean)) -> Linear(64, 10). Opset 13 writes LayerNorm as
ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add, opset 17 as LayerNormalization; both write GELU decomposed.

Outputs:
  vit_opset13.onnx, vit_opset17.onnx  the same trained weights.
  vit_ref.json   "float": PyTorch's logits of the first 64 test images, predictions on the first
                 2000 and their accuracy; "configs": per config its MASE formats by op type
                 (linear: data_in, weight, and bias / data_out where given, else the bias kept
                 float; matmul: data_in = operand 0, weight = operand 1) and PyTorch's
                 fake-quantized predictions / accuracy on the same images and logits of the first
                 4, computed with MASE's forwards:
                   linear:  F.linear(q(x, data_in), q(W, weight), q(b, bias) or b)
                            [then q(., data_out)]  (LinearInteger; the bias configs bias2 / bias4
                            are where torch's MatMul + Add export of a 3-D Linear must still
                            quantize the bias with the linear's format)
                   matmul:  q(a, data_in) @ q(b, weight)
                 q(v) = clamp(round(v * 2^f), -2^(w-1), 2^(w-1)-1) / 2^f, round half to even;
                 LayerNorm, Softmax, GELU, adds and views in float32, except in the config
                 with_norms, which also quantizes the inputs of layer_norm and gelu
                 (LayerNormInteger / GELUInteger: op(q(x, data_in))).
  vit_<config>.toml  the config as a MASE [passes.quantize] table (by = "type").
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixtures import load_mnist  # noqa: E402

SEED = 0
FIRST_N = 64
EVAL_N = 2000

CONFIGS = {
    "uniform8": {"linear": {"data_in": (8, 4), "weight": (8, 6)},
                 "matmul": {"data_in": (8, 4), "weight": (8, 4)}},
    "mixed": {"linear": {"data_in": (12, 6), "weight": (6, 5)},
              "matmul": {"data_in": (10, 5), "weight": (6, 3)}},
    "linear_only": {"linear": {"data_in": (6, 3), "weight": (4, 3)}},
    # MASE quantizes layer_norm and gelu inputs only when configured (off by default).
    "with_norms": {"linear": {"data_in": (8, 4), "weight": (8, 6)},
                   "matmul": {"data_in": (8, 4), "weight": (8, 4)},
                   "layer_norm": {"data_in": (8, 4)}, "gelu": {"data_in": (6, 3)}},
    # Extreme bias formats: a 2-bit integer bias (codes -2..1) and a 4-bit one at 1/4 steps with
    # the output quantized after the bias.
    "bias2": {"linear": {"data_in": (8, 4), "weight": (8, 6), "bias": (2, 0)},
              "matmul": {"data_in": (8, 4), "weight": (8, 4)}},
    "bias4": {"linear": {"data_in": (8, 4), "weight": (8, 6), "bias": (4, 2),
                         "data_out": (8, 3)}},
}

QCFG = None  # the active config while computing the fake-quantized reference


def q(x, fmt):
    w, f = fmt
    scale = 2.0 ** f
    return torch.clamp(torch.round(x * scale), -(2 ** (w - 1)), 2 ** (w - 1) - 1) / scale


def linear(mod, x):
    c = QCFG and QCFG.get("linear")
    if not c:
        return mod(x)
    b = q(mod.bias, c["bias"]) if "bias" in c else mod.bias
    y = F.linear(q(x, c["data_in"]), q(mod.weight, c["weight"]), b)
    return q(y, c["data_out"]) if "data_out" in c else y


def layer_norm(mod, x):
    c = QCFG and QCFG.get("layer_norm")
    return mod(q(x, c["data_in"]) if c else x)


def gelu(x, approx):
    c = QCFG and QCFG.get("gelu")
    return F.gelu(q(x, c["data_in"]) if c else x, approximate=approx)


def matmul(a, b):
    c = QCFG and QCFG.get("matmul")
    if not c:
        return a @ b
    return q(a, c["data_in"]) @ q(b, c["weight"])


class Block(nn.Module):
    def __init__(self, d, heads, approx):
        super().__init__()
        self.h, self.approx = heads, approx
        self.ln1 = nn.LayerNorm(d)
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h, dh = self.h, d // self.h
        y = layer_norm(self.ln1, x)
        qh = linear(self.q_proj, y).reshape(b, t, h, dh).transpose(1, 2)
        kh = linear(self.k_proj, y).reshape(b, t, h, dh).transpose(1, 2)
        vh = linear(self.v_proj, y).reshape(b, t, h, dh).transpose(1, 2)
        if self.approx == "none":
            s = matmul(qh, kh.transpose(-2, -1)) / math.sqrt(dh)
        else:
            s = matmul(qh * (dh ** -0.5), kh.transpose(-2, -1))
        o = matmul(s.softmax(-1), vh).transpose(1, 2).reshape(b, t, d)
        x = x + linear(self.out_proj, o)
        g = gelu(linear(self.fc1, layer_norm(self.ln2, x)), self.approx)
        return x + linear(self.fc2, g)


class Vit(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Linear(49, 32)
        self.pos = nn.Parameter(torch.randn(1, 16, 32) * 0.02)
        self.blocks = nn.Sequential(Block(32, 4, "none"), Block(32, 4, "tanh"))
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        b = x.shape[0]
        x = x.reshape(b, 1, 4, 7, 4, 7).permute(0, 2, 4, 1, 3, 5).reshape(b, 16, 49)
        x = linear(self.patch, x) + self.pos
        x = layer_norm(self.norm, self.blocks(x))
        return linear(self.head, torch.cat([x[:, 0], x[:, 1:].mean(1)], dim=-1))


def fmt_json(f):
    return {"width": f[0], "frac": f[1], "signed": True}


def toml_of(cfg):
    lines = ["# Made by tools/make_transformer_fixtures.py: MASE's quantize pass by op type.",
             "[passes.quantize]", 'by = "type"', "", "[passes.quantize.default.config]",
             'name = "NA"']
    for op, c in cfg.items():
        lines += ["", f"[passes.quantize.{op}.config]", 'name = "integer"']
        for k in ("data_in", "weight", "bias", "data_out"):
            if k in c:
                lines += [f"{k}_width = {c[k][0]}", f"{k}_frac_width = {c[k][1]}"]
    return "\n".join(lines) + "\n"


def main():
    global QCFG
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.expanduser("~/.cache/qsearch/data/mnist"))
    ap.add_argument("--out", default="tests/fixtures/transformer")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    xtr, ytr = load_mnist(args.data_dir, "train")
    xte, yte = load_mnist(args.data_dir, "test")
    m = Vit()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(SEED)
    for _ in range(2):
        perm = torch.randperm(20000, generator=g)
        for i in range(0, 20000, 100):
            idx = perm[i:i + 100]
            loss = F.cross_entropy(m(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    os.makedirs(args.out, exist_ok=True)
    for opset in (13, 17):
        torch.onnx.export(m, xte[:2], os.path.join(args.out, f"vit_opset{opset}.onnx"),
                          opset_version=opset, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    x = xte[:EVAL_N]
    y = yte[:EVAL_N]
    ref = {"eval_n": EVAL_N, "configs": {}}
    with torch.no_grad():
        QCFG = None
        logits = m(x)
        pred = logits.argmax(1)
        ref["float"] = {"logits": logits[:FIRST_N].tolist(), "predictions": pred.tolist(),
                        "accuracy": float((pred == y).float().mean())}
        for name, cfg in CONFIGS.items():
            QCFG = cfg
            logits = m(x)
            pred = logits.argmax(1)
            ref["configs"][name] = {
                "formats": {op: {k: fmt_json(v) for k, v in c.items()} for op, c in cfg.items()},
                "logits": logits[:4].tolist(), "predictions": pred.tolist(),
                "accuracy": float((pred == y).float().mean())}
            with open(os.path.join(args.out, f"vit_{name}.toml"), "w") as f:
                f.write(toml_of(cfg))
        QCFG = None
    with open(os.path.join(args.out, "vit_ref.json"), "w") as f:
        json.dump(ref, f)
    print("float accuracy", ref["float"]["accuracy"],
          {k: v["accuracy"] for k, v in ref["configs"].items()})


if __name__ == "__main__":
    main()
