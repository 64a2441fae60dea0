#include "kernels/fixed/ref/zero_insert_ref.h"

#include <cstring>

namespace qsearch::kernels::fixed::ref {

void zero_insert(const ZeroInsertParams& p, int elem_size, const void* x, void* y) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  const auto* xb = static_cast<const unsigned char*>(x);
  auto* yb = static_cast<unsigned char*>(y);
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        unsigned char* out = yb + ((pl * oh + oy) * ow + ox) * elem_size;
        const int64_t dy = oy - p.begin_h, dx = ox - p.begin_w;
        const bool hit = dy >= 0 && dx >= 0 && dy % p.stride_h == 0 && dx % p.stride_w == 0 &&
                         dy / p.stride_h < p.in_h && dx / p.stride_w < p.in_w;
        if (!hit) {
          std::memset(out, 0, static_cast<size_t>(elem_size));
          continue;
        }
        const int64_t at = (pl * p.in_h + dy / p.stride_h) * p.in_w + dx / p.stride_w;
        std::memcpy(out, xb + at * elem_size, static_cast<size_t>(elem_size));
      }
    }
  }
}

}  // namespace qsearch::kernels::fixed::ref
