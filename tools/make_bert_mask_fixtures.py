#!/usr/bin/python3
"""A small BERT-style encoder with the graph inputs of a Hugging Face export (input_ids,
attention_mask, token_type_ids; all int64 [batch, SEQ]), trained on a synthetic task and exported
at opsets 13 and 17, with PyTorch's float and MASE-semantics fake-quantized outputs (issue 11:
models with several inputs).

Regenerate every bert_mask_* file under tests/fixtures/transformer/ with (from the repository
root):

    /usr/bin/python3 tools/make_bert_mask_fixtures.py

Option: --out (default tests/fixtures/transformer). One CPU thread, about a minute, deterministic
(seeded); needs no data set. Shares the quantizer and the MASE forwards (q, linear, matmul,
layer_norm, gelu, the CONFIGS) with tools/make_bert_fixtures.py.

The task: SEQ positions, the first `length` (3..SEQ) real tokens 1..VOCAB-1, the rest padding
that holds RANDOM tokens too (so only attention_mask says where a sequence ends, unlike
bert_opset*.onnx, which derives its mask from `ids != 0`); token_type_ids 0 for segment A, 1 for
segment B (from a random split point to the end of the real tokens), 0 on padding. The class is
the token group (1..16, 17..32, 33..49) with the largest count over the real tokens, a segment-B
token counting twice (ties to the lowest group).

The model, as transformers' BertModel writes it: word + position + token-type nn.Embedding ->
LayerNorm; the extended additive mask computed once from attention_mask,
`(1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min`, added to the
attention scores of both post-norm layers (4 heads, GELU MLP); pooler Linear + Tanh on token 0;
classifier Linear(32, 3).

Outputs:
  bert_mask_opset13.onnx, bert_mask_opset17.onnx  the same trained weights; inputs input_ids,
                 attention_mask, token_type_ids (in that order), output logits.
  bert_mask_eval.npz  the EVAL_N evaluation sequences: arrays input_ids, attention_mask,
                 token_type_ids (int64 [EVAL_N, SEQ]) and y (int64 labels), the names
                 `--dataset npz:` reads for this model.
  bert_mask_ref.json  "float": PyTorch's logits of the first 64, predictions on all and their
                 accuracy; "configs": per config its MASE formats by op type, PyTorch's
                 fake-quantized predictions / accuracy and logits of the first 4.
  bert_mask_<config>.toml  those configs as MASE quantize passes by type.
  bert_mask_bad_name.npz, bert_mask_bad_shape.npz, bert_mask_bad_dtype.npz  8 sequences each with
                 one array wrong: attention_mask saved as `mask`, as [8, SEQ - 2], as float32.
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
import make_bert_fixtures as mb  # noqa: E402

SEED = 1
VOCAB, SEQ, D, HEADS, CLASSES = mb.VOCAB, mb.SEQ, mb.D, mb.HEADS, mb.CLASSES
FIRST_N = 64
EVAL_N = 1000
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class Layer(mb.Layer):
    """mb.Layer's attention block with the precomputed additive mask (transformers' form)."""

    def forward(self, x, ext):
        b, t, d = x.shape
        h, dh = HEADS, D // HEADS
        qh = mb.linear(self.q_proj, x).reshape(b, t, h, dh).transpose(1, 2)
        kh = mb.linear(self.k_proj, x).reshape(b, t, h, dh).transpose(1, 2)
        vh = mb.linear(self.v_proj, x).reshape(b, t, h, dh).transpose(1, 2)
        s = mb.matmul(qh, kh.transpose(-2, -1)) / (dh ** 0.5) + ext
        o = mb.matmul(s.softmax(-1), vh).transpose(1, 2).reshape(b, t, d)
        x = mb.layer_norm(self.ln1, x + mb.linear(self.out_proj, o))
        return mb.layer_norm(self.ln2, x + mb.linear(self.fc2, mb.gelu(mb.linear(self.fc1, x))))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(SEQ, D)
        self.token_type = nn.Embedding(2, D)
        self.register_buffer("position_ids", torch.arange(SEQ).unsqueeze(0))
        self.ln = nn.LayerNorm(D)
        self.layers = nn.ModuleList([Layer(True), Layer(True)])
        self.pooler = nn.Linear(D, D)
        self.classifier = nn.Linear(D, CLASSES)

    def forward(self, input_ids, attention_mask, token_type_ids):
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * \
            torch.finfo(torch.float32).min
        pos = self.position_ids[:, :input_ids.shape[1]]
        x = self.word(input_ids) + self.pos(pos) + self.token_type(token_type_ids)
        x = mb.layer_norm(self.ln, x)
        for layer in self.layers:
            x = layer(x, ext)
        return mb.linear(self.classifier, torch.tanh(mb.linear(self.pooler, x[:, 0])))


def make_data(n, g):
    ids = torch.randint(1, VOCAB, (n, SEQ), generator=g)  # padding holds random tokens too
    lengths = torch.randint(3, SEQ + 1, (n,), generator=g)
    split = (torch.rand(n, generator=g) * (lengths - 1).float()).long() + 1  # 1..length-1
    pos = torch.arange(SEQ)[None, :]
    mask = (pos < lengths[:, None]).long()
    types = ((pos >= split[:, None]) & (mask == 1)).long()
    group = ((ids - 1) // 16).clamp(max=2)
    weight = mask * (1 + types)
    counts = torch.stack([((group == k).long() * weight).sum(1) for k in range(3)], 1)
    return (ids, mask, types), counts.argmax(1)


def toml_of(cfg):
    s = ("# Made by tools/make_bert_mask_fixtures.py: MASE's quantize pass by op type.\n"
         "[passes.quantize]\nby = \"type\"\n\n[passes.quantize.default.config]\nname = \"NA\"\n")
    for op, c in cfg.items():
        s += f"\n[passes.quantize.{op}.config]\nname = \"integer\"\n"
        for k, (w, f) in c.items():
            s += f"{k}_width = {w}\n{k}_frac_width = {f}\n"
    return s


def main():
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
    for _ in range(4):
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(ytr), 100):
            idx = perm[i:i + 100]
            loss = F.cross_entropy(m(*(t[idx] for t in xtr)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    os.makedirs(args.out, exist_ok=True)
    axes = {n: {0: "batch"} for n in INPUTS + ["logits"]}
    for opset in (13, 17):
        torch.onnx.export(m, tuple(t[:2] for t in xte),
                          os.path.join(args.out, f"bert_mask_opset{opset}.onnx"),
                          opset_version=opset, input_names=INPUTS, output_names=["logits"],
                          dynamic_axes=axes)
    arrays = {n: t.numpy().astype(np.int64) for n, t in zip(INPUTS, xte)}
    np.savez_compressed(os.path.join(args.out, "bert_mask_eval.npz"), y=yte.numpy(), **arrays)
    few = {n: a[:8] for n, a in arrays.items()}
    y8 = yte.numpy()[:8]
    bad_name = dict(few)
    bad_name["mask"] = bad_name.pop("attention_mask")
    bad_shape = dict(few, attention_mask=few["attention_mask"][:, :SEQ - 2])
    bad_dtype = dict(few, attention_mask=few["attention_mask"].astype(np.float32))
    for name, a in (("name", bad_name), ("shape", bad_shape), ("dtype", bad_dtype)):
        np.savez(os.path.join(args.out, f"bert_mask_bad_{name}.npz"), y=y8, **a)
    ref = {"eval_n": EVAL_N, "seq": SEQ, "configs": {}}
    with torch.no_grad():
        mb.QCFG = None
        logits = m(*xte)
        pred = logits.argmax(1)
        ref["float"] = {"logits": logits[:FIRST_N].tolist(), "predictions": pred.tolist(),
                        "accuracy": float((pred == yte).float().mean())}
        # Without the mask (every position attended): what a model that dropped the input gives.
        unmasked = m(xte[0], torch.ones_like(xte[1]), xte[2]).argmax(1)
        ref["float"]["accuracy_without_mask"] = float((unmasked == yte).float().mean())
        for name, cfg in mb.CONFIGS.items():
            mb.QCFG = cfg
            logits = m(*xte)
            pred = logits.argmax(1)
            ref["configs"][name] = {
                "formats": {op: {k: mb.fmt_json(v) for k, v in c.items()}
                            for op, c in cfg.items()},
                "logits": logits[:4].tolist(), "predictions": pred.tolist(),
                "accuracy": float((pred == yte).float().mean())}
            with open(os.path.join(args.out, f"bert_mask_{name}.toml"), "w") as f:
                f.write(toml_of(cfg))
        mb.QCFG = None
    with open(os.path.join(args.out, "bert_mask_ref.json"), "w") as f:
        json.dump(ref, f)
    print("float accuracy", ref["float"]["accuracy"], "without the mask",
          ref["float"]["accuracy_without_mask"],
          {k: v["accuracy"] for k, v in ref["configs"].items()})


if __name__ == "__main__":
    main()
