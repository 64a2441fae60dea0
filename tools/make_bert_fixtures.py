#!/usr/bin/python3
"""A small BERT-style encoder on token ids, trained on a synthetic task and exported at opsets 13
and 17, with PyTorch's float and MASE-semantics fake-quantized outputs (issue 11, sequence models).

Regenerate every bert_* file under tests/fixtures/transformer/ with (from the repository root):

    /usr/bin/python3 tools/make_bert_fixtures.py

Option: --out (default tests/fixtures/transformer). One CPU thread, well under a minute,
deterministic (seeded); needs no data set.

The task: a sequence of SEQ token ids (1..VOCAB-1, then 0 = padding to the end; lengths 3..SEQ);
the class is which of three token groups (1..16, 17..32, 33..49) is most frequent among the real
tokens (ties to the lowest group).

The model (Bert below), as BERT writes it: the int64 ids [batch, SEQ] are the one graph input ->
token nn.Embedding(ids) + position nn.Embedding(position_ids[:, :S]) (a registered int64 buffer
sliced by the input's length) -> LayerNorm -> 2 post-norm encoder layers (4-head self-attention
with separate q/k/v/out projections, the two attention MatMuls batched over heads, scaling by
Div, the padding mask from the ids, `ids != 0` (Equal + Not), applied in layer 0 as BERT's
extended additive mask `(1.0 - mask[:, None, None, :].float()) * -10000.0` (Cast, Sub, Mul, Add)
and in layer 1 as `masked_fill(~mask[:, None, None, :], -1e9)` (Not, Where), Softmax, residual Add
+ LayerNorm, MLP 32-64-32 with exact GELU (Erf) then residual Add + LayerNorm) -> pooler
Linear + Tanh on the first token (Gather) -> classifier Linear(32, 3). Opset 13 writes LayerNorm
decomposed (ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add), opset 17 as LayerNormalization.

Outputs:
  bert_opset13.onnx, bert_opset17.onnx  the same trained weights.
  bert_ref.json  "ids": the EVAL_N evaluation sequences (int64), "labels"; "float": PyTorch's
                 logits of the first 64, predictions on all and their accuracy; "configs": per
                 config its MASE formats by op type and PyTorch's fake-quantized predictions /
                 accuracy and logits of the first 4, computed with MASE's forwards:
                   linear:  F.linear(q(x, data_in), q(W, weight), b)
                   matmul:  q(a, data_in) @ q(b, weight)
                 q(v) = clamp(round(v * 2^f), -2^(w-1), 2^(w-1)-1) / 2^f, round half to even;
                 embeddings (MASE does not quantize nn.Embedding), masks, LayerNorm, Softmax, GELU,
                 Tanh, adds and views in float32, except in the config with_norms, which also
                 quantizes the inputs of layer_norm and gelu (op(q(x, data_in))).
"""

import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0
VOCAB, SEQ, D, HEADS, CLASSES = 50, 12, 32, 4, 3
FIRST_N = 64
EVAL_N = 1000

CONFIGS = {
    "uniform8": {"linear": {"data_in": (8, 4), "weight": (8, 6)},
                 "matmul": {"data_in": (8, 4), "weight": (8, 4)}},
    "mixed": {"linear": {"data_in": (12, 6), "weight": (6, 5)},
              "matmul": {"data_in": (10, 5), "weight": (6, 3)}},
    "linear_only": {"linear": {"data_in": (6, 3), "weight": (5, 4)}},
    "with_norms": {"linear": {"data_in": (8, 4), "weight": (8, 6)},
                   "matmul": {"data_in": (8, 4), "weight": (8, 4)},
                   "layer_norm": {"data_in": (8, 4)}, "gelu": {"data_in": (6, 3)}},
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
    return F.linear(q(x, c["data_in"]), q(mod.weight, c["weight"]), mod.bias)


def layer_norm(mod, x):
    c = QCFG and QCFG.get("layer_norm")
    return mod(q(x, c["data_in"]) if c else x)


def gelu(x):
    c = QCFG and QCFG.get("gelu")
    return F.gelu(q(x, c["data_in"]) if c else x)


def matmul(a, b):
    c = QCFG and QCFG.get("matmul")
    if not c:
        return a @ b
    return q(a, c["data_in"]) @ q(b, c["weight"])


class Layer(nn.Module):
    def __init__(self, additive_mask):
        super().__init__()
        self.additive = additive_mask
        self.q_proj, self.k_proj = nn.Linear(D, D), nn.Linear(D, D)
        self.v_proj, self.out_proj = nn.Linear(D, D), nn.Linear(D, D)
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.fc1, self.fc2 = nn.Linear(D, 2 * D), nn.Linear(2 * D, D)

    def forward(self, x, mask):
        b, t, d = x.shape
        h, dh = HEADS, D // HEADS
        qh = linear(self.q_proj, x).reshape(b, t, h, dh).transpose(1, 2)
        kh = linear(self.k_proj, x).reshape(b, t, h, dh).transpose(1, 2)
        vh = linear(self.v_proj, x).reshape(b, t, h, dh).transpose(1, 2)
        s = matmul(qh, kh.transpose(-2, -1)) / math.sqrt(dh)
        if self.additive:
            s = s + (1.0 - mask[:, None, None, :].float()) * -10000.0
        else:
            s = s.masked_fill(~mask[:, None, None, :], -1e9)
        o = matmul(s.softmax(-1), vh).transpose(1, 2).reshape(b, t, d)
        x = layer_norm(self.ln1, x + linear(self.out_proj, o))
        return layer_norm(self.ln2, x + linear(self.fc2, gelu(linear(self.fc1, x))))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(SEQ, D)
        self.register_buffer("position_ids", torch.arange(SEQ).unsqueeze(0))
        self.ln = nn.LayerNorm(D)
        self.layers = nn.ModuleList([Layer(True), Layer(False)])
        self.pooler = nn.Linear(D, D)
        self.classifier = nn.Linear(D, CLASSES)

    def forward(self, ids):
        mask = ids != 0
        pos = self.position_ids[:, :ids.shape[1]]
        x = layer_norm(self.ln, self.tok(ids) + self.pos(pos))
        for layer in self.layers:
            x = layer(x, mask)
        return linear(self.classifier, torch.tanh(linear(self.pooler, x[:, 0])))


def make_data(n, g):
    ids = torch.randint(1, VOCAB, (n, SEQ), generator=g)
    lengths = torch.randint(3, SEQ + 1, (n,), generator=g)
    ids[torch.arange(SEQ)[None, :] >= lengths[:, None]] = 0
    group = torch.where(ids == 0, -1, (ids - 1) // 16).clamp(max=2)
    counts = torch.stack([(group == k).sum(1) for k in range(3)], 1)
    return ids, counts.argmax(1)


def fmt_json(f):
    return {"width": f[0], "frac": f[1], "signed": True}


def main():
    global QCFG
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/transformer")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(SEED)
    xtr, ytr = make_data(20000, g)
    xte, yte = make_data(EVAL_N, g)
    m = Bert()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    for _ in range(3):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 100):
            idx = perm[i:i + 100]
            loss = F.cross_entropy(m(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    os.makedirs(args.out, exist_ok=True)
    for opset in (13, 17):
        torch.onnx.export(m, xte[:2], os.path.join(args.out, f"bert_opset{opset}.onnx"),
                          opset_version=opset, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}})
    ref = {"eval_n": EVAL_N, "seq": SEQ, "ids": xte.tolist(), "labels": yte.tolist(),
           "configs": {}}
    with torch.no_grad():
        QCFG = None
        logits = m(xte)
        pred = logits.argmax(1)
        ref["float"] = {"logits": logits[:FIRST_N].tolist(), "predictions": pred.tolist(),
                        "accuracy": float((pred == yte).float().mean())}
        for name, cfg in CONFIGS.items():
            QCFG = cfg
            logits = m(xte)
            pred = logits.argmax(1)
            ref["configs"][name] = {
                "formats": {op: {k: fmt_json(v) for k, v in c.items()} for op, c in cfg.items()},
                "logits": logits[:4].tolist(), "predictions": pred.tolist(),
                "accuracy": float((pred == yte).float().mean())}
        QCFG = None
    with open(os.path.join(args.out, "bert_ref.json"), "w") as f:
        json.dump(ref, f)
    print("float accuracy", ref["float"]["accuracy"],
          {k: v["accuracy"] for k, v in ref["configs"].items()})


if __name__ == "__main__":
    main()
