#include "runtime/quant_steps.h"

#include <algorithm>
#include <cmath>
#include <span>

#include <fmt/format.h>

#include "core/check.h"
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

template <typename F>
void dispatch_int(DType t, F&& f) {
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
      return f(int64_t{});
  }
}

}  // namespace

// ---- conversions -------------------------------------------------------------------------------

void FakeQuantizeStep::run(const RunContext& ctx) const {
  const int64_t n = ctx.numel(outputs[0]);
  quant::fake_quantize(std::span<const float>(ctx.data<float>(inputs[0]), n), format, rounding,
                       std::span<float>(ctx.data<float>(outputs[0]), n));
}

std::string FakeQuantizeStep::describe() const {
  return fmt::format("fake_quantize {} {}", quant::format_name(format),
                     quant::rounding_name(rounding));
}

void QuantizeStep::run(const RunContext& ctx) const {
  const int64_t n = ctx.numel(outputs[0]);
  quant::quantize(std::span<const float>(ctx.data<float>(inputs[0]), n), format, rounding,
                  ctx.slot_ptr(outputs[0]), quant::storage_dtype(format));
}

std::string QuantizeStep::describe() const {
  return fmt::format("quantize -> {} {}", quant::format_name(format),
                     quant::rounding_name(rounding));
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
  quant::dequantize(ctx.slot_ptr(inputs[0]), in_dtype, ctx.numel(outputs[0]), frac,
                    ctx.data<float>(outputs[0]));
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
  std::string post;
  if (post_scale.numel() != 0) {
    post = fmt::format(" +batchnorm{}",
                       params.post_lo == 0.0f && std::isinf(params.post_hi)       ? " +relu"
                       : std::isinf(params.post_lo) && std::isinf(params.post_hi) ? ""
                                                                                  : " +clip");
  }
  return fmt::format("conv2d_int {} x {} {}{}{}{}", dtype_name(packed.a_dtype()),
                     weight_str(packed.groups().front(), params.acc), output_str(params), post,
                     pool == fx::ConvPool::kMax2x2 ? " +maxpool2x2" : "", reference ? " ref" : "");
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
  dispatch_int(a_dtype, [&](auto at) {
    using A = decltype(at);
    dispatch_int(b_dtype, [&](auto bt) {
      using B = decltype(bt);
      for (int64_t t = 0; t < batches; ++t) {
        int64_t oa = 0, ob = 0, rest = t;
        for (int d = batch_rank - 1; d >= 0; --d) {
          const int64_t i = rest % yb[d];
          rest /= yb[d];
          oa += i * sa[d];
          ob += i * sb[d];
        }
        const A* ap = static_cast<const A*>(pa) + oa * m * k;
        const B* bp = static_cast<const B*>(pb) + ob * k * n;
        int64_t* yp = out + t * m * n;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            int64_t s = 0;
            for (int64_t q = 0; q < k; ++q) {
              s += static_cast<int64_t>(ap[i * k + q]) * static_cast<int64_t>(bp[q * n + j]);
            }
            yp[i * n + j] = s;
          }
        }
      }
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
