#!/usr/bin/python3
"""PyTorch side of the quantized evaluation benchmark (issue 4); driver: bench/run_quant_eval.sh.

The "MASE-equivalent" per-trial cost of one quantized configuration: what MASE's search does for
a trial of the MNIST MLP (reference mase.md §3.4, §5.1, §6), re-implemented with MASE's semantics:

  1. the quantize pass: every nn.Linear is replaced by a LinearInteger module (an nn.Linear whose
     forward fake-quantizes input, weight and bias with MASE's integer quantizer,
     clamp(torch.round(x * 2**f), lo, hi) / 2**f, then calls F.linear), its weight and bias
     copied; the ReLUs stay unquantized;
  2. the basic_evaluation runner: model.eval(), torch.no_grad(), batches sliced from the
     preloaded 10000-image test tensor (pixels / 255), cross-entropy loss and top-1 accuracy.

Prints one JSON line with the milliseconds of each trial (1 + 2, after an untimed warm-up
trial), the accuracy, and for reference the float eager evaluation time (2 only, nn.Linear).
Run with Debian's interpreter (/usr/bin/python3: python3-torch on OpenBLAS):

  /usr/bin/python3 bench/torch_fakequant_eval.py --model models/mlp_mnist.onnx --threads 1 \\
      --batch 256 --reps 7 --data-in 8.4 --weight 8.6 --bias 16.8
"""
import argparse
import copy
import json
import os
import sys
import time

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_float_eval import THREAD_ENV, blas_library, load_mnist  # noqa: E402


def integer_quantize(x, width, frac):
    """MASE's _integer_quantize (signed): float32 in, float32 out."""
    scale = 2 ** frac
    return torch.clamp(torch.round(x * scale), -(2 ** (width - 1)), 2 ** (width - 1) - 1) / scale


class LinearInteger(nn.Linear):
    """MASE's LinearInteger: quantizes x, W and b on every forward, float accumulation."""

    def __init__(self, in_features, out_features, bias=True, config=None):
        super().__init__(in_features, out_features, bias)
        self.config = config

    def forward(self, x):
        c = self.config
        x = integer_quantize(x, *c["data_in"])
        w = integer_quantize(self.weight, *c["weight"])
        b = integer_quantize(self.bias, *c["bias"]) if self.bias is not None else None
        return F.linear(x, w, b)


class Mlp(nn.Module):
    """The MNIST MLP: Flatten, 784-256-128-10 with ReLU (models/mlp_mnist.onnx, or the export of
    bench/torch_float_eval.py). `weights`: the ONNX initializers in file order, weight then bias
    of each Linear."""

    def __init__(self, weights):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.relu1 = nn.Linear(784, 256), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(256, 128), nn.ReLU()
        self.fc3 = nn.Linear(128, 10)
        with torch.no_grad():
            for i, name in enumerate(("fc1", "fc2", "fc3")):
                getattr(self, name).weight.copy_(weights[2 * i])
                getattr(self, name).bias.copy_(weights[2 * i + 1])

    def forward(self, x):
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(self.flatten(x))))))


class Conv2dInteger(nn.Conv2d):
    """MASE's Conv2dInteger: quantizes x, W and b on every forward, float accumulation."""

    def __init__(self, *args, config=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config

    def forward(self, x):
        c = self.config
        x = integer_quantize(x, *c["data_in"])
        w = integer_quantize(self.weight, *c["weight"])
        b = integer_quantize(self.bias, *c["bias"]) if self.bias is not None else None
        return self._conv_forward(x, w, b)


def matmul_integer(a, b, config):
    """MASE's matmul_integer / bmm_integer: operand 0 at the data_in_* formats (data_in_0),
    operand 1 at the weight_* formats (data_in_1), float matmul of the quantized values."""
    return torch.matmul(integer_quantize(a, *config["data_in"]),
                        integer_quantize(b, *config["weight"]))


def quantize_transform(model, config):
    """MASE's quantize_transform_pass: every nn.Linear / nn.Conv2d (at any depth) becomes a new
    LinearInteger / Conv2dInteger with the weights copied; a module with a `matmul_config`
    attribute (the ViT's attention in bench/torch_user_models.py) gets MASE's matmul_integer."""
    q = copy.deepcopy(model)
    for parent in list(q.modules()):
        if hasattr(parent, "matmul_config"):
            parent.matmul_config = config
        for name, module in list(parent.named_children()):
            if isinstance(module, nn.Linear):
                new = LinearInteger(module.in_features, module.out_features,
                                    module.bias is not None, config=config)
            elif isinstance(module, nn.Conv2d):
                new = Conv2dInteger(module.in_channels, module.out_channels, module.kernel_size,
                                    stride=module.stride, padding=module.padding,
                                    dilation=module.dilation, groups=module.groups,
                                    bias=module.bias is not None, config=config)
            else:
                continue
            with torch.no_grad():
                new.weight.copy_(module.weight)
                if module.bias is not None:
                    new.bias.copy_(module.bias)
            setattr(parent, name, new)
    return q


def evaluate(model, x, y, batch):
    """MASE's basic_evaluation: mean cross-entropy and top-1 accuracy over the batches."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for b in range(0, x.shape[0], batch):
            logits = model(x[b:b + batch])
            loss += float(F.cross_entropy(logits, y[b:b + batch], reduction="sum"))
            correct += int((logits.argmax(dim=1) == y[b:b + batch]).sum())
    return loss / x.shape[0], correct / x.shape[0]


def fmt(s):
    w, f = s.split(".")
    return int(w), int(f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="models/mlp_mnist.onnx")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--data-in", default="8.4")
    p.add_argument("--weight", default="8.6")
    p.add_argument("--bias", default="16.8")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    weights = [torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(args.model).graph.initializer]
    model = Mlp(weights)
    x, y = load_mnist("test")
    config = {"data_in": fmt(args.data_in), "weight": fmt(args.weight), "bias": fmt(args.bias)}

    trial_ms, float_ms = [], []
    accuracy = float_accuracy = None
    for r in range(args.reps + 1):  # r == 0: warm-up
        start = time.perf_counter()
        q = quantize_transform(model, config)
        _, accuracy = evaluate(q, x, y, args.batch)
        t = time.perf_counter() - start
        start = time.perf_counter()
        _, float_accuracy = evaluate(model, x, y, args.batch)
        tf = time.perf_counter() - start
        if r > 0:
            trial_ms.append(t * 1e3)
            float_ms.append(tf * 1e3)
    print(json.dumps({
        "engine": "torch", "mode": "fake-quant (MASE LinearInteger)", "threads": args.threads,
        "batch": args.batch, "samples": int(x.shape[0]),
        "formats": f"data_in {args.data_in}, weight {args.weight}, bias {args.bias}",
        "trial_ms": trial_ms, "trial_ms_median": sorted(trial_ms)[len(trial_ms) // 2],
        "accuracy": accuracy, "float_eval_ms": float_ms, "float_accuracy": float_accuracy,
        "torch": torch.__version__, "blas": blas_library(),
        "env": " ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ)}),
        flush=True)


if __name__ == "__main__":
    main()
