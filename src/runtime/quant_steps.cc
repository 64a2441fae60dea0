#include "runtime/quant_steps.h"

#include "kernels/fixed/winograd.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <span>
#include <type_traits>

#include <fmt/format.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/fixed/code_type.h"
#include "kernels/fixed/ref/conv2d_ref.h"
#include "kernels/fixed/ref/eltwise_ref.h"
#include "kernels/fixed/ref/gemm_ref.h"
#include "quant/quantize.h"

namespace qsearch::runtime {

namespace fx = kernels::fixed;

namespace {

std::string output_str(const fx::GemmParams& p) {
  switch (p.output) {
    case fx::GemmOutput::kAccumulator:
      return p.acc == fx::AccType::kInt32 ? "-> acc int32" : "-> acc int64";
    case fx::GemmOutput::kRequantize:
      return "-> " + quant::format_name(p.out_format) + (p.relu ? " relu" : "") +
             (p.clamp_lo != INT64_MIN || p.clamp_hi != INT64_MAX
                  ? fmt::format(" clip [{}, {}]", p.clamp_lo, p.clamp_hi)
                  : std::string());
    case fx::GemmOutput::kFloat:
      return "-> float";
  }
  return "";
}

std::string weight_str(const fx::PackedWeights& w, fx::AccType acc) {
  return fmt::format("{}{} {} acc {}", dtype_name(w.panel_dtype()),
                     w.code_bits() > 0 ? fmt::format("<-{}bit", w.code_bits()) : std::string(),
                     fx::isa_name(w.isa()), acc == fx::AccType::kInt32 ? "int32" : "int64");
}

// Strides (in elements) of an operand of rank r broadcast to an output of rank `rank`.
kernels::Dims broadcast(const kernels::Dims& in, int r, int rank) {
  kernels::Dims stride{};
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const int di = d - (rank - r);
    if (di < 0) {
      stride[d] = 0;
    } else {
      stride[d] = in[di] == 1 ? 0 : s;
      s *= in[di];
    }
  }
  return stride;
}

}  // namespace

// ---- conversions -------------------------------------------------------------------------------

// Elementwise (de)quantization split into chunks over parallel_for: each element is converted
// on its own, so any split gives the same values.
constexpr int64_t kQuantGrain = 1 << 14;

void FakeQuantizeStep::run(const RunContext& ctx) const {
  const float* x = ctx.data<float>(inputs[0]);
  float* y = ctx.data<float>(outputs[0]);
  parallel_for(0, ctx.numel(outputs[0]), kQuantGrain, [&](int64_t begin, int64_t end) {
    quant::fake_quantize(std::span<const float>(x + begin, end - begin), format, rounding,
                         std::span<float>(y + begin, end - begin));
  });
}

std::string FakeQuantizeStep::describe() const {
  return fmt::format("fake_quantize {} {}", quant::format_name(format),
                     quant::rounding_name(rounding));
}

void QuantizeStep::run(const RunContext& ctx) const {
  const int64_t n = ctx.numel(outputs[0]);
  const float* x = ctx.data<float>(inputs[0]);
  auto* codes = static_cast<unsigned char*>(ctx.slot_ptr(outputs[0]));
  const DType dt = quant::storage_dtype(format);
  const int64_t size = static_cast<int64_t>(dtype_size(dt));
  parallel_for(0, n, kQuantGrain, [&](int64_t begin, int64_t end) {
    quant::quantize(std::span<const float>(x + begin, end - begin), format, rounding,
                    codes + begin * size, dt);
  });
}

std::string QuantizeStep::describe() const {
  return fmt::format("quantize -> {} {}", quant::format_name(format),
                     quant::rounding_name(rounding));
}

void FloatOpQuantizeStep::run(const RunContext& ctx) const {
  const SlotId xs = inputs[x_input], ss = inputs[1 - x_input];
  const float* x = ctx.data<float>(xs);
  const float* s = ctx.data<float>(ss);
  const kernels::Dims d = ctx.dims(xs);
  int64_t inner = 1;
  for (int k = row_rank; k < ctx.shape(xs).rank; ++k) inner *= d[k];
  const int64_t n = ctx.numel(outputs[0]);
  if (n == 0) return;
  auto* codes = static_cast<unsigned char*>(ctx.slot_ptr(outputs[0]));
  const int64_t size = static_cast<int64_t>(dtype_size(quant::storage_dtype(format)));
  float* y = outputs.size() > 1 ? ctx.data<float>(outputs[1]) : nullptr;
  // Each value on its own: any split of the rows gives the same values.
  parallel_for(0, n / inner, std::max<int64_t>(1, kQuantGrain / inner),
               [&](int64_t begin, int64_t end) {
                 fx::float_op_quantize(op, x + begin * inner, s + begin, x_input == 1, end - begin,
                                       inner, format, rounding, codes + begin * inner * size,
                                       y != nullptr ? y + begin * inner : nullptr);
               });
}

std::string FloatOpQuantizeStep::describe() const {
  return fmt::format("{}_f32 +quantize -> {} {}{}", op == fx::FloatOp::kAdd ? "add" : "mul",
                     quant::format_name(format), quant::rounding_name(rounding),
                     outputs.size() > 1 ? " +float" : "");
}

void RequantizeStep::run(const RunContext& ctx) const {
  fx::requantize(ctx.slot_ptr(inputs[0]), in_dtype, in_frac, ctx.numel(outputs[0]), format,
                 rounding, ctx.slot_ptr(outputs[0]));
}

std::string RequantizeStep::describe() const {
  return fmt::format("requantize {}.{} -> {} {}", dtype_name(in_dtype), in_frac,
                     quant::format_name(format), quant::rounding_name(rounding));
}

void DequantizeStep::run(const RunContext& ctx) const {
  const auto* codes = static_cast<const unsigned char*>(ctx.slot_ptr(inputs[0]));
  const int64_t size = static_cast<int64_t>(dtype_size(in_dtype));
  float* y = ctx.data<float>(outputs[0]);
  parallel_for(0, ctx.numel(outputs[0]), kQuantGrain, [&](int64_t begin, int64_t end) {
    quant::dequantize(codes + begin * size, in_dtype, end - begin, frac, y + begin);
  });
}

std::string DequantizeStep::describe() const {
  return fmt::format("dequantize {}.{} -> float", dtype_name(in_dtype), frac);
}

// ---- GEMM and convolution ----------------------------------------------------------------------

void IntGemmStep::run(const RunContext& ctx) const {
  const int64_t k = packed.k();
  const int64_t m = ctx.numel(inputs[0]) / k;
  if (reference) {
    fx::ref::gemm(ctx.slot_ptr(inputs[0]), m, k, spec, params, ctx.slot_ptr(outputs[0]));
  } else {
    fx::gemm(ctx.slot_ptr(inputs[0]), m, k, packed, params, ctx.slot_ptr(outputs[0]));
  }
}

std::string IntGemmStep::describe() const {
  return fmt::format("gemm_int {} x {} {}{}", dtype_name(packed.a_dtype()),
                     weight_str(packed, params.acc), output_str(params), reference ? " ref" : "");
}

void IntConvStep::run(const RunContext& ctx) const {
  const int64_t batch = ctx.dim(inputs[0], 0);
  if (reference && pool == fx::ConvPool::kNone) {
    fx::ref::conv2d(ctx.slot_ptr(inputs[0]), batch, geometry, spec, params,
                    ctx.slot_ptr(outputs[0]));
  } else if (reference) {
    // The reference conv's full output (allocated here: the reference kernels are for tests),
    // then the reference max pool (2x2, stride 2, no padding: MaxPool2dParams' defaults).
    QSEARCH_CHECK(params.output == fx::GemmOutput::kRequantize);
    const DType t = fx::gemm_output_dtype(params);
    Tensor full({batch, geometry.out_channels, geometry.out_h(), geometry.out_w()}, t);
    fx::ref::conv2d(ctx.slot_ptr(inputs[0]), batch, geometry, spec, params, full.raw());
    fx::ref::max_pool2d(full.raw(), t, batch, geometry.out_channels, geometry.out_h(),
                        geometry.out_w(), fx::MaxPool2dParams{}, ctx.slot_ptr(outputs[0]));
  } else if (post_scale.numel() == 0) {
    fx::conv2d(ctx.slot_ptr(inputs[0]), batch, packed, params, ctx.slot_ptr(outputs[0]), pool);
  } else {
    fx::GemmParams p = params;
    p.post_scale = post_scale.data<float>();
    p.post_shift = post_shift.data<float>();
    fx::conv2d(ctx.slot_ptr(inputs[0]), batch, packed, p, ctx.slot_ptr(outputs[0]), pool);
  }
}

std::string IntConvStep::describe() const {
  // " winograd": the exact integer Winograd path (kernels/fixed/winograd.h) runs this conv.
  const bool winograd = packed.winograd() != nullptr && pool == fx::ConvPool::kNone && !reference;
  std::string post;
  if (post_scale.numel() != 0 && post_is_batch_norm) {
    post = fmt::format(" +batchnorm{}",
                       params.post_lo == 0.0f && std::isinf(params.post_hi)       ? " +relu"
                       : std::isinf(params.post_lo) && std::isinf(params.post_hi) ? ""
                                                                                  : " +clip");
  }
  if (params.post_silu) post += " +silu";
  if (params.post_quantize) {
    post += fmt::format(" +quantize -> {} {}", quant::format_name(params.post_format),
                        quant::rounding_name(params.post_rounding));
  }
  const int64_t min_batch = winograd ? packed.winograd()->min_batch : 1;
  const fx::Conv2dGeometry& run = packed.geometry();
  const bool cut = run.kernel_h != geometry.kernel_h || run.kernel_w != geometry.kernel_w;
  return fmt::format(
      "conv2d_int {} x {} {}{}{}{}{}{}", dtype_name(packed.a_dtype()),
      weight_str(packed.groups().front(), params.acc), output_str(params), post,
      pool == fx::ConvPool::kMax2x2 ? " +maxpool2x2" : "",
      cut ? fmt::format(" kernel {}x{} of {}x{} (taps on the padding only cut off)", run.kernel_h,
                        run.kernel_w, geometry.kernel_h, geometry.kernel_w)
          : "",
      !winograd ? ""
                : fmt::format(" winograd{}{}", packed.winograd()->tile == 4 ? " F(4x4)" : "",
                              min_batch > 1 ? fmt::format(" (batch >= {})", min_batch) : ""),
      reference ? " ref" : "");
}

// ---- element-wise ------------------------------------------------------------------------------

void IntAddStep::run(const RunContext& ctx) const {
  const int64_t n = ctx.numel(outputs[0]);
  if (format) {
    fx::add(ctx.slot_ptr(inputs[0]), a_dtype, a_frac, ctx.slot_ptr(inputs[1]), b_dtype, b_frac, n,
            *format, rounding, ctx.slot_ptr(outputs[0]));
  } else {
    fx::add_exact(ctx.slot_ptr(inputs[0]), a_dtype, a_frac, ctx.slot_ptr(inputs[1]), b_dtype,
                  b_frac, n, ctx.data<int64_t>(outputs[0]));
  }
}

std::string IntAddStep::describe() const {
  return fmt::format("add_int {}.{} + {}.{} -> {}", dtype_name(a_dtype), a_frac,
                     dtype_name(b_dtype), b_frac,
                     format ? quant::format_name(*format) : std::string("int64 exact"));
}

void IntBinaryStep::run(const RunContext& ctx) const {
  const int rank = ctx.shape(outputs[0]).rank;
  const kernels::Dims shape = ctx.dims(outputs[0]);
  const kernels::Dims sa = broadcast(ctx.dims(inputs[0]), ctx.shape(inputs[0]).rank, rank);
  const kernels::Dims sb = broadcast(ctx.dims(inputs[1]), ctx.shape(inputs[1]).rank, rank);
  const int64_t n = ctx.numel(outputs[0]);
  const int f = op == Op::kMul ? a_frac + b_frac : std::max(a_frac, b_frac);
  const int shift_a = op == Op::kMul ? 0 : f - a_frac, shift_b = op == Op::kMul ? 0 : f - b_frac;
  const void* pa = ctx.slot_ptr(inputs[0]);
  const void* pb = ctx.slot_ptr(inputs[1]);
  void* out = ctx.slot_ptr(outputs[0]);
  const DType out_dtype = format ? quant::storage_dtype(*format) : DType::kInt64;
  kernels::Dims idx{};
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = quant::load_code(pa, a_dtype, ia), b = quant::load_code(pb, b_dtype, ib);
    // Exact: plan() checked that aligned operands and products stay inside int64.
    int64_t v;
    if (op == Op::kMul) {
      v = a * b;
    } else {
      const int64_t x = static_cast<int64_t>(static_cast<uint64_t>(a) << shift_a);
      const int64_t y = static_cast<int64_t>(static_cast<uint64_t>(b) << shift_b);
      v = op == Op::kAdd ? x + y : x - y;
    }
    quant::store_code(out, out_dtype, i, format ? quant::requantize(v, f, *format, rounding) : v);
    for (int d = rank - 1; d >= 0; --d) {
      ia += sa[d];
      ib += sb[d];
      if (++idx[d] < shape[d]) break;
      ia -= sa[d] * shape[d];
      ib -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

std::string IntBinaryStep::describe() const {
  static const char* names[] = {"add", "sub", "mul"};
  return fmt::format("{}_int broadcast -> {}", names[static_cast<int>(op)],
                     format ? quant::format_name(*format) : std::string("int64 exact"));
}

namespace {

// The largest |code| of an integer code type of at most 16 bits.
template <typename T>
constexpr int64_t code_magnitude() {
  static_assert(sizeof(T) <= 2);
  return std::is_signed_v<T> ? -static_cast<int64_t>(std::numeric_limits<T>::min())
                             : static_cast<int64_t>(std::numeric_limits<T>::max());
}

// y[j] = sum_q a[q] * b[q * n + j] for one output row, accumulated in Acc (exact by the caller's
// bound) over blocks of columns, q outermost so that the j loop vectorises.
template <typename Acc, typename A, typename B>
void matmul_row(const A* a, const B* b, int64_t* y, int64_t k, int64_t n) {
  constexpr int64_t kCols = 256;
  Acc acc[kCols];
  for (int64_t j0 = 0; j0 < n; j0 += kCols) {
    const int64_t w = std::min(kCols, n - j0);
    std::fill_n(acc, w, Acc{0});
    for (int64_t q = 0; q < k; ++q) {
      const Acc av = static_cast<Acc>(a[q]);
      const B* br = b + q * n + j0;
      for (int64_t j = 0; j < w; ++j) acc[j] += av * static_cast<Acc>(br[j]);
    }
    for (int64_t j = 0; j < w; ++j) y[j0 + j] = acc[j];
  }
}

#ifdef __AVX2__
// Eight codes from p as int32 lanes.
template <typename T>
__m256i widen8(const T* p) {
  if constexpr (std::is_same_v<T, int8_t>) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  } else {
    static_assert(std::is_same_v<T, int16_t>);
    return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
}

void store_i64x8(int64_t* y, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y),
                      _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 4),
                      _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
}

// matmul_row<int32_t> for 8/16-bit codes with the sums in registers: 16 and 8 columns at a time,
// the last n % 8 one by one.
template <typename A, typename B>
void matmul_row_i32x8(const A* a, const B* b, int64_t* y, int64_t k, int64_t n) {
  int64_t j0 = 0;
  for (; j0 + 16 <= n; j0 += 16) {
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int64_t q = 0; q < k; ++q) {
      const __m256i av = _mm256_set1_epi32(static_cast<int32_t>(a[q]));
      acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(av, widen8(b + q * n + j0)));
      acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(av, widen8(b + q * n + j0 + 8)));
    }
    store_i64x8(y + j0, acc0);
    store_i64x8(y + j0 + 8, acc1);
  }
  for (; j0 + 8 <= n; j0 += 8) {
    __m256i acc = _mm256_setzero_si256();
    for (int64_t q = 0; q < k; ++q) {
      const __m256i av = _mm256_set1_epi32(static_cast<int32_t>(a[q]));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(av, widen8(b + q * n + j0)));
    }
    store_i64x8(y + j0, acc);
  }
  for (; j0 < n; ++j0) {
    int32_t acc = 0;
    for (int64_t q = 0; q < k; ++q) {
      acc += static_cast<int32_t>(a[q]) * static_cast<int32_t>(b[q * n + j0]);
    }
    y[j0] = acc;
  }
}
#endif

template <typename T>
constexpr bool kWidens8 =
    std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t> || std::is_same_v<T, int16_t>;

}  // namespace

void IntMatMulStep::run(const RunContext& ctx) const {
  const kernels::Dims a = ctx.dims(inputs[0]), b = ctx.dims(inputs[1]), y = ctx.dims(outputs[0]);
  const int ra = ctx.shape(inputs[0]).rank, rb = ctx.shape(inputs[1]).rank;
  const int ry = ctx.shape(outputs[0]).rank;
  const int64_t m = a[ra - 2], k = a[ra - 1], n = b[rb - 1];
  const int batch_rank = ry - 2;
  kernels::Dims ab{}, bb{}, yb{};
  for (int d = 0; d < ra - 2; ++d) ab[d] = a[d];
  for (int d = 0; d < rb - 2; ++d) bb[d] = b[d];
  for (int d = 0; d < batch_rank; ++d) yb[d] = y[d];
  const kernels::Dims sa = broadcast(ab, ra - 2, batch_rank);
  const kernels::Dims sb = broadcast(bb, rb - 2, batch_rank);
  int64_t batches = 1;
  for (int d = 0; d < batch_rank; ++d) batches *= yb[d];
  int64_t* out = ctx.data<int64_t>(outputs[0]);
  const void* pa = ctx.slot_ptr(inputs[0]);
  const void* pb = ctx.slot_ptr(inputs[1]);
  struct Job {
    int64_t m, k, n;
    int batch_rank;
    kernels::Dims yb, sa, sb;
  } job{m, k, n, batch_rank, yb, sa, sb};
  // Rows (batch, i) split over parallel_for; each output is one exact sum, so any split gives
  // the same result.
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, n * k));
  kernels::fixed::with_code_type(a_dtype, [&](auto at) {
    using A = decltype(at);
    kernels::fixed::with_code_type(b_dtype, [&](auto bt) {
      using B = decltype(bt);
      // int32 sums when K * max|A| * max|B| cannot overflow them (8-bit codes: any K up to
      // 131072), else int64; both exact.
      bool narrow = false;
      if constexpr (sizeof(A) <= 2 && sizeof(B) <= 2) {
        constexpr int64_t product = code_magnitude<A>() * code_magnitude<B>();
        narrow = k <= INT32_MAX / product;
      }
      parallel_for(0, batches * m, grain, [&job, narrow, pa, pb, out](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t t = r / job.m, i = r % job.m;
          int64_t oa = 0, ob = 0, rest = t;
          for (int d = job.batch_rank - 1; d >= 0; --d) {
            const int64_t idx = rest % job.yb[d];
            rest /= job.yb[d];
            oa += idx * job.sa[d];
            ob += idx * job.sb[d];
          }
          const A* ap = static_cast<const A*>(pa) + oa * job.m * job.k + i * job.k;
          const B* bp = static_cast<const B*>(pb) + ob * job.k * job.n;
          int64_t* yr = out + r * job.n;
          if (narrow) {
#ifdef __AVX2__
            if constexpr (kWidens8<A> && kWidens8<B>) {
              matmul_row_i32x8(ap, bp, yr, job.k, job.n);
              continue;
            }
#endif
            matmul_row<int32_t>(ap, bp, yr, job.k, job.n);
          } else {
            matmul_row<int64_t>(ap, bp, yr, job.k, job.n);
          }
        }
      });
    });
  });
}

void IntMaxPoolStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  fx::max_pool2d(ctx.slot_ptr(inputs[0]), dtype, x[0], x[1], x[2], x[3], params,
                 ctx.slot_ptr(outputs[0]));
}

std::string IntMaxPoolStep::describe() const {
  return fmt::format("max_pool2d_int {}", dtype_name(dtype));
}

void IntReluStep::run(const RunContext& ctx) const {
  fx::relu(ctx.slot_ptr(inputs[0]), dtype, ctx.numel(outputs[0]), ctx.slot_ptr(outputs[0]));
}

std::string IntReluStep::describe() const { return fmt::format("relu_int {}", dtype_name(dtype)); }

}  // namespace qsearch::runtime
