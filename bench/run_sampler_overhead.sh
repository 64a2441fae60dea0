#!/usr/bin/env bash
# Sampler overhead per trial, qsearch vs Optuna, side by side in one run (issue 5).
#
#   bench/run_sampler_overhead.sh BUILD_DIR [--optuna-full-tpe]
#
# Needs BUILD_DIR/bin/sampler_overhead_bench (cmake --build BUILD_DIR --target
# sampler_overhead_bench) and Optuna for /usr/bin/python3 (Debian python3-optuna).
#
# Measurements (18 MASE index params, in-memory storage, trivial objective):
#  1. full 1000-trial runs, 2 objectives (and 1 objective for context): qsearch random and tpe
#     (median of 5 runs), Optuna random (median of 3);
#  2. TPE at a 1000-trial history, identical for both: the first 990 trials of a qsearch TPE run
#     are loaded into a fresh study of each tool, which then runs 10 more TPE trials.
#     (A full 1000-trial Optuna 3.1 multi-objective TPE run takes about an hour of CPU here:
#     its non-domination sort is O(n^2 * ranks) per parameter; pass --optuna-full-tpe to run it.)
# Overhead per trial = (wall - objective time) / trials; "cpu" uses process CPU time instead of
# wall time, which other jobs on a shared machine disturb less.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [--optuna-full-tpe]}
full_tpe=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
bench=$build/bin/sampler_overhead_bench
py=/usr/bin/python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); optuna $($py -c 'import optuna; print(optuna.__version__)')"

for obj in 2 1; do
  for r in 1 2 3 4 5; do
    "$bench" --samplers random,tpe --objectives $obj --trials 1000 --seed $r \
      $([ $obj = 2 ] && [ $r = 1 ] && echo --history-out "$out/history.txt") >> "$out/runs.jsonl"
  done
  for r in 1 2 3; do
    $py "$here/optuna_sampler.py" --samplers random --objectives $obj --trials 1000 --seed $r >> "$out/runs.jsonl"
  done
  "$bench" --samplers tpe --objectives $obj --prefill "$out/history.txt" --prefill-count 990 --timed 10 >> "$out/runs.jsonl"
  $py "$here/optuna_sampler.py" --samplers tpe --objectives $obj --prefill "$out/history.txt" \
    --prefill-count 990 --timed 10 >> "$out/runs.jsonl"
  if [ "$full_tpe" = --optuna-full-tpe ]; then
    $py "$here/optuna_sampler.py" --samplers tpe --objectives $obj --trials 1000 >> "$out/runs.jsonl"
  fi
done

$py - "$out/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(impl, mode, sampler, obj, key):
    v = [r[key] for r in rows if r["impl"].startswith(impl) and r["mode"] == mode
         and r["sampler"] == sampler and r["objectives"] == obj]
    return (statistics.median(v), len(v)) if v else (None, 0)
print()
print("| objectives | sampler | measurement | qsearch ms/trial (wall / cpu) | Optuna ms/trial (wall / cpu) | ratio wall / cpu |")
print("|---|---|---|---|---|---|")
def line(obj, sampler, mode, label, key="overhead_ms", cpu_key="cpu_overhead_ms"):
    q, nq = med("qsearch", mode, sampler, obj, key)
    qc, _ = med("qsearch", mode, sampler, obj, cpu_key) if cpu_key else (None, 0)
    o, no = med("optuna", mode, sampler, obj, key)
    oc, _ = med("optuna", mode, sampler, obj, cpu_key) if cpu_key else (None, 0)
    if q is None or o is None:
        return
    fmt = lambda w, c: f"{w:.4g} / {c:.4g}" if c is not None else f"{w:.4g}"
    ratio = f"{o / q:,.0f}x" + (f" / {oc / qc:,.0f}x" if qc and oc is not None else "")
    print(f"| {obj} | {sampler} | {label} (n={nq}/{no}) | {fmt(q, qc)} | {fmt(o, oc)} | {ratio} |")
for obj in (2, 1):
    line(obj, "random", "full", "1000-trial run, mean overhead")
    line(obj, "random", "full", "1000-trial run, last 100 trials", "last100_overhead_ms", None)
    line(obj, "tpe", "prefilled", "10 trials after a 990-trial history")
    line(obj, "tpe", "full", "1000-trial run, mean overhead")
    line(obj, "tpe", "full", "1000-trial run, last 100 trials", "last100_overhead_ms", None)
print()
for r in rows:
    if r["sampler"] == "tpe" and r["mode"] == "full" and r["impl"] == "qsearch":
        print(f"qsearch tpe full, {r['objectives']} objective(s): overhead {r['overhead_ms']:.3f} ms wall, "
              f"{r['cpu_overhead_ms']:.3f} ms cpu, last 100 {r['last100_overhead_ms']:.3f} ms")
PY
