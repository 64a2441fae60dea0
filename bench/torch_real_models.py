#!/usr/bin/python3
"""PyTorch side of the torchvision-class benchmark (issue 14, "Measure"); driver:
bench/run_real_models.sh.

torchvision is not installed, so its architectures are written out here (ResNet-18 is
bench/torch_user_models.py's): resnet18, mobilenet_v2 and efficientnet_b0 as torchvision builds
them (1000 classes, torchvision's init, random weights seeded with torch.manual_seed(0)), and the
MLP 784-4096-4096-10 (nn.Linear's default init).

  /usr/bin/python3 bench/torch_real_models.py prepare --out DIR
      Writes once (skipped when DIR/stamp matches this script's settings):
        DIR/<model>.pt          the weights, for the eager runs;
        DIR/<model>_<hw>.onnx   hw 32 and 224 for the CNNs, mlp.onnx for the MLP: opset 13,
                                batch dynamic, exported with training=PRESERVE and
                                do_constant_folding=False, so every BatchNorm stays a
                                BatchNormalization node (MASE's semantics: the conv is
                                quantized, BatchNorm stays float; docs/onnx.md);
        DIR/x32.npz, x224.npz   random N(0,1) inputs [N, 3, hw, hw] and random labels 0..999
                                (x32: 512 samples, x224: 128), arrays x, y;
        DIR/mlp.npz             2048 random inputs [N, 784], labels 0..9.
  /usr/bin/python3 bench/torch_real_models.py run --model resnet18 --models DIR --data DIR/x32.npz \\
      --cases 1:64,16:128,64:512 --threads 2 --reps 2
      For each case BATCH:N, PyTorch eager float (model.eval(), torch.no_grad(), cross-entropy
      and top-1 as MASE's basic_evaluation) and MASE's fake quantization
      (bench/torch_fakequant_eval.py's quantize_transform: every nn.Conv2d / nn.Linear becomes
      Conv2dInteger / LinearInteger, BatchNorm stays float; the quantize pass is timed with each
      pass, as a search trial pays it) over the first N samples: an untimed warm-up on at most 8
      samples, then REPS timed passes (each cut short after the batch that crosses
      --pass-budget seconds, 8 by default: its time is then the quantize pass's plus the
      evaluation's scaled to N samples). With --reference RESULTS.jsonl (an earlier variant's results), a case whose
      warm-up runs at under a third of that variant's rate is skipped. One JSON line per
      (case, mode).
  /usr/bin/python3 bench/torch_real_models.py table RESULTS.jsonl THREADS
      The markdown table of bench/run_real_models.sh's results.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fakequant_eval import evaluate, fmt, quantize_transform  # noqa: E402
from torch_float_eval import THREAD_ENV, blas_library  # noqa: E402
from torch_user_models import ResNet18  # noqa: E402

MODELS = ("resnet18", "mobilenet_v2", "efficientnet_b0", "mlp")
N32, N224, NMLP = 512, 128, 2048
STAMP = f"v1 opset13 preserve n32={N32} n224={N224} nmlp={NMLP}"


def make_divisible(v, divisor=8):
    """torchvision's _make_divisible (channel counts rounded to multiples of 8)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_act(cin, cout, k, stride=1, groups=1, act=nn.ReLU6, eps=1e-5):
    """torchvision's Conv2dNormActivation: conv (no bias), BatchNorm, activation (or none)."""
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=eps)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


def init_cnn(model, linear_init):
    """torchvision's init of MobileNetV2 / EfficientNet: kaiming_normal_ (fan_out) convs, zero
    biases, BatchNorm ones and zeros, the classifier by `linear_init`."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            linear_init(m)
            nn.init.zeros_(m.bias)


# --- MobileNetV2 (torchvision.models.mobilenet_v2, width 1.0) ------------------------------
class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn_act(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        cin, last = 32, 1280
        features = [conv_bn_act(3, cin, 3, 2)]
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
            cout = make_divisible(c)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(conv_bn_act(cin, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))
        init_cnn(self, lambda m: nn.init.normal_(m.weight, 0, 0.01))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# --- EfficientNet-B0 (torchvision.models.efficientnet_b0) ----------------------------------
class SqueezeExcitation(nn.Module):
    def __init__(self, cin, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(cin, squeeze, 1), nn.Conv2d(squeeze, cin, 1)
        self.activation, self.scale_activation = nn.SiLU(), nn.Sigmoid()

    def forward(self, x):
        s = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(s)


class MBConv(nn.Module):
    def __init__(self, expand, k, stride, cin, cout):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        hidden = make_divisible(cin * expand)
        layers = []
        if hidden != cin:
            layers.append(conv_bn_act(cin, hidden, 1, act=nn.SiLU, eps=1e-3))
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU, eps=1e-3),
                   SqueezeExcitation(hidden, max(1, cin // 4)),
                   conv_bn_act(hidden, cout, 1, act=None, eps=1e-3)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):  # stochastic depth is the identity in eval mode
        return x + self.block(x) if self.use_res else self.block(x)


class EfficientNetB0(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        layers = [conv_bn_act(3, 32, 3, 2, act=nn.SiLU, eps=1e-3)]
        for e, k, s, cin, cout, n in ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2),
                                      (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                                      (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                                      (6, 3, 1, 192, 320, 1)):
            stage = [MBConv(e, k, s if i == 0 else 1, cin if i == 0 else cout, cout)
                     for i in range(n)]
            layers.append(nn.Sequential(*stage))
        layers.append(conv_bn_act(320, 1280, 1, act=nn.SiLU, eps=1e-3))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

        def uniform(m):
            r = 1.0 / m.out_features ** 0.5
            nn.init.uniform_(m.weight, -r, r)

        init_cnn(self, uniform)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class Mlp4096(nn.Module):
    """784-4096-4096-10 with ReLU, nn.Linear's default init."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                                 nn.ReLU(), nn.Linear(4096, 10))

    def forward(self, x):
        return self.net(x)


def build(name):
    torch.manual_seed(0)
    return {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "efficientnet_b0": EfficientNetB0,
            "mlp": Mlp4096}[name]().eval()


def load(name, models_dir):
    m = build(name)
    m.load_state_dict(torch.load(os.path.join(models_dir, f"{name}.pt")))
    return m.eval()


def prepare(args):
    os.makedirs(args.out, exist_ok=True)
    stamp = os.path.join(args.out, "stamp")
    if os.path.exists(stamp) and open(stamp).read().strip() == STAMP:
        print(f"models in {args.out} are up to date ({STAMP})")
        return
    for name in MODELS:
        model = build(name)
        torch.save(model.state_dict(), os.path.join(args.out, f"{name}.pt"))
        shapes = {"mlp.onnx": (2, 784)} if name == "mlp" else {
            f"{name}_{hw}.onnx": (2, 3, hw, hw) for hw in (32, 224)}
        for fname, shape in shapes.items():
            torch.onnx.export(model, torch.zeros(*shape), os.path.join(args.out, fname),
                              opset_version=13, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              training=torch.onnx.TrainingMode.PRESERVE,
                              do_constant_folding=False)
    rng = np.random.default_rng(0)
    for fname, shape, classes in (("x32.npz", (N32, 3, 32, 32), 1000),
                                  ("x224.npz", (N224, 3, 224, 224), 1000),
                                  ("mlp.npz", (NMLP, 784), 10)):
        y = rng.integers(0, classes, shape[0])
        y[0] = classes - 1  # qsearch's class count is 1 + the largest label
        np.savez(os.path.join(args.out, fname), x=rng.standard_normal(shape, dtype=np.float32),
                 y=y.astype(np.int64))
    with open(stamp, "w") as f:
        f.write(STAMP + "\n")
    print(f"wrote the models and data sets into {args.out}")


def timed_pass(model, config, x, y, batch, pass_budget):
    """One pass (fake: MASE's quantize pass, then the evaluation) over x, cut short after the
    batch that crosses `pass_budget` seconds (on a loaded machine PyTorch's OpenMP spinning can
    make a pass take minutes). Returns (the pass's seconds, loss, accuracy); a pass cut short
    reports the quantize pass's time plus its evaluation time scaled to all of x, so that the
    per-pass cost is still spread over x.shape[0] samples, as in a whole pass."""
    start = time.perf_counter()
    m = quantize_transform(model, config) if config else model
    t_quant = time.perf_counter() - start
    done, loss, acc = 0, None, None
    while done < x.shape[0]:
        # evaluate() is MASE's basic_evaluation over the batches given (here: one at a time).
        loss, acc = evaluate(m, x[done:done + batch], y[done:done + batch], batch)
        done += min(batch, x.shape[0] - done)
        if time.perf_counter() - start > pass_budget:
            break
    t_eval = time.perf_counter() - start - t_quant
    return t_quant + t_eval * x.shape[0] / done, loss, acc


def reference_rates(path, model, data):
    """(batch, mode) -> the median samples/s an earlier PyTorch variant measured for this model
    and data in bench/run_real_models.sh's results file (empty when none)."""
    rates = {}
    if not path or not os.path.exists(path):
        return {}
    for line in open(path):
        r = json.loads(line)
        if r["engine"] != "torch":
            continue
        for o in r["out"]:
            if o["model"] == model and o["data"] == data:
                rates.setdefault((o["batch"], o["mode"]), []).extend(o["samples_per_s"])
    return {k: statistics.median(v) for k, v in rates.items()}


def run(args):
    torch.set_num_threads(args.threads)
    beat = reference_rates(args.reference, args.model, os.path.basename(args.data))
    model = load(args.model, args.models)
    d = np.load(args.data)
    x_all, y_all = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    config = {"data_in": fmt(args.data_in), "weight": fmt(args.weight), "bias": fmt(args.bias)}
    for case in args.cases.split(","):
        batch, n = (int(v) for v in case.split(":"))
        x, y = x_all[:n], y_all[:n]
        for mode in ("float", "fake"):
            cfg = config if mode == "fake" else None
            # Warm-up on at most 8 samples; its rate decides whether this variant can win.
            w = min(batch, 8)
            t, _, _ = timed_pass(model, cfg, x[:w], y[:w], w, args.pass_budget)
            ref = beat.get((batch, mode))
            if ref and w / t < ref / 3:
                # Three times slower than the other variant even counting the warm-up's costs
                # (a loaded machine, OpenMP spinning): it cannot be the better one; skipped.
                print(json.dumps({
                    "engine": "torch", "model": args.model, "data": os.path.basename(args.data),
                    "mode": mode, "threads": args.threads, "batch": batch, "samples": n,
                    "skipped": f"warm-up {w / t:.1f} samples/s < 1/3 of {ref:.1f}",
                    "seconds": [], "samples_per_s": []}), flush=True)
                continue
            times, rates, loss, acc = [], [], None, None
            for _ in range(args.reps):
                t, loss, acc = timed_pass(model, cfg, x, y, batch, args.pass_budget)
                times.append(t)
                rates.append(n / t)
            print(json.dumps({
                "engine": "torch", "model": args.model, "data": os.path.basename(args.data),
                "mode": mode, "threads": args.threads, "batch": batch, "samples": n,
                "seconds": times, "samples_per_s": rates, "accuracy": acc,
                "loss": loss, "torch": torch.__version__, "blas": blas_library(),
                "env": " ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ)}),
                flush=True)


def table(args):
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    med = statistics.median
    q, t, loads, failed = {}, {}, [], set()
    for r in rows:
        loads += [r["load_before"], r["load_after"]]
        if r["rc"] != 0:
            failed.add(f"{r['engine']} {r['model']} {r['hw']} {r.get('mode', '')}".strip())
        for o in r["out"]:
            key = (r["model"], r["hw"], o["batch"], o["samples"], o["mode"])
            if r["engine"] == "torch":
                if not o["samples_per_s"]:
                    continue  # skipped: slower than the other variant
                d = t.setdefault(key, {}).setdefault(r["variant"], {"rate": [], "rss": []})
                d["rate"] += o["samples_per_s"]
            else:
                d = q.setdefault(key, {"rate": [], "rss": []})
                d["rate"].append(o["samples_per_s"])
            d["rss"].append(r["max_rss_kb"])
            d["loss"] = o.get("loss")

    def best_variant(key):
        vs = t.get(key)
        if not vs:
            return None, None
        v = max(vs, key=lambda k: med(vs[k]["rate"]))
        return v, vs[v]

    def rate(d):
        return f"{med(d['rate']):,.1f}" if d else "-"

    def ratio(a, b):
        return f"**{med(a['rate']) / med(b['rate']):.2f}x**" if a and b else "-"

    def rss(d):
        return f"{med(d['rss']) / 1024:,.0f}" if d else "-"

    print(f"{args.threads} threads each side; samples/s = median over rounds and passes of the "
          "evaluation loop (qsearch: `eval --json` samples_per_s, one process per run; PyTorch: "
          "timed passes after a warm-up on 8 samples, its better OpenMP wait policy, default or "
          "PASSIVE, named per row; fake-quant = MASE's quantize pass + evaluation per pass, a pass "
          "cut short by the time budget counted as its quantize pass + its evaluation scaled to "
          "N). Peak RSS "
          "(MB) = /usr/bin/time -v of the whole process (PyTorch: one process runs all batches "
          "and both modes of a model and size). Goals (issue 14): float >= 1.5x PyTorch, "
          "int >= 2x qsearch float on the CNNs, int >= 5x PyTorch fake-quant.")
    print()
    print("| model | input | batch / N | qsearch float | PyTorch float | **float vs PyTorch** "
          "| qsearch int | **int / qsearch float** | PyTorch fake-quant | **int vs fake-quant** "
          "| peak RSS MB: qsearch float / int / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    order = {m: i for i, m in enumerate(MODELS)}
    keys = sorted({k[:4] for k in list(q) + list(t)},
                  key=lambda k: (order.get(k[0], 9), int(k[1]) if k[1].isdigit() else 0, k[2]))
    for model, hw, batch, n in keys:
        qf, qi = q.get((model, hw, batch, n, "float")), q.get((model, hw, batch, n, "int"))
        vf, tf = best_variant((model, hw, batch, n, "float"))
        vq, tq = best_variant((model, hw, batch, n, "fake"))
        shape = "784" if model == "mlp" else f"3x{hw}x{hw}"
        print(f"| {model} | {shape} | {batch} / {n} | {rate(qf)} | {rate(tf)} "
              f"{'(' + vf + ')' if vf else ''} | {ratio(qf, tf)} | {rate(qi)} | {ratio(qi, qf)} "
              f"| {rate(tq)} {'(' + vq + ')' if vq else ''} | {ratio(qi, tq)} "
              f"| {rss(qf)} / {rss(qi)} / {rss(tf)} |")
    print()
    if loads:
        print(f"load average (1 min) before/after each run: min {min(loads):.2f}, median "
              f"{med(loads):.2f}, max {max(loads):.2f}")
    if failed:
        print("failed or timed out: " + ", ".join(sorted(failed)))
    tr = next((o for r in rows if r["engine"] == "torch" for o in r["out"]), None)
    if tr:
        print(f"PyTorch {tr['torch']}, BLAS: "
              f"{', '.join(os.path.basename(b) for b in tr['blas'] if 'libopenblas' in b)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("prepare")
    e.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", choices=MODELS, required=True)
    r.add_argument("--models", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--cases", required=True, help="BATCH:N,BATCH:N,...")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--reps", type=int, default=1)
    r.add_argument("--reference", help="results .jsonl of an earlier PyTorch variant: skip a case "
                   "whose warm-up runs at under a third of its rate")
    r.add_argument("--pass-budget", type=float, default=8.0,
                   help="seconds after which a pass stops at the end of its current batch")
    r.add_argument("--data-in", default="8.4")
    r.add_argument("--weight", default="8.6")
    r.add_argument("--bias", default="16.8")
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("threads")
    args = p.parse_args()
    {"prepare": prepare, "run": run, "table": table}[args.cmd](args)


if __name__ == "__main__":
    main()
