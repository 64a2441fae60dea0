#!/usr/bin/env bash
# The 784-4096-4096-10 MLP (bench/torch_real_models.py's "mlp", random seeded weights, random
# N(0,1) inputs) at batch 1, 16 and 64 (issue 14: float >= 1.5x PyTorch eager, int never slower
# than float): interleaved rounds, per round and batch `qsearch --threads T eval --json` float and
# int (8-bit, bench/run_real_models.sh's int8.toml) of each binary given, then PyTorch eager float
# (torch.set_num_threads(T), OMP_WAIT_POLICY=PASSIVE, one untimed warm-up pass), each in its own
# process. qsearch's samples/s are its evaluation loop's (`samples_per_s`), PyTorch's one timed
# pass; both exclude loading. Prints each round and a table of medians with the ratios.
#
#   bench/run_mlp_threads.sh MODELS_DIR QSEARCH [BASE_QSEARCH]
#       MODELS_DIR: bench/torch_real_models.py prepare's output (mlp.onnx, mlp.pt, mlp.npz,
#       int8.toml; e.g. BUILD/bench_models/real after bench/run_real_models.sh, or /tmp/realb6).
#   env: ROUNDS (3), BATCHES ("1 16 64"), THREADS (2), SCHEDULES ("auto"; e.g. "auto
#   batch-parallel threaded-kernels" to time the new binary under each)
set -euo pipefail
M=${1:?usage: bench/run_mlp_threads.sh MODELS_DIR QSEARCH [BASE_QSEARCH]}
NEW=${2:?usage: bench/run_mlp_threads.sh MODELS_DIR QSEARCH [BASE_QSEARCH]}
BASE=${3:-}
ROUNDS=${ROUNDS:-3}
BATCHES=${BATCHES:-"1 16 64"}
T=${THREADS:-2}
SCHEDULES=${SCHEDULES:-auto}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
samples() { case $1 in 1) echo 256 ;; 16) echo 1024 ;; *) echo 2048 ;; esac; }
sps() { "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["samples_per_s"])'; }
load() { cut -d' ' -f1 /proc/loadavg; }
for round in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    n=$(samples "$b")
    bins=(new)
    [[ -n $BASE ]] && bins=(base new)
    for which in "${bins[@]}"; do
      q=$NEW
      [[ $which == base ]] && q=$BASE
      for s in $SCHEDULES; do
        [[ $which == base && $s != auto ]] && continue
        for mode in float int; do
          args=(--threads "$T" eval --model "$M/mlp.onnx" --dataset "npz:$M/mlp.npz"
            --batch-size "$b" --num-samples "$n" --mode "$mode" --json)
          [[ $mode == int ]] && args+=(--quant "$M/int8.toml")
          [[ $s != auto ]] && args+=(--schedule "$s")
          r=$("$q" "${args[@]}" | sps)
          echo "{\"round\":$round,\"batch\":$b,\"who\":\"$which/$s\",\"mode\":\"$mode\",\"sps\":$r,\"load\":$(load)}" | tee -a "$OUT"
        done
      done
    done
    r=$(OMP_NUM_THREADS=$T OMP_WAIT_POLICY=PASSIVE "$PY" - "$ROOT/bench" "$M" "$b" "$n" "$T" <<'PYEOF'
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from torch_real_models import load
from torch_fakequant_eval import evaluate
models, b, n, t = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(t)
model = load("mlp", models)
d = np.load(f"{models}/mlp.npz")
x, y = torch.from_numpy(d["x"][:n]), torch.from_numpy(d["y"][:n])
evaluate(model, x, y, b)
s = time.perf_counter()
evaluate(model, x, y, b)
print(n / (time.perf_counter() - s))
PYEOF
)
    echo "{\"round\":$round,\"batch\":$b,\"who\":\"torch\",\"mode\":\"float\",\"sps\":$r,\"load\":$(load)}" | tee -a "$OUT"
  done
done
"$PY" - "$OUT" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
loads = [r["load"] for r in rows]
print(f"\nmedians of {max(r['round'] for r in rows)} rounds, samples/s; load {min(loads)}-{max(loads)}\n")
print("| batch | who | float | int | float / PyTorch | int / PyTorch | int / float |")
print("|---|---|---|---|---|---|---|")
for b in sorted({r["batch"] for r in rows}):
    get = lambda who, mode: [r["sps"] for r in rows if r["batch"] == b and r["who"] == who and r["mode"] == mode]
    pt = med(get("torch", "float"))
    print(f"| {b} | PyTorch eager | {pt:,.0f} | | | | |")
    for who in dict.fromkeys(r["who"] for r in rows if r["batch"] == b and r["who"] != "torch"):
        f, i = med(get(who, "float")), med(get(who, "int"))
        print(f"| {b} | qsearch {who} | {f:,.0f} | {i:,.0f} | {f / pt:.2f}x | {i / pt:.2f}x | {i / f:.2f}x |")
PYEOF
