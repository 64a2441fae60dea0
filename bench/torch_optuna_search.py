#!/usr/bin/python3
"""MASE-equivalent search loop for the full-search benchmark (issue 5); driver:
bench/run_search_bench.sh.

What `./ch search` does for configs/mnist_mlp.toml (reference mase.md §3.3, §4.2, §5.1, §5.3),
re-implemented with PyTorch + Optuna and nothing else of MASE:

  - the search space flattened as MASE does: for each quantizable node in graph order (fc1, relu1,
    fc2, relu2, fc3), its seed's lists (`seed.<name>` else `seed.default`) as "node/config/field"
    keys; every key, even a one-choice list, is one trial.suggest_int(key, 0, len - 1);
  - the objective: the sampled indices mapped to a config; rebuild_model = the quantize pass on
    the one cached model, in place (MASE does not copy): each Linear with a config is replaced by
    a LinearInteger (bench/torch_fakequant_eval.py: MASE's fake quantization of input, weight and
    bias) that takes the current module's weights; ReLUs with name "NA" stay as they are;
  - basic_evaluation: under torch.no_grad(), ceil(num_samples / batch_size) unshuffled batches
    of the test split, cross-entropy loss and top-1 accuracy, reset per trial;
  - average_bitwidth: Σ n·weight_width / Σ n over the Linear modules with a config;
  - scaled metrics in sorted metric-name order, multi-objective study with per-metric directions,
    Optuna's TPESampler with its defaults (seed given, so the run is reproducible), in-memory
    storage, n_jobs = 1, the user attributes MASE sets.

Generous to PyTorch where MASE is slower: the 10000 test images are one preloaded tensor
(MASE iterates a DataLoader with per-image transforms), there is no progress bar, logger or
pickle of the study. Prints one JSON line: process wall time (python start to end, imports
included), the time of study.optimize, per-trial times, the Pareto front.

  /usr/bin/python3 bench/torch_optuna_search.py --model models/mlp_mnist.onnx --trials 100 \\
      --threads 1 --seed 0
"""
import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import onnx  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import numpy_helper  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fakequant_eval import LinearInteger, Mlp  # noqa: E402
from torch_float_eval import THREAD_ENV, blas_library, load_mnist  # noqa: E402

# configs/mnist_mlp.toml's search space, in MASE's flattened order.
LINEAR_SEED = {
    "name": ["integer"],
    "data_in_width": [4, 8],
    "data_in_frac_width": ["NA"],
    "weight_width": [2, 4, 8],
    "weight_frac_width": [4, 6],
    "bias_width": [16],
    "bias_frac_width": [8],
}
DEFAULT_SEED = {"name": ["NA"]}
NODES = [("fc1", "linear"), ("relu1", "relu"), ("fc2", "linear"), ("relu2", "relu"),
         ("fc3", "linear")]
METRICS = {"accuracy": (1.0, "maximize"), "average_bitwidth": (0.2, "minimize")}


def flattened_choices():
    choices = {}
    for node, op in NODES:
        seed = LINEAR_SEED if op == "linear" else DEFAULT_SEED
        for field, values in seed.items():
            choices[f"{node}/config/{field}"] = values
    return choices


def frac(value, width):
    """MASE: a frac of None ("NA") means width // 2."""
    return width // 2 if value in (None, "NA") else value


def to_config(choices, indexes):
    config = {}
    for key, values in choices.items():
        node, _, field = key.split("/")
        value = values[indexes[key]]
        config.setdefault(node, {})[field] = None if value == "NA" else value
    return config


def quantize_in_place(model, config):
    """MASE's quantize_transform_pass by name on the cached model (no copy)."""
    for node, _ in NODES:
        c = config[node]
        if c.get("name") != "integer":
            continue
        old = getattr(model, node)
        formats = {
            "data_in": (c["data_in_width"], frac(c["data_in_frac_width"], c["data_in_width"])),
            "weight": (c["weight_width"], frac(c["weight_frac_width"], c["weight_width"])),
            "bias": (c["bias_width"], frac(c["bias_frac_width"], c["bias_width"])),
        }
        new = LinearInteger(old.in_features, old.out_features, old.bias is not None,
                            config=formats)
        new.config_widths = c
        with torch.no_grad():
            new.weight.copy_(old.weight)
            if old.bias is not None:
                new.bias.copy_(old.bias)
        setattr(model, node, new)
    return model


def basic_evaluation(model, x, y, batch, num_samples):
    model.eval()
    loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for b in range(math.ceil(num_samples / batch)):
            xb, yb = x[b * batch:(b + 1) * batch], y[b * batch:(b + 1) * batch]
            logits = model(xb)
            loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
            seen += int(yb.shape[0])
    return {"loss": loss / seen, "accuracy": correct / seen}


def average_bitwidth(model, compare_to=32):
    bits = size = 0
    for module in model.modules():
        if isinstance(module, nn.Linear) and hasattr(module, "config_widths"):
            n = module.in_features * module.out_features
            size += n
            bits += n * module.config_widths["weight_width"]
    avg = bits / size if bits else 32.0
    return {"average_bitwidth": avg, "memory_density": compare_to / avg}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="models/mlp_mnist.onnx")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--num-samples", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    weights = [torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(args.model).graph.initializer]
    model = Mlp(weights)
    x, y = load_mnist("test")
    choices = flattened_choices()
    metric_names = sorted(METRICS)
    trial_ms, sample_ms = [], []

    def objective(trial):
        start = time.perf_counter()
        indexes = {k: trial.suggest_int(k, 0, len(v) - 1) for k, v in choices.items()}
        sampled = time.perf_counter()
        config = to_config(choices, indexes)
        q = quantize_in_place(model, config)
        metrics = basic_evaluation(q, x, y, args.batch, args.num_samples)
        sw = dict(metrics)
        hw = average_bitwidth(q)
        metrics |= hw
        scaled = {m: METRICS[m][0] * metrics[m] for m in metric_names}
        trial.set_user_attr("software_metrics", sw)
        trial.set_user_attr("hardware_metrics", hw)
        trial.set_user_attr("scaled_metrics", scaled)
        trial.set_user_attr("sampled_config", config)
        sample_ms.append((sampled - start) * 1e3)
        trial_ms.append((time.perf_counter() - start) * 1e3)
        return list(scaled.values())

    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        directions=[METRICS[m][1] for m in metric_names])
    start = time.perf_counter()
    study.optimize(objective, n_trials=args.trials, n_jobs=1)
    optimize_s = time.perf_counter() - start
    front = sorted({(round(t.values[0], 6), round(t.values[1] / 0.2, 6))
                    for t in study.best_trials}, reverse=True)
    print(json.dumps({
        "engine": "pytorch+optuna", "trials": len(study.trials), "threads": args.threads,
        "batch": args.batch, "num_samples": args.num_samples, "seed": args.seed,
        "optimize_s": optimize_s, "process_s": time.perf_counter() - PROCESS_START,
        "trial_ms": trial_ms, "suggest_ms": sample_ms,
        "front": [{"accuracy": a, "average_bitwidth": b} for a, b in front],
        "torch": torch.__version__, "optuna": optuna.__version__, "blas": blas_library(),
        "env": " ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ)}),
        flush=True)


if __name__ == "__main__":
    main()
