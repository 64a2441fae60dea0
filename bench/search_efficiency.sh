#!/usr/bin/env bash
# Sample efficiency of qsearch's samplers against Optuna 3.1's on issue 9's 8-million-point
# LeNet-5 space (configs/lenet5_mixed.toml), scored against a best-known front
# (bench/data/lenet5_mixed_front.json). Prints the Markdown table of BENCHMARKS.md's section
# "Sample efficiency on an 8-million-point space (issue 9)"; what it does: the docstring of
# bench/search_efficiency.py.
#
#   bench/search_efficiency.sh BUILD_DIR [options of search_efficiency.py]
#   bench/search_efficiency.sh build --config configs/mlp_mixed.toml     # the second space
#
# Every evaluation is cached in BUILD_DIR/bench_models/search_efficiency/<config>_cache.sqlite,
# and so are Optuna's runs (they depend only on the landscape): re-running after qsearch's
# samplers change re-runs only qsearch's searches. Delete the cache when the landscape changes
# (the script checks it at start and says so).
set -euo pipefail
BUILD=${1:?usage: bench/search_efficiency.sh BUILD_DIR [options]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
"$PY" -c "import optuna" 2>/dev/null || {
  echo "search_efficiency.sh: $PY cannot import optuna; run scripts/setup.sh --bench" >&2; exit 2; }
[[ -x $BUILD/bin/qsearch ]] || { echo "search_efficiency.sh: $BUILD/bin/qsearch not built (make build)" >&2; exit 2; }
cd "$ROOT"
exec "$PY" bench/search_efficiency.py --build "$BUILD" "$@"
