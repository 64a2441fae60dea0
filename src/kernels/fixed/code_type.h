// with_code_type(t, f): f(T{}) for the C++ type T of integer code dtype t (int8, uint8, int16,
// int32, int64), so that code templated on the code type picks its instantiation from a run-time
// dtype (as quant::with_rounding does for the rounding), e.g.
//   with_code_type(out, [&](auto code) { store<decltype(code)>(...); });
// Any other dtype is a caller bug (QSEARCH_CHECK).
#pragma once

#include <cstdint>

#include "core/check.h"
#include "core/dtype.h"

namespace qsearch::kernels::fixed {

template <typename F>
decltype(auto) with_code_type(DType t, F&& f) {
  switch (t) {
    case DType::kInt8:
      return f(int8_t{});
    case DType::kUInt8:
      return f(uint8_t{});
    case DType::kInt16:
      return f(int16_t{});
    case DType::kInt32:
      return f(int32_t{});
    default:
      break;
  }
  QSEARCH_CHECK(t == DType::kInt64 && "an integer code dtype");
  return f(int64_t{});
}

}  // namespace qsearch::kernels::fixed
