#include "kernels/ref/select.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace qsearch::kernels::ref {

namespace {

// Offsets of operand k for output element i (row-major over p.shape).
int64_t offset(const SelectParams& p, int k, int64_t i) {
  int64_t off = 0;
  for (int d = p.rank - 1; d >= 0; --d) {
    off += (i % p.shape[d]) * p.stride[k][d];
    i /= p.shape[d];
  }
  return off;
}

int64_t numel(const SelectParams& p) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.shape[d];
  return n;
}

template <typename T>
T load(const void* x, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const char*>(x) + i * sizeof(T), sizeof(T));
  return v;
}

// Element i of x (dtype `from`) converted to To as ref::cast documents.
template <typename To>
To convert(DType from, const void* x, int64_t i) {
  switch (from) {
    case DType::kFloat32: {
      const float f = load<float>(x, i);
      if constexpr (std::is_same_v<To, float>) {
        return f;
      } else if constexpr (std::is_same_v<To, uint8_t>) {
        return f != 0.0f;
      } else {
        if (std::isnan(f)) return 0;
        const double t = std::trunc(static_cast<double>(f));
        if (t <= static_cast<double>(std::numeric_limits<To>::min())) {
          return std::numeric_limits<To>::min();
        }
        if (t >= static_cast<double>(std::numeric_limits<To>::max())) {
          return std::numeric_limits<To>::max();
        }
        return static_cast<To>(t);
      }
    }
    case DType::kInt64: {
      const int64_t v = load<int64_t>(x, i);
      if constexpr (std::is_same_v<To, uint8_t>) return v != 0;
      return static_cast<To>(v);
    }
    case DType::kInt32: {
      const int32_t v = load<int32_t>(x, i);
      if constexpr (std::is_same_v<To, uint8_t>) return v != 0;
      return static_cast<To>(v);
    }
    default: {
      const uint8_t v = load<uint8_t>(x, i);
      return static_cast<To>(v != 0 ? 1 : 0);
    }
  }
}

}  // namespace

void equal(DType t, const SelectParams& p, const void* a, const void* b, uint8_t* y) {
  const int64_t n = numel(p);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ia = offset(p, 0, i), ib = offset(p, 1, i);
    switch (t) {
      case DType::kFloat32:
        y[i] = load<float>(a, ia) == load<float>(b, ib);
        break;
      case DType::kInt64:
        y[i] = load<int64_t>(a, ia) == load<int64_t>(b, ib);
        break;
      case DType::kInt32:
        y[i] = load<int32_t>(a, ia) == load<int32_t>(b, ib);
        break;
      default:
        y[i] = load<uint8_t>(a, ia) == load<uint8_t>(b, ib);
        break;
    }
  }
}

void logical_and(const SelectParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y) {
  const int64_t n = numel(p);
  for (int64_t i = 0; i < n; ++i) y[i] = a[offset(p, 0, i)] != 0 && b[offset(p, 1, i)] != 0;
}

void where(size_t elem, const SelectParams& p, const uint8_t* cond, const void* a, const void* b,
           void* y) {
  const int64_t n = numel(p);
  for (int64_t i = 0; i < n; ++i) {
    const bool c = cond[offset(p, 0, i)] != 0;
    const char* src = c ? static_cast<const char*>(a) + offset(p, 1, i) * elem
                        : static_cast<const char*>(b) + offset(p, 2, i) * elem;
    std::memcpy(static_cast<char*>(y) + i * elem, src, elem);
  }
}

void expand(size_t elem, const SelectParams& p, const void* x, void* y) {
  const int64_t n = numel(p);
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(static_cast<char*>(y) + i * elem,
                static_cast<const char*>(x) + offset(p, 0, i) * elem, elem);
  }
}

void gather(const GatherParams& p, const void* x, const void* idx, void* y) {
  for (int64_t o = 0; o < p.outer; ++o) {
    for (int64_t j = 0; j < p.count; ++j) {
      const int64_t i = p.index == DType::kInt64 ? load<int64_t>(idx, j) : load<int32_t>(idx, j);
      for (int64_t k = 0; k < p.inner; ++k) {
        char* dst = static_cast<char*>(y) + ((o * p.count + j) * p.inner + k) * p.elem;
        if (i < -p.n || i >= p.n) {
          if (p.data == DType::kFloat32) {
            const float nan = std::numeric_limits<float>::quiet_NaN();
            std::memcpy(dst, &nan, sizeof(float));
          } else {
            std::memset(dst, 0, p.elem);
          }
          continue;
        }
        const int64_t row = i < 0 ? i + p.n : i;
        std::memcpy(dst, static_cast<const char*>(x) + ((o * p.n + row) * p.inner + k) * p.elem,
                    p.elem);
      }
    }
  }
}

void cast(DType from, DType to, const void* x, void* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    switch (to) {
      case DType::kFloat32:
        static_cast<float*>(y)[i] = convert<float>(from, x, i);
        break;
      case DType::kInt64:
        static_cast<int64_t*>(y)[i] = convert<int64_t>(from, x, i);
        break;
      case DType::kInt32:
        static_cast<int32_t*>(y)[i] = convert<int32_t>(from, x, i);
        break;
      default:
        static_cast<uint8_t*>(y)[i] = convert<uint8_t>(from, x, i);
        break;
    }
  }
}

void logical_not(const uint8_t* x, uint8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] == 0;
}

}  // namespace qsearch::kernels::ref
