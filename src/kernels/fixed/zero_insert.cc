#include "kernels/fixed/zero_insert.h"

#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"

namespace qsearch::kernels::fixed {

void zero_insert(const ZeroInsertParams& p, int elem_size, const void* x, void* y) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  const auto* xb = static_cast<const unsigned char*>(x);
  auto* yb = static_cast<unsigned char*>(y);
  parallel_for(0, p.planes * oh, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, ow * elem_size)),
               [&](int64_t b, int64_t e) {
                 for (int64_t r = b; r < e; ++r) {
                   unsigned char* yr = yb + r * ow * elem_size;
                   std::memset(yr, 0, static_cast<size_t>(ow * elem_size));
                   const int64_t pl = r / oh, oy = r % oh - p.begin_h;
                   if (oy < 0 || oy % p.stride_h != 0 || oy / p.stride_h >= p.in_h) continue;
                   const unsigned char* xr =
                       xb + ((pl * p.in_h + oy / p.stride_h) * p.in_w) * elem_size;
                   for (int64_t j = 0; j < p.in_w; ++j) {
                     std::memcpy(yr + (p.begin_w + j * p.stride_w) * elem_size, xr + j * elem_size,
                                 static_cast<size_t>(elem_size));
                   }
                 }
               });
}

}  // namespace qsearch::kernels::fixed
