#include <cstring>

#include "kernels/fixed/gemm_tiles.h"

namespace qsearch::kernels::fixed::detail {

template <typename BT>
void pairs_s64_scalar(const void* a_, int64_t as, const void* b_, int64_t groups, int64_t* out) {
  const int16_t* a = static_cast<const int16_t*>(a_);
  const BT* b = static_cast<const BT*>(b_);
  for (int r = 0; r < kMrScalar; ++r) {
    int64_t acc[kNr] = {};
    const int16_t* ar = a + r * as;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t a0 = ar[2 * g], a1 = ar[2 * g + 1];
      const BT* bg = b + g * 2 * kNr;
      for (int j = 0; j < kNr; ++j) acc[j] += a0 * bg[2 * j] + a1 * bg[2 * j + 1];
    }
    std::memcpy(out + r * kNr, acc, sizeof(acc));
  }
}
template void pairs_s64_scalar<int8_t>(const void*, int64_t, const void*, int64_t, int64_t*);
template void pairs_s64_scalar<int16_t>(const void*, int64_t, const void*, int64_t, int64_t*);

void wide_s64_scalar(const void* a_, int64_t as, const void* b_, int64_t groups, int64_t* out) {
  const int32_t* a = static_cast<const int32_t*>(a_);
  const int32_t* b = static_cast<const int32_t*>(b_);
  for (int r = 0; r < kMrScalar; ++r) {
    // Products reach 2^62; the sum fits int64 by the caller's bound but partial sums may not, so
    // add modulo 2^64 (unsigned) to stay free of signed overflow.
    uint64_t acc[kNr] = {};
    const int32_t* ar = a + r * as;
    for (int64_t k = 0; k < groups; ++k) {
      const int64_t av = ar[k];
      const int32_t* bk = b + k * kNr;
      for (int j = 0; j < kNr; ++j) acc[j] += static_cast<uint64_t>(av * bk[j]);
    }
    for (int j = 0; j < kNr; ++j) out[r * kNr + j] = static_cast<int64_t>(acc[j]);
  }
}

}  // namespace qsearch::kernels::fixed::detail
