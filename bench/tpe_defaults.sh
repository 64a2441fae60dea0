#!/usr/bin/env bash
# Issue 9 item 2: which TPE settings search issue 9's LeNet-5 space best (BENCHMARKS.md,
# "TPE defaults (issue 9)").
#
#   bench/tpe_defaults.sh [OUT_DIR]          # default build/tpe_defaults; re-running reuses
#   TRIALS=300 SEEDS="0 1" bench/tpe_defaults.sh   # finished runs and only redoes the table
#
# Space: configs/lenet5_mixed.toml (per layer data_in_width {4, 8}, weight_width
# {2, 3, 4, 5, 6, 8}, weight_frac_width {4, 6}; 24^5 configurations), objectives accuracy on
# 1,024 MNIST test images (maximize) and 0.2 x average bitwidth (minimize), int engine, --jobs 1
# (except the two 2-jobs rows: constant_liar only matters with parallel workers).
# Hypervolume of the first 100 / 300 / 1000 trials against the fixed reference point (accuracy 0,
# 0.2 x the largest average bitwidth of the space, measured on the all-8-bit configuration),
# divided by the hypervolume of the union of every run's front (the best front this benchmark
# knows). Needs build/bin/qsearch (Release) and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${QSEARCH:-build/bin/qsearch}
OUT=${1:-build/tpe_defaults}
TRIALS=${TRIALS:-1000}
SEEDS=${SEEDS:-"0 1 2"}
CFG=configs/lenet5_mixed.toml
mkdir -p "$OUT"

# name|flags; every option this benchmark compares is given explicitly.
VARIANTS=(
  "random|--sampler random"
  "tpe univariate|--sampler tpe --multivariate false --stall-window 0"
  "tpe univariate + escape|--sampler tpe --multivariate false --stall-window 25"
  "tpe multivariate|--sampler tpe --multivariate true --stall-window 0"
  "tpe multivariate + escape|--sampler tpe --multivariate true --stall-window 25"
  "tpe multivariate + escape, 2 jobs|--sampler tpe --multivariate true --constant-liar false --stall-window 25 --jobs 2"
  "tpe multivariate + constant_liar + escape, 2 jobs|--sampler tpe --multivariate true --constant-liar true --stall-window 25 --jobs 2"
)

# The reference point's cost: the all-8-bit configuration's 0.2 x average bitwidth.
if [ ! -f "$OUT/max/trials.csv" ]; then
  sed -e 's/^data_in_width = .*/data_in_width = [8]/' -e 's/^weight_width = .*/weight_width = [8]/' \
    -e 's/^weight_frac_width = .*/weight_frac_width = [6]/' "$CFG" > "$OUT/max.toml"
  "$BIN" search --config "$OUT/max.toml" --sampler bruteforce --trials 1 --out "$OUT/max" --quiet \
    > /dev/null
fi

for v in "${VARIANTS[@]}"; do
  name=${v%%|*}
  flags=${v#*|}
  dir="$OUT/$(echo "$name" | tr ' +,' '___')"
  for s in $SEEDS; do
    run="$dir/seed$s"
    if [ -f "$run/seconds" ]; then continue; fi
    mkdir -p "$run"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    case "$flags" in *--jobs*) jobs="" ;; *) jobs="--jobs 1" ;; esac
    # shellcheck disable=SC2086
    "$BIN" search --config "$CFG" --trials "$TRIALS" --seed "$s" $jobs $flags --out "$run" \
      --quiet > /dev/null
    echo "$(date +%s.%N) - $start" | bc > "$run/seconds"
    echo "$name seed $s: $(cat "$run/seconds") s" >&2
  done
done

python3 - "$OUT" "$TRIALS" "$SEEDS" "${VARIANTS[@]}" <<'PY'
import csv, os, sys
out, trials, seeds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]

def rows(path):
    with open(path) as f:
        r = list(csv.DictReader(f))
    r.sort(key=lambda x: int(x["number"]))
    return r

def front(points):  # (accuracy, cost): maximize accuracy, minimize cost
    best, f = -1.0, []
    for a, c in sorted(points, key=lambda p: (p[1], -p[0])):
        if a > best:
            f.append((a, c))
            best = a
    return f

def hv(points, ref_cost):
    f = [(a, c) for a, c in front(points) if a > 0 and c < ref_cost]
    area, prev_c = 0.0, ref_cost
    for a, c in reversed(f):  # cost decreasing, accuracy decreasing
        area += a * (prev_c - c)
        prev_c = c
    return area

ref = float(rows(os.path.join(out, "max", "trials.csv"))[0]["values_1"])
runs = {}
for v in variants:
    name = v.split("|")[0]
    d = os.path.join(out, name.replace(" ", "_").replace("+", "_").replace(",", "_"))
    for s in seeds:
        p = os.path.join(d, "seed" + s)
        t = rows(os.path.join(p, "trials.csv"))
        cfg_cols = [k for k in t[0] if "/config/" in k and not k.endswith(":value")]
        pts = [(float(r["values_0"]), float(r["values_1"])) if r["state"] == "COMPLETE" else None
               for r in t]
        keys = [tuple(r[k] for k in cfg_cols) for r in t]
        secs = float(open(os.path.join(p, "seconds")).read())
        runs[(name, s)] = (pts, keys, secs)
union = [p for pts, _, _ in runs.values() for p in pts if p]
best = hv(union, ref)
print(f"reference point: accuracy 0, 0.2 x average bitwidth {ref:.4f}; best-known front: "
      f"{len(front(union))} points from {len(union)} evaluations, HV {best:.4f}\n")
budgets = [b for b in (100, 300, 1000) if b <= trials]
print("| settings | " + " | ".join(f"HV @{b} (seeds)" for b in budgets) +
      " | trials to 90 % | repeated configurations | s per run |")
print("|---|" + "---|" * (len(budgets) + 3))
for v in variants:
    name = v.split("|")[0]
    cells = []
    for b in budgets:
        vals = [hv([p for p in runs[(name, s)][0][:b] if p], ref) / best for s in seeds]
        cells.append(f"{sum(vals) / len(vals):.3f} ({' '.join(f'{x:.3f}' for x in vals)})")
    to90 = []
    for s in seeds:
        pts, n90 = runs[(name, s)][0], "never"
        for n in range(1, len(pts) + 1):
            if pts[n - 1] and hv([p for p in pts[:n] if p], ref) >= 0.9 * best:
                n90 = str(n)
                break
        to90.append(n90)
    rep = [len(runs[(name, s)][1]) - len(set(runs[(name, s)][1])) for s in seeds]
    secs = [runs[(name, s)][2] for s in seeds]
    print(f"| {name} | " + " | ".join(cells) + f" | {', '.join(to90)} | "
          f"{', '.join(map(str, rep))} | {sum(secs) / len(secs):.0f} |")
PY
