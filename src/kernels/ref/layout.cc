#include "kernels/ref/layout.h"

namespace qsearch::kernels::ref {

void transpose_f32(const TransposeParams& p, const float* x, float* y) {
  Dims in_stride{};
  int64_t total = 1;
  for (int d = p.rank - 1; d >= 0; --d) {
    in_stride[d] = total;
    total *= p.in_shape[d];
  }
  for (int64_t flat = 0; flat < total; ++flat) {
    // flat indexes the output; output dim d has size in_shape[perm[d]].
    int64_t rem = flat, src = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t size = p.in_shape[p.perm[d]];
      src += (rem % size) * in_stride[p.perm[d]];
      rem /= size;
    }
    y[flat] = x[src];
  }
}

void concat_f32(int64_t outer, const float* const* inputs, const int64_t* inner, int n, float* y) {
  int64_t total_inner = 0;
  for (int i = 0; i < n; ++i) total_inner += inner[i];
  for (int64_t o = 0; o < outer; ++o) {
    int64_t offset = 0;
    for (int i = 0; i < n; ++i) {
      for (int64_t t = 0; t < inner[i]; ++t) {
        y[o * total_inner + offset + t] = inputs[i][o * inner[i] + t];
      }
      offset += inner[i];
    }
  }
}

}  // namespace qsearch::kernels::ref
