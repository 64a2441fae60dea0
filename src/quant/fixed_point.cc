#include "quant/fixed_point.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"

namespace qsearch::quant {

std::string_view rounding_name(Rounding r) {
  switch (r) {
    case Rounding::kHalfToEven:
      return "half_to_even";
    case Rounding::kHalfAwayFromZero:
      return "half_away_from_zero";
    case Rounding::kFloor:
      return "floor";
  }
  return "?";
}

double FixedFormat::step() const { return std::ldexp(1.0, -frac); }
double FixedFormat::max_value() const { return std::ldexp(static_cast<double>(max_code()), -frac); }
double FixedFormat::min_value() const { return std::ldexp(static_cast<double>(min_code()), -frac); }

std::string format_name(const FixedFormat& f) {
  return fmt::format("{}{}.{}", f.is_signed ? 's' : 'u', f.width, f.frac);
}

void validate(const FixedFormat& f, std::string_view what) {
  if (f.width < kMinWidth || f.width > kMaxWidth) {
    fail("{} width {} is out of range: fixed-point widths must be {}..{}", what, f.width, kMinWidth,
         kMaxWidth);
  }
  if (f.frac < kMinFrac || f.frac > kMaxFrac) {
    fail(
        "{} frac width {} is out of range: frac widths must be {}..{} (MASE cannot form 2**frac "
        "beyond that)",
        what, f.frac, kMinFrac, kMaxFrac);
  }
}

DType storage_dtype(const FixedFormat& f) {
  if (f.is_signed) {
    if (f.width <= 8) return DType::kInt8;
    if (f.width <= 16) return DType::kInt16;
    return DType::kInt32;
  }
  if (f.width <= 8) return DType::kUInt8;
  if (f.width <= 15) return DType::kInt16;
  if (f.width <= 31) return DType::kInt32;
  return DType::kInt64;
}

bool dtype_holds(DType t, const FixedFormat& f) {
  int64_t lo = 0, hi = 0;
  switch (t) {
    case DType::kInt8:
      lo = INT8_MIN, hi = INT8_MAX;
      break;
    case DType::kUInt8:
      lo = 0, hi = UINT8_MAX;
      break;
    case DType::kInt16:
      lo = INT16_MIN, hi = INT16_MAX;
      break;
    case DType::kInt32:
      lo = INT32_MIN, hi = INT32_MAX;
      break;
    case DType::kInt64:
      return true;
    case DType::kFloat32:
    case DType::kFloat64:
      return false;
  }
  return lo <= f.min_code() && f.max_code() <= hi;
}

float round_to_integral(float v, Rounding r) {
  switch (r) {
    case Rounding::kHalfToEven:
      return std::nearbyint(v);
    case Rounding::kHalfAwayFromZero:
      return std::round(v);
    case Rounding::kFloor:
      return std::floor(v);
  }
  return v;
}

int64_t quantize(float x, const FixedFormat& f, Rounding r) {
  const float v = round_to_integral(x * std::ldexp(1.0f, f.frac), r);
  if (std::isnan(v)) return 0;
  // Compare in double: the float32 bounds of wide formats are not the integer bounds.
  const double d = v;
  if (d <= static_cast<double>(f.min_code())) return f.min_code();
  if (d >= static_cast<double>(f.max_code())) return f.max_code();
  return static_cast<int64_t>(d);
}

float dequantize(int64_t code, int frac) { return std::ldexp(static_cast<float>(code), -frac); }

float fake_quantize(float x, const FixedFormat& f, Rounding r) {
  const float scale = std::ldexp(1.0f, f.frac);
  float v = round_to_integral(x * scale, r);
  // PyTorch converts the Python-int bounds to float32 before clamping; this comparison order
  // keeps NaN and -0.0 exactly as torch.clamp does.
  const float lo = static_cast<float>(f.min_code());
  const float hi = static_cast<float>(f.max_code());
  v = v < lo ? lo : (v > hi ? hi : v);
  return v / scale;
}

int64_t rounding_shift_right(int64_t x, int s, Rounding r) {
  if (s <= 0) {
    if (x == 0) return 0;
    const int left = -s;
    const int64_t max = std::numeric_limits<int64_t>::max();
    const int64_t min = std::numeric_limits<int64_t>::min();
    if (left >= 63) return x > 0 ? max : min;
    if (x > (max >> left)) return max;
    if (x < (min >> left)) return min;
    return static_cast<int64_t>(static_cast<uint64_t>(x) << left);
  }
  if (s > 100) {
    // |x| * 2^-s < 2^-37: nearest rounds to 0, floor to -1 for negative x.
    return (r == Rounding::kFloor && x < 0) ? -1 : 0;
  }
  const __int128_t wide = x;
  __int128_t q = wide >> s;  // floor (arithmetic shift)
  if (r == Rounding::kFloor) return static_cast<int64_t>(q);
  const __int128_t rem = wide & ((static_cast<__int128_t>(1) << s) - 1);  // x - q * 2^s
  const __int128_t half = static_cast<__int128_t>(1) << (s - 1);
  if (rem > half) {
    ++q;
  } else if (rem == half) {
    if (r == Rounding::kHalfToEven ? (q & 1) != 0 : wide > 0) ++q;
  }
  return static_cast<int64_t>(q);
}

int64_t requantize(int64_t code, int from_frac, const FixedFormat& to, Rounding r) {
  return saturate(rounding_shift_right(code, from_frac - to.frac, r), to);
}

}  // namespace qsearch::quant
