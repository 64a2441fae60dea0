#include "data/tabular.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/error.h"
#include "data/numpy_random.h"

// numpy rounds every product before adding it; without this GCC fuses x*y+z into one FMA
// (its default for C++ is -ffp-contract=fast), and the sums would differ from sklearn's.
#pragma GCC optimize("fp-contract=off")

namespace qsearch::data {

namespace {

// pandas hashes floats so that 0.0 and -0.0 (and all NaNs) are one key.
uint64_t canonical_bits(double v) {
  if (v == 0.0) v = 0.0;
  if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

uint64_t row_hash(const Table& t, int64_t r) {
  uint64_t h = mix(static_cast<uint64_t>(t.labels[static_cast<size_t>(r)]) + 1);
  const double* p = t.values.data() + r * t.cols;
  for (int j = 0; j < t.cols; ++j) h = mix(h ^ (canonical_bits(p[j]) + 0x9e3779b97f4a7c15ULL));
  return h;
}

bool rows_equal(const Table& t, int64_t a, int64_t b) {
  if (t.labels[static_cast<size_t>(a)] != t.labels[static_cast<size_t>(b)]) return false;
  const double* p = t.values.data() + a * t.cols;
  const double* q = t.values.data() + b * t.cols;
  for (int j = 0; j < t.cols; ++j) {
    if (canonical_bits(p[j]) != canonical_bits(q[j])) return false;
  }
  return true;
}

}  // namespace

int64_t drop_duplicate_rows(Table& t) {
  // Open addressing (linear probing) over row indices: no per-row allocation, which matters at
  // the real data set's ~10^6 rows. A slot holds row + 1 (0 = empty) and 32 bits of its hash.
  if (t.rows >= int64_t{0xffffffff}) fail("{} rows: too many to drop duplicates from", t.rows);
  size_t cap = 16;
  while (cap < static_cast<size_t>(t.rows) * 2) cap *= 2;
  std::vector<uint64_t> slots(cap, 0);
  std::vector<int64_t> keep;
  keep.reserve(static_cast<size_t>(t.rows));
  for (int64_t r = 0; r < t.rows; ++r) {
    const uint64_t h = row_hash(t, r);
    const uint64_t tag = h >> 32;
    size_t i = static_cast<size_t>(h) & (cap - 1);
    for (;; i = (i + 1) & (cap - 1)) {
      const uint64_t s = slots[i];
      if (s == 0) {
        slots[i] = tag << 32 | static_cast<uint64_t>(r + 1);
        keep.push_back(r);
        break;
      }
      if ((s >> 32) == tag && rows_equal(t, static_cast<int64_t>(s & 0xffffffffULL) - 1, r)) {
        break;  // a duplicate of an earlier row
      }
    }
  }
  const int64_t dropped = t.rows - static_cast<int64_t>(keep.size());
  if (dropped == 0) return 0;
  // Compact in place: keep[] is increasing, so each destination row precedes its source.
  for (size_t k = 0; k < keep.size(); ++k) {
    const int64_t r = keep[k];
    if (r == static_cast<int64_t>(k)) continue;
    std::memmove(t.values.data() + static_cast<int64_t>(k) * t.cols, t.values.data() + r * t.cols,
                 sizeof(double) * static_cast<size_t>(t.cols));
    t.labels[k] = t.labels[static_cast<size_t>(r)];
  }
  t.rows = static_cast<int64_t>(keep.size());
  t.values.resize(static_cast<size_t>(t.rows * t.cols));
  t.labels.resize(static_cast<size_t>(t.rows));
  return dropped;
}

StandardScaler StandardScaler::fit(const Table& t, const std::vector<int64_t>& rows) {
  const int cols = t.cols;
  const auto n = static_cast<double>(rows.size());
  std::vector<double> sum(cols, 0.0), corr(cols, 0.0), sq(cols, 0.0);
  // The same operation order as numpy's axis-0 sums of a C-ordered array: row after row.
  for (int64_t r : rows) {
    const double* x = t.values.data() + r * cols;
    for (int j = 0; j < cols; ++j) sum[j] += x[j];
  }
  StandardScaler s;
  s.mean.resize(cols);
  s.scale.resize(cols);
  for (int j = 0; j < cols; ++j) s.mean[j] = sum[j] / n;
  for (int64_t r : rows) {
    const double* x = t.values.data() + r * cols;
    for (int j = 0; j < cols; ++j) {
      const double d = x[j] - s.mean[j];
      corr[j] += d;
      sq[j] += d * d;
    }
  }
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  for (int j = 0; j < cols; ++j) {
    const double var = (sq[j] - corr[j] * corr[j] / n) / n;
    const double bound = n * kEps * var + (n * s.mean[j] * kEps) * (n * s.mean[j] * kEps);
    s.scale[j] = var <= bound ? 1.0 : std::sqrt(var);
  }
  return s;
}

void standardized_split(const Table& t, Split split, double test_fraction, uint32_t seed,
                        const std::vector<std::string>& column_names, const std::string& what,
                        Dataset& out) {
  for (int64_t r = 0; r < t.rows; ++r) {
    for (int j = 0; j < t.cols; ++j) {
      const double v = t.values[static_cast<size_t>(r * t.cols + j)];
      if (!std::isfinite(v)) {
        fail(
            "{}: row {} (0-based, after dropping duplicates), column '{}' is {}; every "
            "feature must be a finite number",
            what, r, column_names[static_cast<size_t>(j)], v);
      }
    }
  }
  TrainTestIndices idx;
  try {
    idx = train_test_split_indices(t.rows, test_fraction, seed);
  } catch (Error& e) {
    e.add_context(fmt::format("while splitting {}", what));
    throw;
  }
  const StandardScaler scaler = StandardScaler::fit(t, idx.train);
  const std::vector<int64_t>& rows = split == Split::kTest ? idx.test : idx.train;
  const auto n = static_cast<int64_t>(rows.size());
  const int cols = t.cols;
  out.x = Tensor({n, cols}, DType::kFloat32);
  out.y = Tensor({n}, DType::kInt64);
  float* x = out.x.data<float>();
  int64_t* y = out.y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rows[static_cast<size_t>(i)];
    const double* src = t.values.data() + r * cols;
    for (int j = 0; j < cols; ++j) {
      double centered = src[j] - scaler.mean[j];
      // sklearn works in place in the source dtype: a float32 array is rounded after each op.
      if (t.float32_source) centered = static_cast<float>(centered);
      x[i * cols + j] = static_cast<float>(centered / scaler.scale[j]);
    }
    y[i] = t.labels[static_cast<size_t>(r)];
  }
}

}  // namespace qsearch::data
