#!/usr/bin/env bash
# Trials per second one PostgreSQL study sustains (the storage's own ceiling: create + finish with
# a constant objective), qsearch against Optuna's RDBStorage, with 1, 2, 4 and 8 worker processes
# on one throwaway server, in the same run (issue 10).
#
#   bench/pg_storage_bench.sh BUILD_DIR [--workers "1 2 4 8"] [--qsearch-trials N] [--optuna-trials M]
#
# Needs BUILD_DIR/bin/pg_storage_bench (cmake --build BUILD_DIR --target pg_storage_bench), the
# PostgreSQL server binaries and Optuna + psycopg2 for /usr/bin/python3 (scripts/setup.sh
# --bench). The server is a fresh cluster with PostgreSQL's defaults (fsync and synchronous
# commit on: a finished trial is on disk), on a Unix socket, stopped at the end.
# Each worker runs N (qsearch, default 400) or M (Optuna, default 40) trials; every tool and
# worker count gets a new database. Throughput = all workers' trials / (last worker's end - first
# worker's start), the timestamps taken inside the workers around their trial loops (process
# start-up and Python imports excluded).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [--workers LIST] [--qsearch-trials N] [--optuna-trials M]}
shift
workers="1 2 4 8"
q_trials=400
o_trials=40
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --qsearch-trials) q_trials=$2; shift 2 ;;
    --optuna-trials) o_trials=$2; shift 2 ;;
    *) echo "pg_storage_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/../tests/support/pg_cluster.sh"
bench=$(cd "$build" && pwd)/bin/pg_storage_bench
py=/usr/bin/python3
[ -x "$bench" ] || { echo "missing $bench: cmake --build $build --target pg_storage_bench" >&2; exit 2; }
$py -c 'import optuna, psycopg2' || { echo "needs optuna and psycopg2 for $py: scripts/setup.sh --bench" >&2; exit 2; }

dir=$(mktemp -d /tmp/qsearch_pgbench_XXXXXX)
out=$dir.results
mkdir -p "$out"
trap 'bash "$cluster" stop "$dir"; rm -rf "$out"' EXIT
bash "$cluster" start "$dir" $$ --durable >/dev/null

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); $(/usr/lib/postgresql/*/bin/postgres --version | tail -1) (fsync on, synchronous_commit on, Unix socket); optuna $($py -c 'import optuna; print(optuna.__version__)'), psycopg2 $($py -c 'import psycopg2; print(psycopg2.__version__.split()[0])')"

run_tool() {  # tool workers trials -> one JSON line per worker in $out/<tool>_<k>.jsonl
  local tool=$1 k=$2 n=$3 db url
  db="${tool}_$k"
  url=$(bash "$cluster" createdb "$dir" "$db")
  local cmd=("$bench")
  [ "$tool" = optuna ] && cmd=("$py" "$here/optuna_storage_bench.py")
  "${cmd[@]}" --url "$url" --study s --create
  local pids=()
  for w in $(seq 1 "$k"); do
    "${cmd[@]}" --url "$url" --study s --trials "$n" --seed "$w" >>"$out/$db.jsonl" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

for k in $workers; do
  run_tool qsearch "$k" "$q_trials"
  run_tool optuna "$k" "$o_trials"
done

$py - "$out" $workers <<'PY'
import json, sys, os
out, workers = sys.argv[1], [int(w) for w in sys.argv[2:]]
def rate(tool, k):
    rows = [json.loads(l) for l in open(os.path.join(out, f"{tool}_{k}.jsonl"))]
    trials = sum(r["trials"] for r in rows)
    span = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    return trials / span, trials
print("| workers | qsearch trials/s | Optuna RDB trials/s | ratio |")
print("|---:|---:|---:|---:|")
for k in workers:
    q, qn = rate("qsearch", k)
    o, on = rate("optuna", k)
    print(f"| {k} | {q:.0f} ({qn} trials) | {o:.1f} ({on} trials) | {q / o:.0f}x |")
PY
