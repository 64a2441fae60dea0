// Reference integer GEMM: the oracle the fast kernels of kernels/fixed/gemm.h must equal exactly.
// Obvious loops over the unpacked weights of a GemmWeights spec, exact __int128 sums, then the
// output stage written straight from the math in gemm.h (the quant/ scalar functions for
// requantization, a long-double route for the float output). Slow by design.
#pragma once

#include <cstdint>

#include "kernels/fixed/gemm.h"

namespace qsearch::kernels::fixed::ref {

// Same contract as fixed::gemm() but reads the weights from `w` directly (no packing).
// QSEARCH_CHECKs that every accumulator fits p.acc (kAccumulator) or int64 (other outputs).
void gemm(const void* a, int64_t m, int64_t lda, const GemmWeights& w, const GemmParams& p,
          void* c);

// The exact accumulator acc[m, n] (binary point max(fa + fb, fc)) as __int128.
__int128_t exact_accumulator(const void* a, int64_t lda, const GemmWeights& w, int64_t m,
                             int64_t n);

}  // namespace qsearch::kernels::fixed::ref
