// Element-wise integer kernels (kernels/fixed/eltwise.h) == their ref/ twins exactly, on every
// dtype pair, shift direction and rounding, with the AVX2 path and the scalar fallback.
#include "kernels/fixed/eltwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/fixed/ref/eltwise_ref.h"
#include "kernels_fixed/tester.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::Fill;
using testing::make_codes;

constexpr uint64_t kSeed = 31337;
constexpr int64_t kN = 203;  // not a multiple of 8: vector body plus scalar tail
const DType kDtypes[] = {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32, DType::kInt64};
const Rounding kRoundings[] = {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero,
                               Rounding::kFloor};

// The widest format `t` holds.
FixedFormat widest(DType t, int frac) {
  switch (t) {
    case DType::kInt8:
      return {8, frac, true};
    case DType::kUInt8:
      return {8, frac, false};
    case DType::kInt16:
      return {16, frac, true};
    case DType::kInt32:
      return {32, frac, true};
    default:
      return {32, frac, false};  // int64 storage
  }
}

// Scalar, AVX2 and the best level (AVX-512 where the CPU has it), each once.
std::vector<Isa> isa_caps() {
  std::vector<Isa> caps;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, best_isa()}) {
    if (cpu_supports(isa) && (caps.empty() || caps.back() != isa)) caps.push_back(isa);
  }
  return caps;
}

TEST(IntEltwise, RequantizeEveryDtypeShiftAndRounding) {
  Rng rng(kSeed);
  for (DType in : kDtypes) {
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      const Tensor x = make_codes(in, kN, widest(in, 0), rng, fill);
      for (int shift : {-40, -33, -5, 0, 1, 3, 7, 15, 30, 31, 32, 40}) {
        for (Rounding r : kRoundings) {
          FixedFormat out{1 + static_cast<int>(rng.uniform_int(32)), 10, rng.uniform_int(3) != 0};
          const int in_frac = out.frac + shift;
          const DType od = quant::storage_dtype(out);
          Tensor ref_y({kN}, od);
          ref::requantize(x.raw(), in, in_frac, kN, out, r, ref_y.raw());
          for (Isa cap : isa_caps()) {
            ScopedMaxIsa scoped(cap);
            Tensor y({kN}, od);
            requantize(x.raw(), in, in_frac, kN, out, r, y.raw());
            ASSERT_TRUE(equal_exactly(
                ref_y.raw(), y.raw(), od, kN,
                fmt::format("isa<={} in={} shift={} out={} {}", isa_name(cap), dtype_name(in),
                            shift, quant::format_name(out), quant::rounding_name(r))));
          }
        }
      }
    }
  }
}

TEST(IntEltwise, AddAlignsBinaryPointsExactly) {
  Rng rng(kSeed + 1);
  for (DType at : kDtypes) {
    for (DType bt : kDtypes) {
      for (int rep = 0; rep < 6; ++rep) {
        const int fa = static_cast<int>(rng.uniform_int(21)) - 5;
        const int fb = fa + static_cast<int>(rng.uniform_int(25)) - 12;
        const Fill fill = rep % 2 ? Fill::kExtremes : Fill::kRandom;
        const Tensor a = make_codes(at, kN, widest(at, fa), rng, fill);
        const Tensor b = make_codes(bt, kN, widest(bt, fb), rng, fill);
        ASSERT_TRUE(add_fits_int64(widest(at, fa), widest(bt, fb)));
        std::vector<int64_t> ref_exact(kN), exact(kN);
        const int f = ref::add_exact(a.raw(), at, fa, b.raw(), bt, fb, kN, ref_exact.data());
        EXPECT_EQ(add_exact(a.raw(), at, fa, b.raw(), bt, fb, kN, exact.data()), f);
        EXPECT_EQ(ref_exact, exact);
        const FixedFormat out{1 + static_cast<int>(rng.uniform_int(32)),
                              std::max(fa, fb) - static_cast<int>(rng.uniform_int(12)) + 2,
                              rng.uniform_int(3) != 0};
        const Rounding r = kRoundings[rng.uniform_int(3)];
        const DType od = quant::storage_dtype(out);
        Tensor ref_y({kN}, od);
        ref::add(a.raw(), at, fa, b.raw(), bt, fb, kN, out, r, ref_y.raw());
        for (Isa cap : isa_caps()) {
          ScopedMaxIsa scoped(cap);
          Tensor y({kN}, od);
          add(a.raw(), at, fa, b.raw(), bt, fb, kN, out, r, y.raw());
          ASSERT_TRUE(equal_exactly(
              ref_y.raw(), y.raw(), od, kN,
              fmt::format("isa<={} a={}.{} b={}.{} out={} {}", isa_name(cap), dtype_name(at), fa,
                          dtype_name(bt), fb, quant::format_name(out), quant::rounding_name(r))));
        }
      }
    }
  }
  EXPECT_FALSE(add_fits_int64({8, 40, true}, {8, 0, true}));
}

TEST(IntEltwise, ReluOnCodes) {
  Rng rng(kSeed + 2);
  for (DType t : kDtypes) {
    const Tensor x = make_codes(t, kN, widest(t, 3), rng);
    Tensor ref_y({kN}, t), y({kN}, t);
    ref::relu(x.raw(), t, kN, ref_y.raw());
    relu(x.raw(), t, kN, y.raw());
    ASSERT_TRUE(equal_exactly(ref_y.raw(), y.raw(), t, kN, std::string(dtype_name(t))));
    Tensor in_place = x.clone();
    relu(in_place.raw(), t, kN, in_place.raw());
    ASSERT_TRUE(equal_exactly(ref_y.raw(), in_place.raw(), t, kN, "in place"));
  }
}

TEST(IntEltwise, MaxPoolWithPadsStridesDilations) {
  Rng rng(kSeed + 3);
  struct Pool {
    int64_t h, w;
    MaxPool2dParams p;
  };
  MaxPool2dParams two;  // 2x2 stride 2
  MaxPool2dParams padded;
  padded.kernel_h = padded.kernel_w = 3;
  padded.stride_h = 1;
  padded.stride_w = 2;
  padded.pad_top = padded.pad_left = 1;
  padded.pad_bottom = 2;
  MaxPool2dParams dilated;
  dilated.kernel_h = 2;
  dilated.kernel_w = 3;
  dilated.stride_h = dilated.stride_w = 1;
  dilated.dilation_h = 2;
  dilated.dilation_w = 2;
  dilated.pad_right = 1;
  MaxPool2dParams two_ceil = two;  // ceil_mode as the plan passes it: extra bottom/right pads
  two_ceil.pad_bottom = two_ceil.pad_right = 1;
  // 2x2 stride 2 without padding is the CNN fast path: even, odd and wide planes.
  const Pool pools[] = {{28, 28, two},    {7, 9, two},    {12, 70, two},  {5, 33, two},
                        {7, 9, two_ceil}, {6, 5, padded}, {9, 8, dilated}};
  for (DType t : kDtypes) {
    for (const Pool& pool : pools) {
      const int64_t batch = 2, channels = 3;
      const Tensor x = make_codes(t, batch * channels * pool.h * pool.w, widest(t, 0), rng);
      const int64_t n = batch * channels * pool.p.out_h(pool.h) * pool.p.out_w(pool.w);
      Tensor ref_y({n}, t), y({n}, t);
      ref::max_pool2d(x.raw(), t, batch, channels, pool.h, pool.w, pool.p, ref_y.raw());
      max_pool2d(x.raw(), t, batch, channels, pool.h, pool.w, pool.p, y.raw());
      ASSERT_TRUE(equal_exactly(ref_y.raw(), y.raw(), t, n,
                                fmt::format("{} {}x{}", dtype_name(t), pool.h, pool.w)));
    }
  }
}

// A float the op and quantizer must get right: ordinary values over the format's range and past
// it (saturation), exact ties of the code grid, +-NaN, +-inf, -0.0.
float edge_float(Rng& rng, const FixedFormat& f) {
  const float step = std::ldexp(1.0f, -f.frac);
  const float hi = static_cast<float>(f.max_code()) * step;
  switch (rng.uniform_int(10)) {
    case 0:
      return std::copysign(std::numeric_limits<float>::quiet_NaN(),
                           rng.uniform_int(2) ? 1.0f : -1.0f);
    case 1:
      return rng.uniform_int(2) ? std::numeric_limits<float>::infinity()
                                : -std::numeric_limits<float>::infinity();
    case 2:
      return -0.0f;
    case 3:
    case 4:  // a tie: (k + 1/2) steps
      return (static_cast<float>(static_cast<int64_t>(rng.uniform_int(64)) - 32) + 0.5f) * step;
    default:
      return static_cast<float>(rng.uniform(-1.5, 1.5)) * hi;
  }
}

TEST(IntEltwise, FloatOpQuantizeEqualsTheFloatOpThenQuantize) {
  Rng rng(kSeed + 7);
  // int8, uint8, int16, int32 (vector: width <= 24), int32 and int64 beyond (scalar only).
  const FixedFormat formats[] = {{8, 4, true},  {8, 3, false},  {12, 6, true},
                                 {20, 8, true}, {28, 10, true}, {32, 4, false}};
  for (const FixedFormat& f : formats) {
    const DType od = quant::storage_dtype(f);
    for (int64_t inner : {1, 3, 4, 9, 16, 17, 25, 49}) {
      for (int64_t rows : {1, 5, 37}) {
        const int64_t n = rows * inner;
        std::vector<float> x(n), s(rows);
        for (float& v : x) v = edge_float(rng, f);
        // Scales: mostly ordinary, some exact (1, 1/2: the ties stay ties), some NaN / inf / 0.
        for (float& v : s) {
          const uint64_t k = rng.uniform_int(8);
          v = k == 0   ? 1.0f
              : k == 1 ? 0.5f
              : k == 2 ? edge_float(rng, f)
                       : static_cast<float>(rng.uniform(-2.0, 2.0));
        }
        for (FloatOp op : {FloatOp::kAdd, FloatOp::kMul}) {
          for (bool s_first : {false, true}) {
            for (Rounding r : kRoundings) {
              for (bool with_y : {false, true}) {
                const std::string what = fmt::format(
                    "{} {} rows {} inner {} {}{}{}", quant::format_name(f), quant::rounding_name(r),
                    rows, inner, op == FloatOp::kAdd ? "add" : "mul", s_first ? " s first" : "",
                    with_y ? " +float" : "");
                // The spec: the float op's float32 result, then quant::quantize().
                std::vector<float> v(n);
                for (int64_t i = 0; i < n; ++i) {
                  const float a = s_first ? s[i / inner] : x[i], b = s_first ? x[i] : s[i / inner];
                  v[i] = op == FloatOp::kAdd ? a + b : a * b;
                }
                Tensor want({n}, od);
                quant::quantize(v, f, r, want.raw(), od);
                Tensor ref_y({n}, od);
                std::vector<float> ref_float(n);
                ref::float_op_quantize(op, x.data(), s.data(), s_first, rows, inner, f, r,
                                       ref_y.raw(), with_y ? ref_float.data() : nullptr);
                ASSERT_TRUE(equal_exactly(want.raw(), ref_y.raw(), od, n, "ref: " + what));
                for (Isa cap : isa_caps()) {
                  ScopedMaxIsa scoped(cap);
                  Tensor y({n}, od);
                  std::vector<float> fy(n, 7.0f);
                  float_op_quantize(op, x.data(), s.data(), s_first, rows, inner, f, r, y.raw(),
                                    with_y ? fy.data() : nullptr);
                  ASSERT_TRUE(equal_exactly(ref_y.raw(), y.raw(), od, n,
                                            fmt::format("isa<={} {}", isa_name(cap), what)));
                  if (with_y) {
                    // Bit for bit, but any NaN for a NaN: C++ leaves a NaN's sign and payload
                    // unspecified (the compiler may swap an add's operands).
                    for (int64_t i = 0; i < n; ++i) {
                      if (std::isnan(v[i])) {
                        ASSERT_TRUE(std::isnan(fy[i])) << i << " " << what;
                      } else {
                        ASSERT_TRUE(equal_exactly(&v[i], &fy[i], DType::kFloat32, 1,
                                                  fmt::format("float {}: {}", i, what)));
                      }
                    }
                  } else {
                    ASSERT_EQ(fy[0], 7.0f);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::kernels::fixed
