// Reference (oracle) data-movement kernels: transpose and concat. Exact (copies only).
//
//   kernels::TransposeParams p{.rank = 2, .in_shape = {2, 3}, .perm = {1, 0}};
//   kernels::ref::transpose_f32(p, x /*[2,3]*/, y /*[3,2]*/);
//
//   // Concat along axis 1 of [2, 3] and [2, 1]: outer = 2, inner sizes 3 and 1.
//   const float* in[] = {a, b};
//   int64_t inner[] = {3, 1};
//   kernels::ref::concat_f32(2, in, inner, 2, y /*[2,4]*/);
#pragma once

#include <cstdint>

#include "kernels/params.h"

namespace qsearch::kernels::ref {

// Permutes the dims of x (see TransposeParams). y must not alias x.
void transpose_f32(const TransposeParams& p, const float* x, float* y);

// Concat of n tensors viewed as [outer, inner_i] along their second dim:
//   Y[o, offset_i + t] = X_i[o, t], offset_i = sum_{j<i} inner_j.
// inner_i is the product of the input's dims from the concat axis on.
void concat_f32(int64_t outer, const float* const* inputs, const int64_t* inner, int n, float* y);

}  // namespace qsearch::kernels::ref
