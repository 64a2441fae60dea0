#!/usr/bin/python3
"""PyTorch side of the float eval throughput benchmark (issue 2); driver: bench/run_float_eval.sh.

Run with Debian's interpreter (/usr/bin/python3: python3-torch on OpenBLAS).

  /usr/bin/python3 bench/torch_float_eval.py export --out BUILD/bench_models [--train-steps 300]
      Trains (briefly, seeded) and writes mlp.onnx / cnn.onnx (opset 13, dynamic batch, batch
      norm kept as a node) plus mlp.pt / cnn.pt (the same weights for the eager runs).
  /usr/bin/python3 bench/torch_float_eval.py run --models BUILD/bench_models --threads 1 \\
      --batch 256 --reps 5
      Times eager evaluation (model.eval(), torch.no_grad()) of each model on the 10000 MNIST
      test images and prints one JSON line per model: samples/s of every repetition, accuracy.

Models: "mlp" = Flatten, 784-256-128-10 with ReLU; "cnn" = the residual CNN of the PyTorch
fixtures (tools/make_torch_fixtures.py): conv(1->8)+bn+relu, maxpool, a residual block
relu(bn(conv(x))) + x, maxpool, linear(392->10). MNIST pixels are /255 as float32, read from
the IDX files of the qsearch data directory ($QSEARCH_DATA or ~/.cache/qsearch/data).
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def data_dir():
    return os.path.join(os.environ.get("QSEARCH_DATA", os.path.expanduser("~/.cache/qsearch/data")),
                        "mnist")


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file (run scripts/setup.sh)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir(), f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(data_dir(), f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                                 nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


class ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x))) + x


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.block = ResBlock(8)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.block(x))
        return self.fc(x.view(x.size(0), -1))


MODELS = {"mlp": Mlp, "cnn": Cnn}
# Environment variables that change how PyTorch's threads behave (recorded with the results).
THREAD_ENV = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_CORETYPE"]


def export(args):
    os.makedirs(args.out, exist_ok=True)
    x, y = load_mnist("train")
    for name, cls in MODELS.items():
        torch.manual_seed(args.seed)
        model = cls()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(args.seed)
        model.train()
        for _ in range(args.train_steps):
            idx = torch.randint(0, x.shape[0], (128,), generator=gen)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        model.eval()
        torch.save(model.state_dict(), os.path.join(args.out, f"{name}.pt"))
        torch.onnx.export(model, torch.zeros(2, 1, 28, 28), os.path.join(args.out, f"{name}.onnx"),
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        print(f"wrote {args.out}/{name}.onnx and {name}.pt ({args.train_steps} Adam steps)")


def blas_library():
    """The BLAS shared object this process really loaded (OpenBLAS expected)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower()}
        return sorted(libs)
    except OSError:
        return []


def run(args):
    torch.set_num_threads(args.threads)
    x, y = load_mnist("test")
    for name in args.model:
        model = MODELS[name]()
        model.load_state_dict(torch.load(os.path.join(args.models, f"{name}.pt")))
        model.eval()
        rates = []
        correct = 0
        with torch.no_grad():
            for b in range(0, x.shape[0], args.batch):  # warm-up pass, not timed
                model(x[b:b + args.batch])
            for _ in range(args.reps):
                correct = 0
                start = time.perf_counter()
                for b in range(0, x.shape[0], args.batch):
                    pred = model(x[b:b + args.batch]).argmax(dim=1)
                    correct += int((pred == y[b:b + args.batch]).sum())
                rates.append(x.shape[0] / (time.perf_counter() - start))
        print(json.dumps({"engine": "torch", "mode": "eager", "model": name,
                          "threads": args.threads, "batch": args.batch, "samples": x.shape[0],
                          "samples_per_s": rates, "accuracy": correct / x.shape[0],
                          "torch": torch.__version__, "blas": blas_library(),
                          "env": " ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV
                                          if k in os.environ)}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--train-steps", type=int, default=300)
    e.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--models", required=True)
    r.add_argument("--model", action="append", choices=sorted(MODELS), default=None)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--batch", type=int, default=256)
    r.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    if args.cmd == "export":
        export(args)
    else:
        args.model = args.model or ["mlp", "cnn"]
        run(args)


if __name__ == "__main__":
    main()
