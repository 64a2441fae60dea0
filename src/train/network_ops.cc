// Network::forward_step / backward_step: one node of the training forward and backward passes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/conv3d.h"
#include "kernels/elementwise.h"
#include "kernels/fixed/zero_insert.h"
#include "kernels/gemm.h"
#include "kernels/pool.h"
#include "kernels/ref/pool.h"
#include "runtime/conv3d_steps.h"
#include "train/grad_kernels.h"
#include "train/network_internal.h"
#include "train/packing.h"

namespace qsearch::train {

using ir::OpKind;
using ir::ValueId;

namespace {

// Output index -> operand index under BinaryParams strides, for reducing a broadcast gradient.
// Walks the output in order, so the reduction order is fixed.
void reduce_broadcast(const kernels::BinaryParams& p, const kernels::Dims& stride, const float* dy,
                      double* acc) {
  kernels::Dims idx{};
  int64_t total = 1;
  for (int d = 0; d < p.rank; ++d) total *= p.shape[d];
  int64_t off = 0;
  for (int64_t i = 0; i < total; ++i) {
    acc[off] += dy[i];
    for (int d = p.rank - 1; d >= 0; --d) {
      off += stride[d];
      if (++idx[d] < p.shape[d]) break;
      off -= stride[d] * p.shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void Network::forward_step(Step& s, const ForwardOptions& options) {
  const ir::Node& n = *s.node;
  const ValueId xv = n.inputs[0], yv = n.outputs[0];
  const Shape& xs = shapes_[xv];
  const Shape& ys = shapes_[yv];
  const float* x = act_[xv];
  float* y = act_[yv];
  auto constant = [&](size_t k) -> float* { return graph_.value(n.inputs[k]).data.data<float>(); };
  switch (n.kind) {
    case OpKind::kMatMul:
      if (s.act_matmul) {
        if (s.mm_batch != batch_) {
          s.mm = batched_matmul_shapes(xs, shapes_[n.inputs[1]]);
          s.mm_batch = batch_;
        }
        batched_matmul_forward(s.mm, x, act_[n.inputs[1]], y);
        break;
      }
      [[fallthrough]];
    case OpKind::kGemm: {
      const int64_t k = xs.back(), m = shape_numel(xs) / k, nn = ys.back();
      const bool trans = n.kind == OpKind::kGemm && s.trans_b;
      pack_b_into(constant(1), k, nn, trans, s.packed);
      kernels::Epilogue ep;
      ep.alpha = s.alpha;
      if (!s.bias_buf.empty()) {
        const float* c = constant(2);
        for (int64_t j = 0; j < nn; ++j) s.bias_buf[j] = s.beta * c[s.scalar_bias ? 0 : j];
        ep.bias = s.bias_buf.data();
      }
      kernels::gemm_f32_packed(m, x, k, s.packed, y, nn, ep);
      break;
    }
    case OpKind::kConv: {
      const kernels::Conv2dParams p = conv_params(std::get<ir::ConvAttrs>(n.attrs), xs, ys);
      kernels::Epilogue ep;
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) ep.bias = constant(2);
      if (one_channel_conv_applies(p)) {  // depthwise: the grid kernel, no packing
        one_channel_conv_forward(p, x, constant(1), ep.bias, y);
        break;
      }
      if (pointwise_conv_applies(p)) {  // 1x1: the weights times each image, in place
        pointwise_conv_forward(p, x, constant(1), ep.bias, y);
        break;
      }
      const kernels::PackedConvWeights w = kernels::pack_conv_weights(
          constant(1), p.out_channels, p.in_channels / p.groups, p.kernel_h, p.kernel_w, p.groups);
      kernels::conv2d_f32_packed(p, x, w, y, ep);
      break;
    }
    case OpKind::kConvTranspose: {
      // The zero insertion of x, then the stride-1 conv by the flipped, channel-transposed weight
      // (as the float engine runs it, runtime/cnn_steps.h); both kept for the backward pass.
      kernels::fixed::ZeroInsertParams zp = s.ct.zeros;
      zp.planes = xs[0] * xs[1];
      kernels::fixed::zero_insert(zp, 4, x, s.ct_zeros.data());
      const int64_t group = std::get<ir::ConvTransposeAttrs>(n.attrs).group;
      s.ct_weight = runtime::transform_conv_transpose_weight(graph_.value(n.inputs[1]).data, group);
      const kernels::Conv2dParams p =
          conv_params(s.ct.conv, {xs[0], xs[1], zp.out_h(), zp.out_w()}, ys);
      const kernels::PackedConvWeights w =
          kernels::pack_conv_weights(s.ct_weight.data<float>(), p.out_channels,
                                     p.in_channels / p.groups, p.kernel_h, p.kernel_w, p.groups);
      kernels::Epilogue ep;
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) ep.bias = constant(2);
      kernels::conv2d_f32_packed(p, s.ct_zeros.data(), w, y, ep);
      break;
    }
    case OpKind::kIm2Col3d:
      kernels::im2col3d(runtime::im2col3d_params(std::get<ir::Im2Col3dAttrs>(n.attrs), xs), 4, x,
                        y);
      break;
    case OpKind::kBatchNorm: {
      const auto& a = std::get<ir::BatchNormAttrs>(n.attrs);
      const kernels::BatchNormParams p = bn_params(a, xs);
      if (options.training) {
        // ONNX momentum is PyTorch's 1 - m.
        const double m = 1.0 - static_cast<double>(a.momentum);
        if (s.relu_out >= 0) {
          batch_norm_relu_train_forward(p, m, x, constant(1), constant(2), y, act_[s.relu_out],
                                        constant(3), constant(4), s.save_mean.data(),
                                        s.save_invstd.data());
        } else {
          batch_norm_train_forward(p, m, x, constant(1), constant(2), y, constant(3), constant(4),
                                   s.save_mean.data(), s.save_invstd.data());
        }
      } else {
        const float *scale = constant(1), *bias = constant(2), *mean = constant(3),
                    *var = constant(4);
        for (int64_t c = 0; c < p.channels; ++c) {
          const double a = scale[c] / std::sqrt(static_cast<double>(var[c]) + p.epsilon);
          s.save_mean[c] = static_cast<float>(a);  // reused as scratch: inference keeps nothing
          s.save_invstd[c] = static_cast<float>(bias[c] - mean[c] * a);
        }
        kernels::channel_affine_f32(p.batch, p.channels, p.spatial, x, s.save_mean.data(),
                                    s.save_invstd.data(), y);
      }
      break;
    }
    case OpKind::kRelu:
      if (s.relu_fused && options.training) break;  // written by the BatchNorm before it
      relu_forward(x, y, shape_numel(ys));
      break;
    case OpKind::kMaxPool:
    case OpKind::kAveragePool: {
      const kernels::Pool2dParams p = pool_params(std::get<ir::PoolAttrs>(n.attrs), xs, ys);
      if (n.kind == OpKind::kMaxPool) {
        kernels::max_pool2d_f32(p, x, y);
      } else {
        kernels::avg_pool2d_f32(p, x, y);
      }
      break;
    }
    case OpKind::kGlobalAveragePool: {
      const int64_t rows = xs[0] * xs[1], spatial = shape_numel(xs) / rows;
      parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
        kernels::ref::global_avg_pool_f32(r1 - r0, spatial, x + r0 * spatial, y + r0);
      });
      break;
    }
    case OpKind::kAdd: {
      const ValueId bv = n.inputs[1];
      const Shape& bs = shapes_[bv];
      const float* b = graph_.value(bv).is_constant() ? constant(1) : act_[bv];
      if (graph_.value(xv).is_constant()) x = constant(0);
      if (xs == bs) {
        const int64_t total = shape_numel(ys);
        parallel_for(0, total, 1 << 14, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) y[i] = x[i] + b[i];
        });
      } else {
        kernels::binary_f32(broadcast_params(xs, bs, ys), x, b, y);
      }
      break;
    }
    case OpKind::kTranspose:
      permute(x, xs, s.perm, y);
      break;
    case OpKind::kSoftmax:
      softmax_forward(x, shape_numel(xs) / xs.back(), xs.back(), y);
      break;
    case OpKind::kLayerNorm: {
      const float eps = std::get<ir::LayerNormAttrs>(n.attrs).epsilon;
      const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
      layer_norm_forward(x, shape_numel(xs) / s.ln_n, s.ln_n, eps, constant(1),
                         has_bias ? constant(2) : nullptr, y, s.ln_mean.data(), s.ln_invstd.data());
      break;
    }
    case OpKind::kGelu:
      gelu_forward(x, y, shape_numel(xs));
      break;
    case OpKind::kMul:
    case OpKind::kDiv: {
      const int64_t total = shape_numel(ys);
      if (s.divide) {
        const float d = s.scalar;
        parallel_for(0, total, 1 << 14, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) y[i] = x[i] / d;
        });
      } else {
        scale_values(x, s.scalar, y, total);
      }
      break;
    }
    case OpKind::kReduceMean: {
      const ir::ReduceRange r =
          ir::reduce_range(n, std::get<ir::ReduceAttrs>(n.attrs), static_cast<int>(xs.size()));
      int64_t outer = 1, red = 1, inner = 1;
      for (int d = 0; d < static_cast<int>(xs.size()); ++d) {
        (d < r.begin ? outer : d < r.end ? red : inner) *= xs[d];
      }
      reduce_mean_forward(x, outer, red, inner, y);
      break;
    }
    case OpKind::kFlatten:
    case OpKind::kReshape:
    case OpKind::kIdentity:
      break;  // aliases
    case OpKind::kDropout: {
      const int64_t total = shape_numel(ys);
      if (options.training) {
        Rng rng = Rng(options.dropout_seed).fork(static_cast<uint64_t>(s.index));
        dropout_mask(rng, std::get<ir::DropoutAttrs>(n.attrs).ratio, s.mask.data(), total);
        dropout_apply(x, s.mask.data(), s.keep_scale, y, total);
      } else {
        std::memcpy(y, x, total * sizeof(float));
      }
      break;
    }
    default:
      QSEARCH_CHECK(false);  // rejected by the constructor
  }
}

void Network::backward_step(Step& s) {
  const ir::Node& n = *s.node;
  const ValueId xv = n.inputs[0], yv = n.outputs[0];
  const Shape& xs = shapes_[xv];
  const Shape& ys = shapes_[yv];
  const float* x = act_[xv];
  const float* y = act_[yv];
  const float* dy = grad_[yv];
  auto constant = [&](size_t k) -> float* { return graph_.value(n.inputs[k]).data.data<float>(); };
  auto needs = [&](size_t k) {
    return k < n.inputs.size() && n.inputs[k] >= 0 && requires_grad_[n.inputs[k]];
  };
  // Runs fn(ptr) to produce input k's gradient contribution, then accounts for it.
  auto produce = [&](size_t k, int64_t numel, auto&& fn) {
    bool acc;
    float* g = grad_begin(n.inputs[k], numel, &acc);
    fn(g);
    grad_end(n.inputs[k], numel, g, acc);
  };
  switch (n.kind) {
    case OpKind::kMatMul:
      if (s.act_matmul) {
        const float* b = act_[n.inputs[1]];
        if (needs(0)) {
          produce(0, shape_numel(xs),
                  [&](float* g) { batched_matmul_backward(s.mm, x, b, dy, g, nullptr); });
        }
        if (needs(1)) {
          produce(1, shape_numel(shapes_[n.inputs[1]]),
                  [&](float* g) { batched_matmul_backward(s.mm, x, b, dy, nullptr, g); });
        }
        break;
      }
      [[fallthrough]];
    case OpKind::kGemm: {
      const int64_t k = xs.back(), m = shape_numel(xs) / k, nn = ys.back();
      const bool trans = n.kind == OpKind::kGemm && s.trans_b;
      const float* w = constant(1);
      kernels::Epilogue ep;
      ep.alpha = s.alpha;
      if (needs(0)) {
        // dX [M, K] = alpha dY [M, N] op(W)^T; op(W)^T is W itself when W is stored [N, K].
        pack_b_into(w, nn, k, /*trans=*/!trans, s.packed);
        produce(0, m * k,
                [&](float* g) { kernels::gemm_f32_packed(m, dy, nn, s.packed, g, k, ep); });
      }
      if (needs(1)) {
        float* t = s.tmp.data<float>();
        if (trans) {
          // dW [N, K] = alpha dY^T [N, M] X [M, K].
          transpose(dy, m, nn, t);
          pack_b_into(x, m, k, false, s.packed);
          produce(1, nn * k,
                  [&](float* g) { kernels::gemm_f32_packed(nn, t, m, s.packed, g, k, ep); });
        } else {
          // dW [K, N] = alpha X^T [K, M] dY [M, N].
          transpose(x, m, k, t);
          pack_b_into(dy, m, nn, false, s.packed);
          produce(1, k * nn,
                  [&](float* g) { kernels::gemm_f32_packed(k, t, m, s.packed, g, nn, ep); });
        }
      }
      if (needs(2)) {
        const int64_t csize = graph_.value(n.inputs[2]).data.numel();
        produce(2, csize, [&](float* g) {
          column_sums(dy, m, nn, s.bias_buf.data(), false);
          if (s.scalar_bias) {
            double total = 0;
            for (int64_t j = 0; j < nn; ++j) total += s.bias_buf[j];
            g[0] = static_cast<float>(s.beta * total);
          } else {
            for (int64_t j = 0; j < nn; ++j) g[j] = s.beta * s.bias_buf[j];
          }
        });
      }
      break;
    }
    case OpKind::kConv: {
      const kernels::Conv2dParams p = conv_params(std::get<ir::ConvAttrs>(n.attrs), xs, ys);
      const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
      const int64_t wsize = graph_.value(n.inputs[1]).data.numel();
      // Each gradient goes to its buffer, or to a temporary when it must be added to earlier
      // contributions (the network's scratch holds at most one of them at a time).
      bool acc_x = false, acc_w = false, acc_b = false;
      float* dx = needs(0) ? grad_begin(xv, shape_numel(xs), &acc_x) : nullptr;
      std::vector<float> w_tmp, b_tmp;
      float* dw = grad_begin(n.inputs[1], wsize, &acc_w);
      if (acc_w && acc_x) {
        w_tmp.resize(wsize);
        dw = w_tmp.data();
      }
      float* db = nullptr;
      if (has_bias) {
        const ValueId r = grad_root_[n.inputs[2]];
        acc_b = grad_written_[r];
        if (acc_b) {
          b_tmp.resize(p.out_channels);
          db = b_tmp.data();
        } else {
          db = grad_[r];
        }
      }
      conv2d_backward(p, x, constant(1), dy, dx, dw, db);
      if (dx != nullptr) grad_end(xv, shape_numel(xs), dx, acc_x);
      grad_end(n.inputs[1], wsize, dw, acc_w);
      if (has_bias) grad_end(n.inputs[2], p.out_channels, db, acc_b);
      break;
    }
    case OpKind::kBatchNorm: {
      const kernels::BatchNormParams p = bn_params(std::get<ir::BatchNormAttrs>(n.attrs), xs);
      std::vector<float> dscale(p.channels), dbias(p.channels);
      auto run = [&](float* dx) {
        if (s.relu_out >= 0) {
          // dy is this step's output gradient, which the fused ReLU step left to be written here.
          batch_norm_relu_backward(p, x, act_[s.relu_out], grad_[s.relu_out], grad_[yv],
                                   constant(1), s.save_mean.data(), s.save_invstd.data(), dx,
                                   dscale.data(), dbias.data());
        } else {
          batch_norm_backward(p, x, dy, constant(1), s.save_mean.data(), s.save_invstd.data(), dx,
                              dscale.data(), dbias.data());
        }
      };
      if (needs(0)) {
        produce(0, shape_numel(xs), run);
      } else {
        run(nullptr);
      }
      if (needs(1)) {
        produce(1, p.channels, [&](float* g) { std::copy(dscale.begin(), dscale.end(), g); });
      }
      if (needs(2)) {
        produce(2, p.channels, [&](float* g) { std::copy(dbias.begin(), dbias.end(), g); });
      }
      break;
    }
    case OpKind::kRelu:
      if (s.relu_fused) {
        // The BatchNorm step before it computes this gradient in its own pass: only account for
        // it here (the BatchNorm output has no other reader, so nothing else accumulates into it).
        if (needs(0)) {
          bool acc;
          float* g = grad_begin(xv, shape_numel(xs), &acc);
          QSEARCH_CHECK(!acc);
          grad_end(xv, shape_numel(xs), g, acc);
        }
        break;
      }
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) { relu_backward(y, dy, g, shape_numel(xs)); });
      }
      break;
    case OpKind::kConvTranspose: {
      // The conv's gradients (its input: the zero-inserted x; its weight: the transformed one),
      // then the adjoints of the zero insertion (pick the inserted positions) and of the weight
      // transform (a permutation).
      kernels::fixed::ZeroInsertParams zp = s.ct.zeros;
      zp.planes = xs[0] * xs[1];
      const kernels::Conv2dParams p =
          conv_params(s.ct.conv, {xs[0], xs[1], zp.out_h(), zp.out_w()}, ys);
      const Shape& wshape = graph_.value(n.inputs[1]).shape;  // [C, M/g, kH, kW]
      const int64_t wsize = shape_numel(wshape);
      std::vector<float> du(needs(0) ? zp.planes * zp.out_h() * zp.out_w() : 0), dwt(wsize),
          db(p.out_channels);
      conv2d_backward(p, s.ct_zeros.data(), s.ct_weight.data<float>(), dy,
                      du.empty() ? nullptr : du.data(), dwt.data(), db.data());
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) {
          for (int64_t pl = 0; pl < zp.planes; ++pl) {
            for (int64_t i = 0; i < zp.in_h; ++i) {
              const float* row = du.data() +
                                 (pl * zp.out_h() + zp.begin_h + i * zp.stride_h) * zp.out_w() +
                                 zp.begin_w;
              float* out = g + (pl * zp.in_h + i) * zp.in_w;
              for (int64_t j = 0; j < zp.in_w; ++j) out[j] = row[j * zp.stride_w];
            }
          }
        });
      }
      if (needs(1)) {
        produce(1, wsize, [&](float* g) {
          // transform_conv_transpose_weight's permutation, backwards.
          const int64_t c = wshape[0], mg = wshape[1], kh = wshape[2], kw = wshape[3];
          const int64_t group = p.groups, cg = c / group;
          for (int64_t gi = 0; gi < group; ++gi) {
            for (int64_t o = 0; o < mg; ++o) {
              for (int64_t ci = 0; ci < cg; ++ci) {
                for (int64_t u = 0; u < kh; ++u) {
                  for (int64_t v = 0; v < kw; ++v) {
                    g[(((gi * cg + ci) * mg + o) * kh + (kh - 1 - u)) * kw + (kw - 1 - v)] =
                        dwt[(((gi * mg + o) * cg + ci) * kh + u) * kw + v];
                  }
                }
              }
            }
          }
        });
      }
      if (needs(2)) {
        produce(2, p.out_channels, [&](float* g) { std::copy(db.begin(), db.end(), g); });
      }
      break;
    }
    case OpKind::kIm2Col3d:
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) {
          kernels::im2col3d_backward(
              runtime::im2col3d_params(std::get<ir::Im2Col3dAttrs>(n.attrs), xs), dy, g);
        });
      }
      break;
    case OpKind::kMaxPool:
    case OpKind::kAveragePool:
      if (needs(0)) {
        const kernels::Pool2dParams p = pool_params(std::get<ir::PoolAttrs>(n.attrs), xs, ys);
        produce(0, shape_numel(xs), [&](float* g) {
          if (n.kind == OpKind::kMaxPool) {
            max_pool2d_backward(p, x, dy, g);
          } else {
            avg_pool2d_backward(p, dy, g);
          }
        });
      }
      break;
    case OpKind::kGlobalAveragePool:
      if (needs(0)) {
        const int64_t rows = xs[0] * xs[1], spatial = shape_numel(xs) / rows;
        produce(0, shape_numel(xs),
                [&](float* g) { global_avg_pool_backward(rows, spatial, dy, g); });
      }
      break;
    case OpKind::kAdd: {
      const kernels::BinaryParams p = broadcast_params(xs, shapes_[n.inputs[1]], ys);
      for (size_t k = 0; k < 2; ++k) {
        if (!needs(k)) continue;
        const Shape& ks = shapes_[n.inputs[k]];
        const int64_t numel = shape_numel(ks);
        // The operand's dims are the output's trailing dims (a bias [N] or a position embedding
        // [1, T, D] added to [B, T, D]): its gradient is the column sums of dy viewed as
        // [rows, numel], each column summed in double over the rows in order, which is the
        // order of reduce_broadcast below.
        size_t ones = 0;
        while (ones < ks.size() && ks[ones] == 1) ++ones;
        const size_t tail = ks.size() - ones;
        const bool trailing =
            tail <= ys.size() && std::equal(ks.begin() + ones, ks.end(), ys.end() - tail);
        if (ks == ys) {
          produce(k, numel, [&](float* g) { std::memcpy(g, dy, numel * sizeof(float)); });
        } else if (trailing) {
          produce(k, numel,
                  [&](float* g) { column_sums(dy, shape_numel(ys) / numel, numel, g, false); });
        } else {
          std::vector<double> acc(numel, 0.0);
          reduce_broadcast(p, k == 0 ? p.a_stride : p.b_stride, dy, acc.data());
          produce(k, numel, [&](float* g) {
            for (int64_t i = 0; i < numel; ++i) g[i] = static_cast<float>(acc[i]);
          });
        }
      }
      break;
    }
    case OpKind::kDropout:
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) {
          dropout_apply(dy, s.mask.data(), s.keep_scale, g, shape_numel(xs));
        });
      }
      break;
    case OpKind::kTranspose:
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) { permute(dy, ys, s.inv_perm, g); });
      }
      break;
    case OpKind::kSoftmax:
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) {
          softmax_backward(y, dy, shape_numel(xs) / xs.back(), xs.back(), g);
        });
      }
      break;
    case OpKind::kLayerNorm: {
      const int64_t rows = shape_numel(xs) / s.ln_n;
      const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
      std::vector<float> dscale(s.ln_n), dbias(s.ln_n);
      auto run = [&](float* dx) {
        layer_norm_backward(x, dy, rows, s.ln_n, constant(1), s.ln_mean.data(), s.ln_invstd.data(),
                            dx, dscale.data(), dbias.data());
      };
      if (needs(0)) {
        produce(0, shape_numel(xs), run);
      } else {
        run(nullptr);
      }
      if (needs(1)) {
        produce(1, s.ln_n, [&](float* g) { std::copy(dscale.begin(), dscale.end(), g); });
      }
      if (has_bias && needs(2)) {
        produce(2, s.ln_n, [&](float* g) { std::copy(dbias.begin(), dbias.end(), g); });
      }
      break;
    }
    case OpKind::kGelu:
      if (needs(0)) {
        produce(0, shape_numel(xs), [&](float* g) { gelu_backward(x, dy, g, shape_numel(xs)); });
      }
      break;
    case OpKind::kMul:
    case OpKind::kDiv:
      if (needs(0)) {
        const int64_t total = shape_numel(xs);
        produce(0, total, [&](float* g) {
          if (s.divide) {
            const float d = s.scalar;
            parallel_for(0, total, 1 << 14, [&](int64_t i0, int64_t i1) {
              for (int64_t i = i0; i < i1; ++i) g[i] = dy[i] / d;
            });
          } else {
            scale_values(dy, s.scalar, g, total);
          }
        });
      }
      break;
    case OpKind::kReduceMean:
      if (needs(0)) {
        const ir::ReduceRange r =
            ir::reduce_range(n, std::get<ir::ReduceAttrs>(n.attrs), static_cast<int>(xs.size()));
        int64_t outer = 1, red = 1, inner = 1;
        for (int d = 0; d < static_cast<int>(xs.size()); ++d) {
          (d < r.begin ? outer : d < r.end ? red : inner) *= xs[d];
        }
        produce(0, shape_numel(xs),
                [&](float* g) { reduce_mean_backward(dy, outer, red, inner, g); });
      }
      break;
    default:
      QSEARCH_CHECK(false);
  }
}

}  // namespace qsearch::train
