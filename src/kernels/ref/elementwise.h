// Reference (oracle) elementwise kernels: numpy-broadcast binary ops, unary activations and
// softmax / log-softmax (see BinaryParams, UnaryParams, SoftmaxParams in kernels/params.h).
//
//   kernels::BinaryParams p{.op = kernels::BinaryOp::kAdd, .rank = 2, .shape = {2, 3},
//                           .a_stride = {3, 1}, .b_stride = {0, 1}};   // [2,3] + [3]
//   kernels::ref::binary_f32(p, a, b, y);
//
// Binary and unary ops compute in float exactly as written (one rounding per op, as PyTorch);
// sigmoid, tanh, erf, exp, pow and both GELUs in double rounded once (sqrt and neg are exact
// roundings in float already); softmax and log-softmax sum in double.
#pragma once

#include <cstdint>

#include "kernels/params.h"

namespace qsearch::kernels::ref {

// Y = A op B with broadcasting; y is dense over p.shape and may alias a or b only when that
// operand is dense over p.shape too.
void binary_f32(const BinaryParams& p, const float* a, const float* b, float* y);

// Y[i] = f(X[i]) for i < n; y may equal x.
void unary_f32(const UnaryParams& p, const float* x, float* y, int64_t n);

// Softmax along the middle axis of [outer, axis, inner]; y must not alias x.
void softmax_f32(const SoftmaxParams& p, const float* x, float* y);

// LogSoftmax along the same axis, computed stably as x - max - log(sum(exp(x - max))) (sum in
// double), never as log(softmax(x)): a probability that underflows still gives a finite log.
// y must not alias x.
void log_softmax_f32(const SoftmaxParams& p, const float* x, float* y);

}  // namespace qsearch::kernels::ref
