#include "runtime/float_steps.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/pool.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/gemm.h"
#include "kernels/ref/layout.h"
#include "kernels/ref/norm.h"
#include "kernels/ref/pool.h"

namespace qsearch::runtime {

namespace {

std::string fused_suffix(const FusedEpilogue& e) {
  std::string s;
  for (const auto& f : e.fused) s += (s.empty() ? " [+" : " +") + f;
  return s.empty() ? s : s + "]";
}

// rank 3 (Conv1d, NCL) runs as NCHW with H = 1: the same memory layout.
kernels::Conv2dParams conv_params(const ir::ConvAttrs& a, const kernels::Dims& x,
                                  const kernels::Dims& y, int rank) {
  kernels::Conv2dParams p;
  p.batch = x[0];
  p.in_channels = x[1];
  p.in_h = rank == 3 ? 1 : x[2];
  p.in_w = rank == 3 ? x[2] : x[3];
  p.out_channels = y[1];
  p.out_h = rank == 3 ? 1 : y[2];
  p.out_w = rank == 3 ? y[2] : y[3];
  p.kernel_h = a.kernel[0];
  p.kernel_w = a.kernel[1];
  p.stride_h = a.strides[0];
  p.stride_w = a.strides[1];
  p.dilation_h = a.dilations[0];
  p.dilation_w = a.dilations[1];
  p.pad_top = a.pads[0];
  p.pad_left = a.pads[1];
  p.groups = a.group;
  return p;
}

// Strides of `in` (rank r_in) broadcast to an output of rank r_out (numpy rules: align right,
// stride 0 where the input dim is 1 or missing).
void broadcast_strides(const kernels::Dims& in, int r_in, int r_out, kernels::Dims& stride) {
  int64_t s = 1;
  for (int d = r_out - 1; d >= 0; --d) {
    const int di = d - (r_out - r_in);
    if (di < 0) {
      stride[d] = 0;
    } else {
      stride[d] = in[di] == 1 ? 0 : s;
      s *= in[di];
    }
  }
}

}  // namespace

kernels::Epilogue FusedEpilogue::make(const RunContext& ctx) const {
  kernels::Epilogue ep;
  ep.alpha = alpha;
  ep.bias = bias.empty() ? nullptr : bias.data<float>();
  ep.residual = residual == kNoSlot ? nullptr : ctx.data<float>(residual);
  ep.residual_after_clamp = residual_after_clamp;
  ep.clamp_min = clamp_min;
  ep.clamp_max = clamp_max;
  ep.silu = silu;
  return ep;
}

// ---- GEMM ------------------------------------------------------------------------------------

void GemmPackedStep::run(const RunContext& ctx) const {
  const int64_t k = packed.k, n = packed.n;
  const int64_t m =
      k == 0 ? ctx.numel(outputs[0]) / std::max<int64_t>(1, n) : ctx.numel(inputs[0]) / k;
  kernels::Epilogue ep = epilogue.make(ctx);
  ep.residual_stride = n;
  kernels::gemm_f32_packed(m, ctx.data<float>(inputs[0]), k, packed, ctx.data<float>(outputs[0]), n,
                           ep);
}

std::string GemmPackedStep::describe() const {
  return fmt::format("gemm_f32 packed {}{}", kernels::isa_name(packed.isa), fused_suffix(epilogue));
}

void GemmRefStep::run(const RunContext& ctx) const {
  const kernels::Dims a = ctx.dims(inputs[0]), b = ctx.dims(inputs[1]);
  kernels::GemmParams p;
  p.m = attrs.trans_a ? a[1] : a[0];
  p.k = attrs.trans_a ? a[0] : a[1];
  p.n = attrs.trans_b ? b[0] : b[1];
  p.alpha = attrs.alpha;
  p.beta = attrs.beta;
  p.trans_a = attrs.trans_a;
  p.trans_b = attrs.trans_b;
  const float* c = nullptr;
  if (inputs.size() > 2) {
    c = ctx.data<float>(inputs[2]);
    const int rc = ctx.shape(inputs[2]).rank;
    const kernels::Dims cd = ctx.dims(inputs[2]);
    kernels::Dims st{};
    broadcast_strides(cd, rc, 2, st);
    p.c_stride_m = st[0];
    p.c_stride_n = st[1];
  }
  kernels::ref::gemm_f32(p, ctx.data<float>(inputs[0]), ctx.data<float>(inputs[1]), c,
                         ctx.data<float>(outputs[0]));
}

void MatMulStep::run(const RunContext& ctx) const {
  kernels::Dims a = ctx.dims(inputs[0]), b = ctx.dims(inputs[1]);
  int ra = ctx.shape(inputs[0]).rank, rb = ctx.shape(inputs[1]).rank;
  // numpy: a 1-D A is [1, K], a 1-D B is [K, 1].
  if (ra == 1) {
    a[1] = a[0];
    a[0] = 1;
    ra = 2;
  }
  if (rb == 1) {
    b[1] = 1;
    rb = 2;
  }
  kernels::MatMulParams p;
  p.m = a[ra - 2];
  p.k = a[ra - 1];
  p.n = b[rb - 1];
  p.batch_rank = std::max(ra, rb) - 2;
  kernels::Dims ab{}, bb{};
  for (int d = 0; d < ra - 2; ++d) ab[d] = a[d];
  for (int d = 0; d < rb - 2; ++d) bb[d] = b[d];
  for (int d = 0; d < p.batch_rank; ++d) {
    const int da = d - (p.batch_rank - (ra - 2)), db = d - (p.batch_rank - (rb - 2));
    p.batch_shape[d] = std::max(da >= 0 ? ab[da] : 1, db >= 0 ? bb[db] : 1);
  }
  broadcast_strides(ab, ra - 2, p.batch_rank, p.a_batch_stride);
  broadcast_strides(bb, rb - 2, p.batch_rank, p.b_batch_stride);
  for (int d = 0; d < p.batch_rank; ++d) {
    p.a_batch_stride[d] *= p.m * p.k;
    p.b_batch_stride[d] *= p.k * p.n;
  }
  const float* ad = ctx.data<float>(inputs[0]);
  const float* bd = ctx.data<float>(inputs[1]);
  float* yd = ctx.data<float>(outputs[0]);
  fast ? kernels::matmul_f32(p, ad, bd, yd) : kernels::ref::matmul_f32(p, ad, bd, yd);
}

// ---- convolution and batch norm -------------------------------------------------------------

void ConvPackedStep::run(const RunContext& ctx) const {
  const kernels::Conv2dParams p =
      conv_params(attrs, ctx.dims(inputs[0]), ctx.dims(outputs[0]), ctx.shape(inputs[0]).rank);
  if (winograd) {
    kernels::conv2d_winograd_f32(p, ctx.data<float>(inputs[0]), packed, ctx.data<float>(outputs[0]),
                                 epilogue.make(ctx));
    // The Winograd kernel has no SiLU store: the same function in place afterwards.
    if (epilogue.silu) kernels::silu_f32(ctx.data<float>(outputs[0]), ctx.numel(outputs[0]));
    return;
  }
  kernels::conv2d_f32_packed(p, ctx.data<float>(inputs[0]), packed, ctx.data<float>(outputs[0]),
                             epilogue.make(ctx));
}

void ConvPackedStep::choose_winograd(const SymShape& x, const SymShape& y, int64_t max_batch,
                                     ConvAlgorithm algorithm) {
  winograd = false;
  if (x.rank != 4 || algorithm == ConvAlgorithm::kDirect) return;
  // winograd_applies at max_batch implies it at every smaller batch (only the padded input's
  // int32 offsets depend on the batch).
  const kernels::Conv2dParams most = conv_params(attrs, x.at(max_batch), y.at(max_batch), 4);
  if (!kernels::winograd_applies(most) || packed.mr > 8) return;
  winograd = algorithm == ConvAlgorithm::kWinograd || kernels::winograd_preferred(most);
}

std::string ConvPackedStep::describe() const {
  const std::string crop =
      cropped_from[0] == 0
          ? std::string()
          : fmt::format(" kernel {}x{} of {}x{} (taps on the padding only cut off)",
                        attrs.kernel[0], attrs.kernel[1], cropped_from[0], cropped_from[1]);
  return fmt::format("conv2d_f32 packed {}{}{}{}", kernels::isa_name(packed.isa), crop,
                     winograd ? " winograd F(4x4,3x3)" : "", fused_suffix(epilogue));
}

void ConvRefStep::run(const RunContext& ctx) const {
  const kernels::Conv2dParams p =
      conv_params(attrs, ctx.dims(inputs[0]), ctx.dims(outputs[0]), ctx.shape(inputs[0]).rank);
  kernels::ref::conv2d_f32(p, ctx.data<float>(inputs[0]), ctx.data<float>(inputs[1]),
                           inputs.size() > 2 ? ctx.data<float>(inputs[2]) : nullptr,
                           ctx.data<float>(outputs[0]));
}

void BatchNormFastStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  int64_t spatial = 1;
  for (int d = 2; d < rank; ++d) spatial *= x[d];
  kernels::channel_affine_f32(x[0], x[1], spatial, ctx.data<float>(inputs[0]), scale.data<float>(),
                              shift.data<float>(), ctx.data<float>(outputs[0]));
}

void BatchNormRefStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  kernels::BatchNormParams p{.batch = x[0], .channels = x[1], .spatial = 1, .epsilon = epsilon};
  for (int d = 2; d < rank; ++d) p.spatial *= x[d];
  kernels::ref::batch_norm_f32(p, ctx.data<float>(inputs[0]), ctx.data<float>(inputs[1]),
                               ctx.data<float>(inputs[2]), ctx.data<float>(inputs[3]),
                               ctx.data<float>(inputs[4]), ctx.data<float>(outputs[0]));
}

// ---- pooling ---------------------------------------------------------------------------------

void PoolStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]), y = ctx.dims(outputs[0]);
  kernels::Pool2dParams p;
  p.batch = x[0];
  p.channels = x[1];
  p.in_h = x[2];
  p.in_w = x[3];
  p.out_h = y[2];
  p.out_w = y[3];
  p.kernel_h = attrs.kernel[0];
  p.kernel_w = attrs.kernel[1];
  p.stride_h = attrs.strides[0];
  p.stride_w = attrs.strides[1];
  p.dilation_h = attrs.dilations[0];
  p.dilation_w = attrs.dilations[1];
  p.pad_top = attrs.pads[0];
  p.pad_left = attrs.pads[1];
  p.pad_bottom = attrs.pads[2];
  p.pad_right = attrs.pads[3];
  p.count_include_pad = attrs.count_include_pad;
  const float* xp = ctx.data<float>(inputs[0]);
  float* yp = ctx.data<float>(outputs[0]);
  if (max) {
    fast ? kernels::max_pool2d_f32(p, xp, yp) : kernels::ref::max_pool2d_f32(p, xp, yp);
  } else {
    fast ? kernels::avg_pool2d_f32(p, xp, yp) : kernels::ref::avg_pool2d_f32(p, xp, yp);
  }
}

std::string PoolStep::describe() const {
  return fmt::format("{}_pool2d_f32{}", max ? "max" : "avg", fast ? "" : " ref");
}

void GlobalAvgPoolStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  int64_t spatial = 1;
  for (int d = 2; d < rank; ++d) spatial *= x[d];
  kernels::global_avg_pool_f32(x[0] * x[1], spatial, ctx.data<float>(inputs[0]),
                               ctx.data<float>(outputs[0]));
}

// ---- elementwise -----------------------------------------------------------------------------

void BinaryStep::run(const RunContext& ctx) const {
  kernels::BinaryParams p;
  p.op = op;
  p.rank = ctx.shape(outputs[0]).rank;
  p.shape = ctx.dims(outputs[0]);
  broadcast_strides(ctx.dims(inputs[0]), ctx.shape(inputs[0]).rank, p.rank, p.a_stride);
  broadcast_strides(ctx.dims(inputs[1]), ctx.shape(inputs[1]).rank, p.rank, p.b_stride);
  const float* a = ctx.data<float>(inputs[0]);
  const float* b = ctx.data<float>(inputs[1]);
  float* y = ctx.data<float>(outputs[0]);
  if (fast) {
    relu ? kernels::binary_relu_f32(p, a, b, y) : kernels::binary_f32(p, a, b, y);
    return;
  }
  kernels::ref::binary_f32(p, a, b, y);
  if (relu) {
    kernels::UnaryParams r;
    r.op = kernels::UnaryOp::kRelu;
    kernels::ref::unary_f32(r, y, y, ctx.numel(outputs[0]));
  }
}

std::string BinaryStep::describe() const {
  static const char* names[] = {"add", "sub", "mul", "div", "pow"};
  return fmt::format("{}_f32{}{}", names[static_cast<int>(op)], relu ? " +relu" : "",
                     fast ? "" : " ref");
}

void UnaryStep::run(const RunContext& ctx) const {
  const float* x = ctx.data<float>(inputs[0]);
  float* y = ctx.data<float>(outputs[0]);
  const int64_t n = ctx.numel(outputs[0]);
  fast ? kernels::unary_f32(params, x, y, n) : kernels::ref::unary_f32(params, x, y, n);
}

std::string UnaryStep::describe() const {
  static const char* names[] = {"relu", "leaky_relu", "clip", "sigmoid", "tanh", "copy",
                                "erf",  "sqrt",       "exp",  "neg",     "gelu", "gelu_tanh"};
  return fmt::format("{}_f32{}", names[static_cast<int>(params.op)], fast ? "" : " ref");
}

void SoftmaxStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  const int64_t ax = axis < 0 ? axis + rank : axis;
  kernels::SoftmaxParams p{.outer = 1, .axis = x[ax], .inner = 1};
  for (int d = 0; d < ax; ++d) p.outer *= x[d];
  for (int d = static_cast<int>(ax) + 1; d < rank; ++d) p.inner *= x[d];
  const float* x_data = ctx.data<float>(inputs[0]);
  float* y_data = ctx.data<float>(outputs[0]);
  if (log) {
    kernels::ref::log_softmax_f32(p, x_data, y_data);
  } else if (fast) {
    kernels::softmax_f32(p, x_data, y_data);
  } else {
    kernels::ref::softmax_f32(p, x_data, y_data);
  }
}

std::string SoftmaxStep::describe() const {
  if (log) return "log_softmax_f32 ref";
  return fast ? "softmax_f32" : "softmax_f32 ref";
}

void ReduceStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  kernels::ReduceParams p{.op = op, .outer = 1, .axis = 1, .inner = 1};
  for (int d = 0; d < rank; ++d) (d < begin ? p.outer : d < end ? p.axis : p.inner) *= x[d];
  const float* xd = ctx.data<float>(inputs[0]);
  float* yd = ctx.data<float>(outputs[0]);
  fast ? kernels::reduce_f32(p, xd, yd) : kernels::ref::reduce_f32(p, xd, yd);
}

std::string ReduceStep::describe() const {
  static const char* names[] = {"reduce_mean", "reduce_sum", "reduce_max"};
  return fmt::format("{}_f32{}", names[static_cast<int>(op)], fast ? "" : " ref");
}

void LayerNormStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  kernels::LayerNormParams p{.rows = 1, .n = 1, .epsilon = epsilon};
  for (int d = 0; d < rank; ++d) (d < rank - norm_rank ? p.rows : p.n) *= x[d];
  const float* b = bias.empty() ? nullptr : bias.data<float>();
  const float* xd = ctx.data<float>(inputs[0]);
  float* yd = ctx.data<float>(outputs[0]);
  fast ? kernels::layer_norm_f32(p, xd, scale.data<float>(), b, yd)
       : kernels::ref::layer_norm_f32(p, xd, scale.data<float>(), b, yd);
}

void GatherStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x[d];
  for (int d = axis + 1; d < rank; ++d) inner *= x[d];
  const char* xd = static_cast<const char*>(ctx.slot_ptr(inputs[0]));
  char* yd = static_cast<char*>(ctx.slot_ptr(outputs[0]));
  const int64_t k = static_cast<int64_t>(indices.size());
  const size_t row = elem * static_cast<size_t>(inner);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < k; ++j) {
      int64_t i = indices[j];
      if (i < 0) i += x[axis];  // (a batch axis: -1 is the last sample of this run)
      std::memcpy(yd + (o * k + j) * row, xd + (o * x[axis] + i) * row, row);
    }
  }
}

void SliceStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const kernels::Dims y = ctx.dims(outputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  kernels::Dims stride{};
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    stride[d] = s;
    s *= x[d];
  }
  const char* xd = static_cast<const char*>(ctx.slot_ptr(inputs[0]));
  char* yd = static_cast<char*>(ctx.slot_ptr(outputs[0]));
  const int64_t total = ctx.numel(outputs[0]);
  if (total == 0) return;
  kernels::Dims first{};
  for (int d = 0; d < rank; ++d) {
    first[d] = start[d];
    if (batch_start[d] == kNotBatch) continue;
    const int64_t dim = x[d];
    int64_t v = batch_start[d];
    if (v < 0) v = v < -dim ? -1 : v + dim;  // ONNX: count from the end, then clamp
    first[d] = step[d] > 0 ? std::clamp<int64_t>(v, 0, dim) : std::clamp<int64_t>(v, -1, dim - 1);
  }
  const int last = rank - 1;
  const int64_t row = y[last];
  const auto e = static_cast<int64_t>(elem);
  kernels::Dims idx{};
  for (int64_t out = 0; out < total; out += row) {
    int64_t off = 0;
    for (int d = 0; d < last; ++d) off += (first[d] + idx[d] * step[d]) * stride[d];
    const char* src = xd + (off + first[last] * stride[last]) * e;
    if (elem == sizeof(float)) {
      const auto* fs = reinterpret_cast<const float*>(src);
      auto* fy = reinterpret_cast<float*>(yd) + out;
      for (int64_t j = 0; j < row; ++j) fy[j] = fs[j * step[last]];
    } else {
      for (int64_t j = 0; j < row; ++j)
        std::memcpy(yd + (out + j) * e, src + j * step[last] * e, elem);
    }
    for (int d = last - 1; d >= 0; --d) {  // next output row (odometer)
      if (++idx[d] < y[d]) break;
      idx[d] = 0;
    }
  }
}

void TransposeStep::run(const RunContext& ctx) const {
  kernels::TransposeParams p;
  p.rank = ctx.shape(inputs[0]).rank;
  p.in_shape = ctx.dims(inputs[0]);
  for (int d = 0; d < p.rank; ++d) p.perm[d] = perm[d];
  kernels::transpose_f32(p, ctx.data<float>(inputs[0]), ctx.data<float>(outputs[0]));
}

void ConcatStep::run(const RunContext& ctx) const {
  const kernels::Dims y = ctx.dims(outputs[0]);
  const int rank = ctx.shape(outputs[0]).rank;
  int64_t outer = 1, inner_tail = 1;
  for (int d = 0; d < axis; ++d) outer *= y[d];
  for (int d = static_cast<int>(axis) + 1; d < rank; ++d) inner_tail *= y[d];
  const int64_t inner_out = y[axis] * inner_tail;
  float* out = ctx.data<float>(outputs[0]);
  int64_t offset = 0;
  for (SlotId in : inputs) {
    const int64_t inner = ctx.dim(in, static_cast<int>(axis)) * inner_tail;
    const float* x = ctx.data<float>(in);
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(out + o * inner_out + offset, x + o * inner, sizeof(float) * inner);
    }
    offset += inner;
  }
}

}  // namespace qsearch::runtime
