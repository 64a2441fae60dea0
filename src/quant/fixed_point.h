// Fixed-point number formats (MASE's "integer" / "fixed" arithmetic) and the scalar conversions
// that define them. Every other piece of qsearch that touches fixed point (the vectorised tensor
// functions in quant/quantize.h, the integer kernels in kernels/fixed/) must agree with these
// functions bit for bit; docs/numerics.md is the prose version of this header.
//
// A FixedFormat {width w, frac f, is_signed} represents the values  code * 2^-f  with an
// integer code in
//     signed:    [-2^(w-1), 2^(w-1) - 1]
//     unsigned:  [0, 2^w - 1]            (MASE uses it for the input of a ReLU)
// f is the number of fractional bits: it may be negative (the step is 2^|f| > 1) or exceed w
// (every value is a small fraction), as in MASE. A missing or "NA" frac means w / 2 (integer
// division): resolve_frac_width().
//
// The MASE quantizer (reference mase.md §6.1), computed by PyTorch in float32:
//     q(x) = clamp(round(x * 2^f), lo, hi) / 2^f
// with round = torch.round (half to even) unless another Rounding is asked for explicitly.
//
//   FixedFormat fmt{8, 4, true};                               // int8 codes, step 1/16
//   int64_t c = quantize(1.03f, fmt, Rounding::kHalfToEven);   // 16 (1.03 * 16 = 16.48 -> 16)
//   float v = dequantize(c, fmt.frac);                         // 1.0f
//   float y = fake_quantize(1.03f, fmt, Rounding::kHalfToEven); // 1.0f, exactly MASE's value
//   int64_t r = requantize(c, 4, FixedFormat{4, 1, true}, Rounding::kHalfToEven);  // 2 (= 1.0)
//
// All functions here are pure and never throw, except validate().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/dtype.h"

namespace qsearch::quant {

// How a value between two representable integers is resolved. Every conversion in qsearch takes
// one explicitly (no implicit rounding anywhere).
enum class Rounding : uint8_t {
  kHalfToEven,        // round to nearest, ties to even: torch.round, numpy.round, ONNX default
  kHalfAwayFromZero,  // round to nearest, ties away from zero: std::round, C's lround
  kFloor,             // toward -inf: MASE's integer_floor_quantizer; an arithmetic shift
};

std::string_view rounding_name(Rounding r);  // "half_to_even", "half_away_from_zero", "floor"

// f(std::integral_constant<Rounding, r>{}): lets code templated on the rounding pick its
// instantiation from a run-time value, e.g.
//   auto fn = with_rounding(r, [](auto R) { return &kernel<R.value>; });
template <typename F>
decltype(auto) with_rounding(Rounding r, F&& f) {
  using enum Rounding;
  switch (r) {
    case kHalfToEven:
      return f(std::integral_constant<Rounding, kHalfToEven>{});
    case kHalfAwayFromZero:
      return f(std::integral_constant<Rounding, kHalfAwayFromZero>{});
    case kFloor:
      break;
  }
  return f(std::integral_constant<Rounding, kFloor>{});
}

// Limits of a FixedFormat. Widths follow MASE (1..32). |frac| <= 62 because MASE cannot form its
// scale 2**frac as a PyTorch scalar for frac >= 63 ("Overflow when unpacking long"); within this
// range 2^frac and 2^-frac are normal float32 numbers and every conversion below is exact.
inline constexpr int kMinWidth = 1;
inline constexpr int kMaxWidth = 32;
inline constexpr int kMinFrac = -62;
inline constexpr int kMaxFrac = 62;

struct FixedFormat {
  int width = 8;
  int frac = 4;
  bool is_signed = true;

  // Smallest and largest code: [-2^(w-1), 2^(w-1)-1] or [0, 2^w-1].
  int64_t min_code() const { return is_signed ? -(int64_t{1} << (width - 1)) : 0; }
  int64_t max_code() const {
    return is_signed ? (int64_t{1} << (width - 1)) - 1 : (int64_t{1} << width) - 1;
  }
  // max(|min_code|, |max_code|): the largest magnitude a code can have.
  int64_t max_abs_code() const { return is_signed ? int64_t{1} << (width - 1) : max_code(); }
  // Smallest positive step, 2^-frac, and the largest representable value, as doubles (exact).
  double step() const;
  double max_value() const;
  double min_value() const;

  bool operator==(const FixedFormat&) const = default;
};

// "s8.4" / "u8.4": signed or unsigned, width, frac.
std::string format_name(const FixedFormat& f);

// Throws qsearch::Error naming `what` (e.g. "weight") unless kMinWidth <= width <= kMaxWidth and
// kMinFrac <= frac <= kMaxFrac.
void validate(const FixedFormat& f, std::string_view what);

// MASE's default fractional width for a missing or "NA" frac_width: width / 2 (integer division,
// as Python's width // 2 for the positive widths allowed).
constexpr int resolve_frac_width(int width) { return width / 2; }

// The narrowest DType holding every code of the format:
//   signed   w <= 8: int8,   w <= 16: int16,  w <= 32: int32
//   unsigned w <= 8: uint8,  w <= 15: int16,  w <= 31: int32,  w == 32: int64
DType storage_dtype(const FixedFormat& f);
// True when every code of `f` fits in `t` (t an integer dtype).
bool dtype_holds(DType t, const FixedFormat& f);

// ---- scalar conversions (the spec) ----------------------------------------------------------

// Rounds a float32 to an integral float32 with `r` (+-0, +-inf and NaN pass through).
// kHalfToEven assumes the default floating-point environment (FE_TONEAREST).
float round_to_integral(float v, Rounding r);

// The code of x: clamp(round(x * 2^f), lo, hi) computed as MASE does (x * 2^f in float32; this
// product is exact except when it underflows, where the result rounds to 0 anyway).
// +-inf saturate; NaN maps to code 0 (a code cannot hold NaN; fake_quantize keeps it).
int64_t quantize(float x, const FixedFormat& f, Rounding r);

// The float32 nearest to code * 2^-frac (one rounding; exact when |code| <= 2^24).
float dequantize(int64_t code, int frac);

// MASE's _integer_quantize exactly as PyTorch computes it, bit for bit:
//   v = fl32(x * 2^f); v = round(v); v = clamp(v, fl32(lo), fl32(hi)); return v / 2^f
// Note fl32(hi) = 2^31 for a signed 32-bit format (2^31 - 1 is not a float32), as in PyTorch.
// -0.0 and small negatives that round to -0.0 stay -0.0 (also for unsigned formats), NaN stays
// NaN, +-inf saturate. Equal to dequantize(quantize(x)) except for -0.0 and NaN.
float fake_quantize(float x, const FixedFormat& f, Rounding r);

// x * 2^-s rounded to an integer with `r`, exactly, for any int64 x and any shift s
// (s <= 0 is an exact left shift; the result saturates to the int64 range).
int64_t rounding_shift_right(int64_t x, int s, Rounding r);

// Clamps an exact integer to the format's code range.
inline int64_t saturate(int64_t v, const FixedFormat& f) {
  const int64_t lo = f.min_code(), hi = f.max_code();
  return v < lo ? lo : (v > hi ? hi : v);
}

// Converts a code with binary point `from_frac` (value = code * 2^-from_frac) to format `to`:
// clamp(round(code * 2^(to.frac - from_frac)), lo, hi), exactly (integer arithmetic only).
// This equals quantize() of the exact real value code * 2^-from_frac.
int64_t requantize(int64_t code, int from_frac, const FixedFormat& to, Rounding r);

}  // namespace qsearch::quant
