#!/usr/bin/python3
"""Models exported with a symbolic sequence length (issue 11: dynamic_axes {0: 'batch',
1: 'seq'}, as Hugging Face exports do), with PyTorch's outputs at two sequence lengths.

Regenerate every file under tests/fixtures/seqlen/ with (from the repository root):

    /usr/bin/python3 tools/make_seqlen_fixtures.py

Options: --data-dir (default ~/.cache/qsearch/data/mnist), --out (default tests/fixtures/seqlen).
One CPU thread, about a minute, deterministic (seeded).

Models:
  bert_seq_opset{13,17}.onnx  tools/make_bert_mask_fixtures.py's BERT (input_ids, attention_mask,
                 token_type_ids; word + position + token-type embeddings, the extended additive
                 mask, 2 post-norm layers) trained at 12 positions and exported with the inputs
                 [batch, seq]: the position embeddings are `position_ids[:, :seq]`, the heads'
                 views `reshape(b, t, h, dh)` (Shape -> Gather -> Concat -> Reshape chains).
  gru_seq_opset17.onnx  a GRU(28, 32) classifier (batch_first) on x [batch, seq, 28], Linear(32,
                 10) on h_n[-1]; trained on MNIST rows (seq = 28).

Data and references (per model and sequence length L):
  bert_seq_eval{12,8}.npz  EVAL_N sequences of L positions (arrays input_ids, attention_mask,
                 token_type_ids, int64 [EVAL_N, L], and y).
  bert_seq_bad_seq.npz  8 sequences whose attention_mask has 8 positions and the other arrays 12:
                 'seq' cannot be bound.
  gru_seq_eval{28,14}.npz  x float32 [GRU_N, L, 28]: MNIST test images' rows (L = 14: every
                 other row), y their labels.
  seqlen_ref.json  per model and length: PyTorch's float logits of the first 64, predictions on
                 all, accuracy; for the BERT also per config of make_bert_fixtures.CONFIGS the
                 MASE fake-quantized predictions (make_bert_fixtures' semantics).
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
import make_bert_mask_fixtures as mbm  # noqa: E402
from make_torch_fixtures import load_mnist  # noqa: E402

SEED = 3
FIRST_N = 64
EVAL_N = 400
GRU_N = 500
BERT_LENGTHS = (12, 8)
GRU_LENGTHS = (28, 14)


def bert_data(n, g, seq):
    mbm.SEQ = seq  # make_data draws sequences of mbm.SEQ positions
    try:
        return mbm.make_data(n, g)
    finally:
        mbm.SEQ = mb.SEQ


class GruSeq(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(28, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


def float_ref(logits, y):
    pred = logits.argmax(1)
    return {"logits": logits[:FIRST_N].tolist(), "predictions": pred.tolist(),
            "accuracy": float((pred == y).float().mean())}


def make_bert(out, ref):
    g = torch.Generator().manual_seed(SEED)
    xtr, ytr = bert_data(12000, g, mb.SEQ)
    m = mbm.Bert()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    for _ in range(2):
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(ytr), 100):
            idx = perm[i:i + 100]
            loss = F.cross_entropy(m(*(t[idx] for t in xtr)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    names = mbm.INPUTS
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes["logits"] = {0: "batch"}
    sample = tuple(t[:2] for t in xtr)
    for opset in (13, 17):
        torch.onnx.export(m, sample, os.path.join(out, f"bert_seq_opset{opset}.onnx"),
                          opset_version=opset, input_names=names, output_names=["logits"],
                          dynamic_axes=axes)
    ref["bert"] = {}
    for seq in BERT_LENGTHS:
        x, y = bert_data(EVAL_N, g, seq)
        arrays = {n: t.numpy().astype(np.int64) for n, t in zip(names, x)}
        np.savez_compressed(os.path.join(out, f"bert_seq_eval{seq}.npz"), y=y.numpy(), **arrays)
        if seq == mb.SEQ:
            bad = {n: a[:8] for n, a in arrays.items()}
            bad["attention_mask"] = bad["attention_mask"][:, :8]
            np.savez(os.path.join(out, "bert_seq_bad_seq.npz"), y=y.numpy()[:8], **bad)
        with torch.no_grad():
            mb.QCFG = None
            r = float_ref(m(*x), y)
            r["configs"] = {}
            for name, cfg in mb.CONFIGS.items():
                mb.QCFG = cfg
                pred = m(*x).argmax(1)
                r["configs"][name] = {
                    "formats": {op: {k: mb.fmt_json(v) for k, v in c.items()}
                                for op, c in cfg.items()},
                    "predictions": pred.tolist(),
                    "accuracy": float((pred == y).float().mean())}
            mb.QCFG = None
        ref["bert"][str(seq)] = r


def make_gru(out, ref, data_dir):
    xtr, ytr = load_mnist(data_dir, "train")
    xte, yte = load_mnist(data_dir, "test")
    xtr, ytr = xtr[:20000].reshape(-1, 28, 28), ytr[:20000]
    xte, yte = xte[:GRU_N].reshape(-1, 28, 28), yte[:GRU_N]
    g = torch.Generator().manual_seed(SEED)
    m = GruSeq()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(3):
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(ytr), 100):
            idx = perm[i:i + 100]
            loss = F.cross_entropy(m(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    torch.onnx.export(m, xtr[:2], os.path.join(out, "gru_seq_opset17.onnx"), opset_version=17,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch", 1: "seq"}, "logits": {0: "batch"}})
    ref["gru"] = {}
    for seq in GRU_LENGTHS:
        x = xte[:, ::28 // seq, :].contiguous()
        assert x.shape[1] == seq
        np.savez_compressed(os.path.join(out, f"gru_seq_eval{seq}.npz"), x=x.numpy(),
                            y=yte.numpy())
        with torch.no_grad():
            ref["gru"][str(seq)] = float_ref(m(x), yte)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.expanduser("~/.cache/qsearch/data/mnist"))
    ap.add_argument("--out", default="tests/fixtures/seqlen")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    ref = {"eval_n": EVAL_N, "gru_n": GRU_N}
    make_bert(args.out, ref)
    make_gru(args.out, ref, args.data_dir)
    with open(os.path.join(args.out, "seqlen_ref.json"), "w") as f:
        json.dump(ref, f)
    print({k: {s: r["accuracy"] for s, r in v.items()} for k, v in ref.items()
           if isinstance(v, dict)})


if __name__ == "__main__":
    main()
