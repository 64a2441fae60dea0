// Fast elementwise float kernels: broadcast binary ops, activations, per-channel affine.
// Same contracts as their reference twins in kernels/ref/elementwise.h; large tensors are split
// over parallel_for (each element is computed by one thread, so results do not depend on the
// thread count).
//
//   kernels::binary_f32(p, a, b, y);                     // like ref::binary_f32
//   kernels::channel_affine_f32(n, c, hw, x, s, t, y);   // y = x * s[c] + t[c] (folded BN)
//
// Binary ops round once per element exactly like the reference (bit-identical results), except
// Pow (powf; x^2 is x * x, exact like the reference). relu, leaky_relu, clip, sqrt, neg are exact;
// sigmoid, tanh, erf, exp and the GELUs use the vectorised kernels/vec_math.h (its ulp bounds);
// the runtime's contract stays within 8 * FLT_EPSILON relative of the double-precision
// reference, the GELUs within 8 * FLT_EPSILON * (|x| + |ref|) (docs/numerics.md).
#pragma once

#include <cstdint>

#include "kernels/params.h"

namespace qsearch::kernels {

// ref::binary_f32 with broadcast dims coalesced and vectorised inner loops.
void binary_f32(const BinaryParams& p, const float* a, const float* b, float* y);

// binary_f32 then unary_f32's Relu of each result, in one pass: the same bits as the two
// kernels (an unquantized Add + Relu, the residual of a ResNet block in the int plan).
void binary_relu_f32(const BinaryParams& p, const float* a, const float* b, float* y);

// ref::unary_f32 in float; y may equal x.
void unary_f32(const UnaryParams& p, const float* x, float* y, int64_t n);

// Y[b, c, s] = fma(X[b, c, s], scale[c], shift[c]) over [batch, channels, spatial]: inference
// batch normalization with scale = gamma / sqrt(var + eps) and shift = beta - mean * scale
// precomputed. |Y - ref::batch_norm_f32| <= 2 * FLT_EPSILON * (|X * scale| + |shift|) when
// scale and shift are rounded from their exact values. y may equal x.
void channel_affine_f32(int64_t batch, int64_t channels, int64_t spatial, const float* x,
                        const float* scale, const float* shift, float* y);

// ref::transpose_f32 (bit-identical: a copy): dims that stay adjacent are merged, rows whose
// innermost dim is also the input's innermost are copied as runs, other rows gathered with one
// stride; output rows are split over parallel_for.
void transpose_f32(const TransposeParams& p, const float* x, float* y);

}  // namespace qsearch::kernels
