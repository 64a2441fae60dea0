#!/usr/bin/python3
"""PyTorch side of the wide-MLP scheduling benchmark (issue 14); driver: bench/run_mlp_wide.sh.

  /usr/bin/python3 bench/torch_mlp_wide.py export --out DIR
      Writes DIR/mlp_wide.onnx (Flatten, Linear 784-4096, ReLU, Linear 4096-4096, ReLU,
      Linear 4096-10; random weights, torch.manual_seed(0) and PyTorch's default init; opset 13,
      dynamic batch) and DIR/mlp_wide.pt (the same weights for the eager runs).
  /usr/bin/python3 bench/torch_mlp_wide.py run --models DIR --threads 2 --batch 64 \\
      --samples 2048 --reps 3 [--mode float|fake]
      Times eager evaluation (model.eval(), torch.no_grad(), cross-entropy and top-1 as MASE's
      basic_evaluation) of the first SAMPLES MNIST test images after an untimed warm-up pass and
      prints one JSON line. --mode fake times MASE's fake quantization (bench/torch_fakequant_eval.py
      LinearInteger: 8-bit inputs 8.4, weights 8.7, biases 16.8, the formats of
      configs/mnist_mlp_int8.toml).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fakequant_eval import evaluate, quantize_transform  # noqa: E402
from torch_float_eval import THREAD_ENV, blas_library, load_mnist  # noqa: E402


def make_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                         nn.ReLU(), nn.Linear(4096, 10))


def export(args):
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model = make_model().eval()
    torch.save(model.state_dict(), os.path.join(args.out, "mlp_wide.pt"))
    torch.onnx.export(model, torch.zeros(2, 1, 28, 28), os.path.join(args.out, "mlp_wide.onnx"),
                      opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print(f"wrote {args.out}/mlp_wide.onnx and mlp_wide.pt")


def run(args):
    torch.set_num_threads(args.threads)
    model = make_model()
    model.load_state_dict(torch.load(os.path.join(args.models, "mlp_wide.pt")))
    model.eval()
    if args.mode == "fake":
        model = quantize_transform(model, {"data_in": (8, 4), "weight": (8, 7), "bias": (16, 8)})
    x, y = load_mnist("test")
    x, y = x[:args.samples], y[:args.samples]
    times, loss, acc = [], None, None
    for r in range(args.reps + 1):  # r == 0: warm-up
        start = time.perf_counter()
        loss, acc = evaluate(model, x, y, args.batch)
        if r > 0:
            times.append(time.perf_counter() - start)
    print(json.dumps({
        "engine": "torch", "model": "mlp_wide", "mode": args.mode, "threads": args.threads,
        "batch": args.batch, "samples": int(x.shape[0]),
        "samples_per_s": [x.shape[0] / t for t in times], "accuracy": acc, "loss": loss,
        "torch": torch.__version__, "blas": blas_library(),
        "env": " ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ)}),
        flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--models", required=True)
    r.add_argument("--mode", choices=["float", "fake"], default="float")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--samples", type=int, default=2048)
    r.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    export(args) if args.cmd == "export" else run(args)


if __name__ == "__main__":
    main()
