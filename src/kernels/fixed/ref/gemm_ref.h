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

// Writes the exact accumulator `acc` (binary point acc_frac) as output element `at` of kind
// p.output, the way every integer kernel's output stage must (shared by the ref kernels).
void store_exact(__int128_t acc, int acc_frac, const GemmParams& p, void* c, int64_t at);

// F = max(a_frac + b_frac, bias_frac) (the second only when there is a bias).
int acc_frac_of(int a_frac, int b_frac, bool has_bias, int bias_frac);

// acc * 2^s for 0 <= s < 64, in __int128 (aborts beyond; the kernels' contract excludes it).
__int128_t shift_left(__int128_t acc, int s);

// The exact accumulator acc[m, n] (binary point max(fa + fb, fc)) as __int128.
__int128_t exact_accumulator(const void* a, int64_t lda, const GemmWeights& w, int64_t m,
                             int64_t n);

}  // namespace qsearch::kernels::fixed::ref
