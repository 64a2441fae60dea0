#!/usr/bin/python3
"""GRU / LSTM fixtures exported by torch.onnx.export at opsets 11, 13 and 17, with PyTorch's float
outputs and MASE-semantics fake-quantized outputs (issue 11, recurrent ops).

Regenerate every file under tests/fixtures/rnn/ with (from the repository root):

    /usr/bin/python3 tools/make_rnn_fixtures.py

Options: --data-dir (default ~/.cache/qsearch/data/mnist), --out (default tests/fixtures/rnn).
One CPU thread, under a minute, deterministic (seeded).

Models (each written as <name>_opset{11,13,17}.onnx, the same weights at every opset):
  gru_classifier  MNIST rows as a 28-step sequence of 28 features (batch_first: Transpose before
                  the GRU), GRU hidden 32 without initial state (PyTorch exports a batch-dependent
                  ConstantOfShape of zeros), Linear(32, 10) on h_n[-1] (Y_h, Gather). Trained
                  briefly.
  lstm_bi2        2-layer bidirectional LSTM (hidden 16, batch_first; PyTorch writes one LSTM node
                  per layer with Transpose / Reshape between and Slices of one zero state),
                  Linear(32, 10) on y[:, -1] (Y). Trained briefly.
  gru_op          one forward GRU(5, 4), no initial state; outputs y [B, 6, 4] and h_n as
                  [B, 1, 4].
  gru_op_h0       one bidirectional GRU(5, 4) whose initial state is computed from the input
                  (tanh(Linear(x[:, 0]))); outputs y [B, 6, 8] and h_n as [B, 2, 4].
  lstm_op         one bidirectional LSTM(5, 4), no initial state; outputs y, h_n, c_n.
  lstm_op_h0      one forward LSTM(5, 4) with h0 and c0 computed from the input; outputs y, h_n,
                  c_n.

rnn_ref.json:
  "classifiers": per model, "logits" of the first 64 MNIST test images and "predictions" on the
      first 2000 in float32, and per config of CONFIGS the same under MASE-style fake
      quantization of the recurrent layers: each GRU / LSTM layer computes
          op(q(x, data_in); q(W, weight), q(R, weight), q(b, bias))
      with q(v) = clamp(round(v * 2^f), -2^(w-1), 2^(w-1)-1) / 2^f, round half to even; the hidden
      and cell states, gates and the Linear head stay float32.
  "ops": per one-op model, "input" (8 random samples), "outputs" (every graph output, float) and,
      under "fake", the outputs with the CONFIGS["rnn8"] formats.
  "configs": the formats.
"""

import argparse
import copy
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixtures import load_mnist  # noqa: E402

SEED = 0
FIRST_N = 64
EVAL_N = 2000
OPSETS = (11, 13, 17)

# By MASE op type ("gru", "lstm"): data_in, weight (W and R) and bias formats (width, frac).
CONFIGS = {
    "rnn8": {"data_in": (8, 5), "weight": (8, 6), "bias": (8, 5)},
    "rnn4": {"data_in": (6, 4), "weight": (4, 3), "bias": (6, 4)},
}


def q(x, fmt):
    w, f = fmt
    scale = 2.0 ** f
    return torch.clamp(torch.round(x * scale), -(2 ** (w - 1)), 2 ** (w - 1) - 1) / scale


def quantized_rnn(rnn, x, hx, cfg):
    """Runs the (batch_first) GRU/LSTM layer by layer with MASE-style fake quantization: each
    layer's input at data_in, its weights at weight and its biases at bias."""
    d = 2 if rnn.bidirectional else 1
    lstm = isinstance(rnn, nn.LSTM)
    hs, cs = [], []
    y = x
    for layer in range(rnn.num_layers):
        one = type(rnn)(y.shape[-1], rnn.hidden_size, batch_first=True,
                        bidirectional=rnn.bidirectional)
        for suffix in ("", "_reverse")[:d]:
            for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                src = getattr(rnn, f"{p}_l{layer}{suffix}")
                fmt = cfg["weight"] if p.startswith("weight") else cfg["bias"]
                getattr(one, f"{p}_l0{suffix}").data = q(src.data, fmt)
        state = None
        if hx is not None:
            if lstm:
                state = (hx[0][layer * d:(layer + 1) * d], hx[1][layer * d:(layer + 1) * d])
            else:
                state = hx[layer * d:(layer + 1) * d]
        y, s = one(q(y, cfg["data_in"]), state)
        if lstm:
            hs.append(s[0])
            cs.append(s[1])
        else:
            hs.append(s)
    if lstm:
        return y, (torch.cat(hs), torch.cat(cs))
    return y, torch.cat(hs)


QCFG = None  # the active config while computing a fake-quantized reference


def run_rnn(rnn, x, hx=None):
    if QCFG is None:
        return rnn(x, hx)
    return quantized_rnn(rnn, x, hx, QCFG)


class GruClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(28, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        _, h = run_rnn(self.gru, x.reshape(x.shape[0], 28, 28))
        return self.head(h[-1])


class LstmBi2(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        y, _ = run_rnn(self.lstm, x.reshape(x.shape[0], 28, 28))
        return self.head(y[:, -1])


class OneOp(nn.Module):
    def __init__(self, kind, bidirectional, with_state):
        super().__init__()
        self.lstm = kind == "lstm"
        self.d = 2 if bidirectional else 1
        self.rnn = (nn.LSTM if self.lstm else nn.GRU)(5, 4, batch_first=True,
                                                        bidirectional=bidirectional)
        self.init = nn.Linear(5, 2 * self.d * 4) if with_state else None

    def forward(self, x):
        hx = None
        if self.init is not None:
            b = x.shape[0]
            s = torch.tanh(self.init(x[:, 0]))
            h0 = s[:, :self.d * 4].reshape(b, self.d, 4).transpose(0, 1).contiguous()
            c0 = s[:, self.d * 4:].reshape(b, self.d, 4).transpose(0, 1).contiguous()
            hx = (h0, c0) if self.lstm else h0
        y, s = run_rnn(self.rnn, x, hx)
        if self.lstm:
            return y, s[0].transpose(0, 1), s[1].transpose(0, 1)
        return y, s.transpose(0, 1)


ONE_OPS = {
    "gru_op": ("gru", False, False),
    "gru_op_h0": ("gru", True, True),
    "lstm_op": ("lstm", True, False),
    "lstm_op_h0": ("lstm", False, True),
}


def fmt_json(f):
    return {"width": f[0], "frac": f[1], "signed": True}


def export(m, example, path, opset, n_out):
    outs = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    axes = {n: {0: "batch"} for n in ["input"] + outs}
    torch.onnx.export(m, example, path, opset_version=opset, input_names=["input"],
                      output_names=outs, dynamic_axes=axes)


def train(m, xtr, ytr, steps):
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(SEED)
    perm = torch.randperm(xtr.shape[0], generator=g)
    for i in range(steps):
        idx = perm[i * 100:(i + 1) * 100]
        loss = F.cross_entropy(m(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()


def main():
    global QCFG
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.expanduser("~/.cache/qsearch/data/mnist"))
    ap.add_argument("--out", default="tests/fixtures/rnn")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    xtr, ytr = load_mnist(args.data_dir, "train")
    xte, yte = load_mnist(args.data_dir, "test")
    os.makedirs(args.out, exist_ok=True)
    ref = {"eval_n": EVAL_N, "configs": {k: {n: fmt_json(f) for n, f in c.items()}
                                         for k, c in CONFIGS.items()},
           "classifiers": {}, "ops": {}}
    x, y = xte[:EVAL_N], yte[:EVAL_N]
    for name, model, steps in (("gru_classifier", GruClassifier(), 300),
                               ("lstm_bi2", LstmBi2(), 150)):
        train(model, xtr, ytr, steps)
        for opset in OPSETS:
            export(model, xte[:2], os.path.join(args.out, f"{name}_opset{opset}.onnx"), opset, 1)
        entry = {}
        with torch.no_grad():
            for cname in [None] + list(CONFIGS):
                QCFG = CONFIGS.get(cname)
                logits = model(x)
                pred = logits.argmax(1)
                entry[cname or "float"] = {
                    "logits": logits[:FIRST_N].tolist(), "predictions": pred.tolist(),
                    "accuracy": float((pred == y).float().mean())}
            QCFG = None
        ref["classifiers"][name] = entry
        print(name, {k: v["accuracy"] for k, v in entry.items()})
    for name, (kind, bidir, state) in ONE_OPS.items():
        m = OneOp(kind, bidir, state).eval()
        inp = torch.randn(8, 6, 5)
        n_out = 3 if kind == "lstm" else 2
        for opset in OPSETS:
            export(m, inp[:2], os.path.join(args.out, f"{name}_opset{opset}.onnx"), opset, n_out)
        with torch.no_grad():
            outs = [o.contiguous() for o in m(inp)]
            QCFG = CONFIGS["rnn8"]
            fake = [o.contiguous() for o in m(inp)]
            QCFG = None
        ref["ops"][name] = {
            "input": inp.tolist(), "input_shape": list(inp.shape),
            "outputs": [o.flatten().tolist() for o in outs],
            "shapes": [list(o.shape) for o in outs],
            "fake": [o.flatten().tolist() for o in fake]}
    with open(os.path.join(args.out, "rnn_ref.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
