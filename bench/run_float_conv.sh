#!/usr/bin/env bash
# Issue 14, float convolutions: `qsearch eval --mode float` of torchvision-class CNNs against
# PyTorch eager float in the same run, for one or more qsearch builds (e.g. main before and
# after a change), interleaved, several rounds, medians, with the load average of each run.
#
#   bench/run_float_conv.sh MODELS_DIR name=QSEARCH [name=QSEARCH ...]
#   e.g. bench/run_float_conv.sh /tmp/real before=/tmp/main/qsearch after=build/bin/qsearch
#
# MODELS_DIR is what `bench/torch_real_models.py prepare --out MODELS_DIR` writes (resnet18,
# mobilenet_v2, efficientnet_b0 as torchvision builds them, random seeded weights, BatchNorm
# kept, opset 13, dynamic batch; x32.npz / x224.npz random inputs). Per round and case, every
# qsearch build runs once (`--threads T eval --mode float --batch-size B --num-samples N
# --json`: the evaluation loop's samples_per_s, import and planning excluded), then PyTorch
# (torch.set_num_threads(T), OMP/OPENBLAS_NUM_THREADS=T, OMP_WAIT_POLICY=PASSIVE: on this
# loaded shared machine OpenMP's spinning workers cost PyTorch several times its speed) times
# one float pass (model.eval(), torch.no_grad(), MASE's basic_evaluation) after a warm-up.
# Prints a markdown table of medians (samples/s) and ratios to PyTorch; raw lines in
# OUT (default /tmp/float_conv_results.jsonl).
#
# CPU=1 also measures CPU seconds per sample, which a loaded shared machine distorts far less than
# wall time (neither side spins: qsearch's pool waits on a condition variable, PyTorch runs with
# OMP_WAIT_POLICY=PASSIVE): qsearch's as the difference of two runs' user + sys time (N samples
# and one batch, so import, planning and first-touch cancel), PyTorch's as time.process_time()
# over its timed pass; the table then adds CPU-per-sample ratios.
#
# Environment: THREADS (2), ROUNDS (3), CPU (0), CASES ("resnet18:32:64:512 mobilenet_v2:32:64:512
#   efficientnet_b0:32:64:512 resnet18:224:16:32 mobilenet_v2:224:16:32
#   efficientnet_b0:224:16:32", model:size:batch:samples), OUT, TIMEOUT (600 s per run).
set -euo pipefail
MODELS=${1:?usage: bench/run_float_conv.sh MODELS_DIR name=QSEARCH [name=QSEARCH ...]}
shift
[[ $# -ge 1 ]] || { echo "give at least one name=QSEARCH" >&2; exit 1; }
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TIMEOUT=${TIMEOUT:-600}
OUT=${OUT:-/tmp/float_conv_results.jsonl}
CASES=${CASES:-"resnet18:32:64:512 mobilenet_v2:32:64:512 efficientnet_b0:32:64:512 resnet18:224:16:32 mobilenet_v2:224:16:32 efficientnet_b0:224:16:32"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
: >"$OUT"
load1() { cut -d' ' -f1 /proc/loadavg; }

torch_rate() {  # model size batch samples -> one JSON line
  OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE \
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$ROOT/bench:${PYTHONPATH:-}" \
    timeout "$TIMEOUT" "$PY" - "$MODELS" "$@" "$THREADS" <<'EOF'
import json, sys, time
import numpy as np, torch
from torch_fakequant_eval import evaluate
from torch_real_models import load
models, model, size, batch, n, threads = sys.argv[1:7]
batch, n = int(batch), int(n)
torch.set_num_threads(int(threads))
m = load(model, models)
d = np.load(f"{models}/x{size}.npz")
x, y = torch.from_numpy(d["x"][:n]), torch.from_numpy(d["y"][:n])
evaluate(m, x[:batch], y[:batch], batch)  # warm-up
t = time.perf_counter()
c = time.process_time()
loss, acc = evaluate(m, x, y, batch)
print(json.dumps({"samples_per_s": n / (time.perf_counter() - t), "loss": loss,
                  "cpu_s_per_sample": (time.process_time() - c) / n}))
EOF
}

for round in $(seq "$ROUNDS"); do
  for c in $CASES; do
    IFS=: read -r model size batch n <<<"$c"
    onnx=$MODELS/${model}_${size}.onnx
    for q in "$@"; do
      name=${q%%=*}
      bin=${q#*=}
      l=$(load1)
      line=$(/usr/bin/time -f "%U %S" -o "$OUT.time" timeout "$TIMEOUT" "$bin" --threads "$THREADS" \
        eval --model "$onnx" --mode float --dataset "npz:$MODELS/x$size.npz" \
        --batch-size "$batch" --num-samples "$n" --json 2>/dev/null | tail -1) ||
        line='{"samples_per_s": null}'
      if [[ ${CPU:-0} == 1 && $n -gt $batch ]]; then
        cpu_n=$(awk '{print $1 + $2}' "$OUT.time")
        /usr/bin/time -f "%U %S" -o "$OUT.time" timeout "$TIMEOUT" "$bin" --threads "$THREADS" \
          eval --model "$onnx" --mode float --dataset "npz:$MODELS/x$size.npz" \
          --batch-size "$batch" --num-samples "$batch" --json >/dev/null 2>&1 || true
        cpu_b=$(awk '{print $1 + $2}' "$OUT.time")
        line=$(echo "$line" | "$PY" -c 'import json, sys
d = json.load(sys.stdin)
d["cpu_s_per_sample"] = (float(sys.argv[1]) - float(sys.argv[2])) / (int(sys.argv[3]) - int(sys.argv[4]))
print(json.dumps(d))' "$cpu_n" "$cpu_b" "$n" "$batch")
      fi
      echo "{\"round\": $round, \"case\": \"$c\", \"engine\": \"$name\", \"load1\": $l, \"out\": $line}" |
        tee -a "$OUT"
    done
    l=$(load1)
    line=$(torch_rate "$model" "$size" "$batch" "$n" 2>/dev/null | tail -1) ||
      line='{"samples_per_s": null}'
    echo "{\"round\": $round, \"case\": \"$c\", \"engine\": \"pytorch\", \"load1\": $l, \"out\": $line}" |
      tee -a "$OUT"
  done
done

"$PY" - "$OUT" "$@" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = [a.split("=", 1)[0] for a in sys.argv[2:]] + ["pytorch"]
cases = list(dict.fromkeys(r["case"] for r in rows))
def med(case, eng, key="samples_per_s"):
    v = [r["out"][key] for r in rows
         if r["case"] == case and r["engine"] == eng and r["out"].get(key)]
    return statistics.median(v) if v else None
loads = [r["load1"] for r in rows]
print(f"\nload average (1 min) over the runs: {min(loads)}-{max(loads)}, "
      f"median {statistics.median(loads)}\n")
print("| model | size | batch / N | " + " | ".join(names) + " | " +
      " | ".join(f"{n} / pytorch" for n in names[:-1]) + " |")
print("|---" * (3 + 2 * len(names) - 1) + "|")
for c in cases:
    model, size, batch, n = c.split(":")
    m = {e: med(c, e) for e in names}
    fmt = lambda v: "-" if v is None else f"{v:,.1f}"
    ratio = lambda a, b: "-" if a is None or not b else f"**{a / b:.2f}x**"
    print(f"| {model} | {size}x{size} | {batch} / {n} | " +
          " | ".join(fmt(m[e]) for e in names) + " | " +
          " | ".join(ratio(m[e], m["pytorch"]) for e in names[:-1]) + " |")
cpu = {(c, e): med(c, e, "cpu_s_per_sample") for c in cases for e in names}
if any(v is not None for v in cpu.values()):
    print("\nCPU seconds per sample (medians) and PyTorch's CPU time per sample / ours:\n")
    print("| model | size | batch / N | " + " | ".join(f"{n} CPU ms" for n in names) + " | " +
          " | ".join(f"pytorch / {n}" for n in names[:-1]) + " |")
    print("|---" * (3 + 2 * len(names) - 1) + "|")
    for c in cases:
        model, size, batch, n = c.split(":")
        fmt = lambda v: "-" if v is None else f"{1e3 * v:,.1f}"
        ratio = lambda a, b: "-" if a is None or not b else f"**{b / a:.2f}x**"
        print(f"| {model} | {size}x{size} | {batch} / {n} | " +
              " | ".join(fmt(cpu[c, e]) for e in names) + " | " +
              " | ".join(ratio(cpu[c, e], cpu[c, "pytorch"]) for e in names[:-1]) + " |")
EOF
