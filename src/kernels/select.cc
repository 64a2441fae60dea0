#include "kernels/select.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace qsearch::kernels {

namespace {

// Calls f(offsets of operands 0..2 at the row's start, row length, per-operand strides along
// the row, output offset) for every row (last dim) of the output.
template <typename F>
void for_each_row(const SelectParams& p, F f) {
  if (p.rank == 0) {
    f(std::array<int64_t, 3>{0, 0, 0}, int64_t{1}, std::array<int64_t, 3>{0, 0, 0}, int64_t{0});
    return;
  }
  const int last = p.rank - 1;
  const int64_t row = p.shape[last];
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= p.shape[d];
  if (row == 0 || rows == 0) return;
  const std::array<int64_t, 3> step{p.stride[0][last], p.stride[1][last], p.stride[2][last]};
  Dims idx{};
  std::array<int64_t, 3> off{0, 0, 0};
  for (int64_t r = 0; r < rows; ++r) {
    f(off, row, step, r * row);
    for (int d = last - 1; d >= 0; --d) {  // odometer, offsets updated incrementally
      for (int k = 0; k < 3; ++k) off[k] += p.stride[k][d];
      if (++idx[d] < p.shape[d]) break;
      for (int k = 0; k < 3; ++k) off[k] -= p.stride[k][d] * p.shape[d];
      idx[d] = 0;
    }
  }
}

template <typename T>
void equal_t(const SelectParams& p, const T* a, const T* b, uint8_t* y) {
  for_each_row(p, [&](auto off, int64_t n, auto step, int64_t out) {
    const T* pa = a + off[0];
    const T* pb = b + off[1];
    uint8_t* py = y + out;
    if (step[0] == 1 && step[1] == 0) {
      const T v = *pb;
      for (int64_t j = 0; j < n; ++j) py[j] = pa[j] == v;
    } else {
      for (int64_t j = 0; j < n; ++j) py[j] = pa[j * step[0]] == pb[j * step[1]];
    }
  });
}

template <typename T>
void where_t(const SelectParams& p, const uint8_t* c, const T* a, const T* b, T* y) {
  for_each_row(p, [&](auto off, int64_t n, auto step, int64_t out) {
    const uint8_t* pc = c + off[0];
    const T* pa = a + off[1];
    const T* pb = b + off[2];
    T* py = y + out;
    for (int64_t j = 0; j < n; ++j) py[j] = pc[j * step[0]] ? pa[j * step[1]] : pb[j * step[2]];
  });
}

template <typename T>
void expand_t(const SelectParams& p, const T* x, T* y) {
  for_each_row(p, [&](auto off, int64_t n, auto step, int64_t out) {
    if (step[0] == 1) {
      std::memcpy(y + out, x + off[0], sizeof(T) * n);
    } else if (step[0] == 0) {
      std::fill_n(y + out, n, x[off[0]]);
    } else {
      for (int64_t j = 0; j < n; ++j) y[out + j] = x[off[0] + j * step[0]];
    }
  });
}

template <typename T>
void by_elem(size_t elem, T&& f) {
  switch (elem) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    default:
      return f(uint64_t{});
  }
}

}  // namespace

void equal(DType t, const SelectParams& p, const void* a, const void* b, uint8_t* y) {
  switch (t) {
    case DType::kFloat32:
      return equal_t(p, static_cast<const float*>(a), static_cast<const float*>(b), y);
    case DType::kInt64:
      return equal_t(p, static_cast<const int64_t*>(a), static_cast<const int64_t*>(b), y);
    case DType::kInt32:
      return equal_t(p, static_cast<const int32_t*>(a), static_cast<const int32_t*>(b), y);
    default:
      return equal_t(p, static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b), y);
  }
}

void logical_and(const SelectParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y) {
  for_each_row(p, [&](auto off, int64_t n, auto step, int64_t out) {
    for (int64_t j = 0; j < n; ++j) {
      y[out + j] = (a[off[0] + j * step[0]] != 0) & (b[off[1] + j * step[1]] != 0);
    }
  });
}

void where(size_t elem, const SelectParams& p, const uint8_t* cond, const void* a, const void* b,
           void* y) {
  by_elem(elem, [&](auto tag) {
    using T = decltype(tag);
    where_t(p, cond, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y));
  });
}

void expand(size_t elem, const SelectParams& p, const void* x, void* y) {
  by_elem(elem, [&](auto tag) {
    using T = decltype(tag);
    expand_t(p, static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void gather(const GatherParams& p, const void* x, const void* idx, void* y) {
  const char* xs = static_cast<const char*>(x);
  char* ys = static_cast<char*>(y);
  const size_t row = p.elem * static_cast<size_t>(p.inner);
  for (int64_t j = 0; j < p.count; ++j) {
    int64_t i = p.index == DType::kInt64 ? static_cast<const int64_t*>(idx)[j]
                                         : static_cast<const int32_t*>(idx)[j];
    const bool ok = i >= -p.n && i < p.n;
    if (i < 0) i += p.n;
    for (int64_t o = 0; o < p.outer; ++o) {
      char* dst = ys + (o * p.count + j) * row;
      if (ok) {
        std::memcpy(dst, xs + (o * p.n + i) * row, row);
      } else if (p.data == DType::kFloat32) {
        std::fill_n(reinterpret_cast<float*>(dst), p.inner,
                    std::numeric_limits<float>::quiet_NaN());
      } else {
        std::memset(dst, 0, row);
      }
    }
  }
}

}  // namespace qsearch::kernels
