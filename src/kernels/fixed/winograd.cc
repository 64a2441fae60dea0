#include "kernels/fixed/winograd.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"
#include "kernels/fixed/scratch.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qsearch::kernels::fixed {

namespace {

constexpr int64_t kInt16Max = 32767;
constexpr int64_t kInt32Max = 2147483647;

// 2G of F(2x2, 3x3) (winograd.h): integer entries.
constexpr int kG2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};

// Multiplies with the 16-lane padding of each path, per output channel and input channel: the
// Winograd tiles (16 per tile) against the direct pixel-major path's stride-1 positions (9 per
// position, output rows at the padded width). Winograd pays a transform on top, hence the margin.
// And at least 32 input channels: the input transform and M's store and reload cost about 1 / C
// of the multiplies each (SqueezeNet's 16-channel expand convs gained nothing,
// bench/int_winograd_bench).
// Multiplies of both paths for `batch` images, with the 16-lane padding each has: Winograd's
// panels run over the tiles of the whole batch; the direct path takes the cheaper of its
// per-image extended panels and its panels gathered across images (tiny maps).
bool winograd_pays(const Conv2dGeometry& g, int64_t batch) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  const int64_t tiles = ((oh + 1) / 2) * ((ow + 1) / 2);
  const int64_t wp = g.in_w + g.pad_left + g.pad_right;
  const int64_t positions = (oh - 1) * wp + ow;
  auto up16 = [](int64_t n) { return (n + 15) / 16 * 16; };
  const int64_t wino = 16 * up16(batch * tiles);
  const int64_t direct = 9 * std::min(batch * up16(positions), up16(batch * oh * ow));
  return wino * 5 < direct * 4;
}

// The smallest batch (up to kMaxBatch) at which Winograd pays, or 0.
int64_t winograd_min_batch(const Conv2dGeometry& g) {
  constexpr int64_t kMaxBatch = 64;
  if (g.in_channels < 32) return 0;
  for (int64_t b = 1; b <= kMaxBatch; ++b) {
    if (winograd_pays(g, b)) return b;
  }
  return 0;
}

// F(4x4, 3x3)'s filter rows made integral: G' = diag(4, 6, 6, 24, 24, 1) G (winograd.h).
constexpr int kG4[6][3] = {{1, 0, 0}, {-1, -1, -1}, {-1, 1, -1}, {1, 2, 4}, {1, -2, 4}, {0, 0, 1}};

// Largest |direct sum S| at which F(4x4)'s output transform recovers S from 576 S modulo 2^32
// (winograd.h): 64 S must fit int32.
constexpr int64_t kMaxSumF4 = (int64_t{1} << 25) - 1;

// U[pos][o][c] = (G g G^T)[pos] of every filter g = W[o, c] for the P x 3 integer rows G (2G of
// F(2x2), P = 4; G' of F(4x4), P = 6); false when one leaves int16. Per output channel the taps
// are laid out channel-minor first (k[tap][c]) so that every loop over c vectorises; int32 holds
// every entry (|U| <= 49 * 2^15).
template <int P, typename W>
bool transform_filters(const W* wt, const Conv2dGeometry& g, const int (*gm)[3],
                       WinogradFilters* f) {
  const int64_t c_in = g.in_channels, oc = g.out_channels, cp = f->channels_padded;
  int16_t* u = f->u.data<int16_t>();
  std::fill(u, u + P * P * oc * cp, int16_t{0});
  std::vector<int32_t> k(static_cast<size_t>(9 * c_in)), t(static_cast<size_t>(P * 3 * c_in));
  int32_t lo = 0, hi = 0;
  for (int64_t o = 0; o < oc; ++o) {
    for (int64_t c = 0; c < c_in; ++c) {
      for (int q = 0; q < 9; ++q) k[q * c_in + c] = wt[(o * c_in + c) * 9 + q];
    }
    for (int i = 0; i < P; ++i) {  // t = G g: t[i][b][c]
      for (int b = 0; b < 3; ++b) {
        const int32_t g0 = gm[i][0], g1 = gm[i][1], g2 = gm[i][2];
        const int32_t *k0 = &k[b * c_in], *k1 = &k[(3 + b) * c_in], *k2 = &k[(6 + b) * c_in];
        int32_t* ti = &t[(i * 3 + b) * c_in];
        for (int64_t c = 0; c < c_in; ++c) ti[c] = g0 * k0[c] + g1 * k1[c] + g2 * k2[c];
      }
    }
    for (int i = 0; i < P; ++i) {
      const int32_t *t0 = &t[(i * 3) * c_in], *t1 = &t[(i * 3 + 1) * c_in];
      const int32_t* t2 = &t[(i * 3 + 2) * c_in];
      for (int j = 0; j < P; ++j) {
        const int32_t g0 = gm[j][0], g1 = gm[j][1], g2 = gm[j][2];
        int16_t* dst = u + ((i * P + j) * oc + o) * cp;
        for (int64_t c = 0; c < c_in; ++c) {
          const int32_t v = t0[c] * g0 + t1[c] * g1 + t2[c] * g2;
          lo = std::min(lo, v);
          hi = std::max(hi, v);
          dst[c] = static_cast<int16_t>(v);  // wraps only when the result is refused below
        }
      }
    }
  }
  return lo >= -kInt16Max - 1 && hi <= kInt16Max;
}

// The tile choice of winograd_tile = 0 at `batch` images: the multiplies of both tiles with the
// 16-lane padding of the tiles of the whole batch (36 per 4x4 tile against 16 per 2x2 tile),
// with a margin for F(4x4)'s costlier transforms. Outputs of 11x11 and more take F(4x4) at any
// batch (14x14: 16 tiles against 49); 7x7 and 8x8 (4 tiles, a quarter panel) from 3 images,
// 3x3 and 4x4 (one tile) at 16; 1x1, 2x2, 9x9 and 10x10 never (the panels' padding).
bool f4_pays(const Conv2dGeometry& g, int64_t batch) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  const int64_t t4 = ((oh + 3) / 4) * ((ow + 3) / 4), t2 = ((oh + 1) / 2) * ((ow + 1) / 2);
  auto up16 = [](int64_t n) { return (n + 15) / 16 * 16; };
  const int64_t b = std::max<int64_t>(batch, 1);
  return 36 * up16(b * t4) * 5 < 16 * up16(b * t2) * 4;
}

// F(4x4)'s filters take 36 int16 per (output, input channel) pair, twice the float32 weights
// (F(2x2)'s 16: 0.9x). Above this many bytes of them a conv takes F(2x2) (when it is exact), so
// that the wide layers' filters do not dominate the memory of an int plan (ResNet-18's 512-channel
// 3x3 convs: 18.9 MB each at F(4x4), 8.4 MB at F(2x2); docs/architecture.md "Memory").
constexpr int64_t kMaxF4FilterBytes = int64_t{16} << 20;

bool f4_fits(const Conv2dGeometry& g) {
  return 36 * 2 * g.out_channels * ((g.in_channels + 1) / 2 * 2) <= kMaxF4FilterBytes;
}

template <int P>
std::shared_ptr<WinogradFilters> make_filters(const Conv2dGeometry& g, const Conv2dWeights& w,
                                              const int (*gm)[3], int64_t min_batch, Isa isa) {
  auto f = std::make_shared<WinogradFilters>();
  f->isa = isa;
  f->tile = P - 2;
  f->min_batch = min_batch;
  f->channels_padded = (g.in_channels + 1) / 2 * 2;
  f->u = Tensor({P * P * g.out_channels * f->channels_padded}, DType::kInt16);
  const bool fits = w.w_dtype == DType::kInt8
                        ? transform_filters<P>(static_cast<const int8_t*>(w.w), g, gm, f.get())
                        : transform_filters<P>(static_cast<const int16_t*>(w.w), g, gm, f.get());
  return fits ? f : nullptr;
}

}  // namespace

std::shared_ptr<const WinogradFilters> pack_winograd(const Conv2dGeometry& g,
                                                     const Conv2dWeights& w,
                                                     const PackedWeights& group) {
#if !defined(__x86_64__)
  (void)g, (void)w, (void)group;
  return nullptr;
#else
  if (group.isa() < Isa::kAvx2 || g.groups != 1 || g.kernel_h != 3 || g.kernel_w != 3 ||
      g.stride_h != 1 || g.stride_w != 1 || g.dilation_h != 1 || g.dilation_w != 1) {
    return nullptr;
  }
  if ((w.w_dtype != DType::kInt8 && w.w_dtype != DType::kInt16) ||
      (w.a_dtype != DType::kInt8 && w.a_dtype != DType::kUInt8 && w.a_dtype != DType::kInt16)) {
    return nullptr;
  }
  int64_t min_batch = 1;
  if (w.winograd == Conv2dWeights::Winograd::kAuto) {
    min_batch = winograd_min_batch(g);
    if (min_batch == 0) return nullptr;
  }
  const int64_t max_x = w.a_format.max_abs_code();
  uint64_t max_col = 0;
  for (uint64_t s : group.abs_col_sum()) max_col = std::max(max_col, s);
  // F(4x4) where exact: V fits int16 (100 max|x|), |S| <= kMaxSumF4, U' fits int16 (checked).
  if (w.winograd_tile != 2 &&
      (w.winograd_tile == 4 || (f4_pays(g, w.winograd_batch) && f4_fits(g))) &&
      100 * max_x <= kInt16Max && max_col <= static_cast<uint64_t>(kMaxSumF4 / max_x)) {
    if (auto f = make_filters<6>(g, w, kG4, min_batch, group.isa())) return f;
  }
  // F(2x2): V fits int16.
  if (4 * max_x > kInt16Max) return nullptr;
  // 4 * S fits int32 (S the exact direct sum, bias and shift excluded).
  // (4 max|x| * max_col <= INT32_MAX  <=>  max_col <= floor(INT32_MAX / (4 max|x|)); max|x|
  // >= 1.)
  if (max_col > static_cast<uint64_t>(kInt32Max / (4 * max_x))) return nullptr;
  // U = (2G) g (2G)^T, each entry checked against int16.
  return make_filters<4>(g, w, kG2, min_batch, group.isa());
#endif
}

#if defined(__x86_64__)
// GCC 12 reports its own _mm512_undefined_* placeholders as (maybe-)uninitialized (as
// gemm_tiles_avx512.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// The Winograd-domain GEMM of one position in 512-bit registers (AVX-512BW: vpmaddwd + vpaddd;
// AVX-512 VNNI: vpdpwssd, the same sum modulo 2^32): out[r * os + l] = sum_k U[r][2k, 2k + 1] .
// V2[k][l] (both int16 halves of each int32 lane) for the rows r < R and the lanes l < 16 NZ, U
// rows `us` int16 apart, V2 rows `vs` int32 apart. R x NZ = 6 x 2 accumulators reach the
// multiplier's throughput on Zen 5 (about 2.8 times the AVX2 pair kernel's, in L1); GCC 12
// spills 6 x 4 (the tied accumulator operand) and runs it slower.
#define QSEARCH_WINO_GEMM_BODY(ACC)                                                     \
  __m512i acc[R][NZ];                                                                   \
  for (auto& row : acc) {                                                               \
    for (auto& a : row) a = _mm512_setzero_si512();                                     \
  }                                                                                     \
  for (int64_t kb = 0; kb < kn; kb += 16) {                                             \
    for (int r = 0; r < R; ++r)                                                         \
      _mm_prefetch(reinterpret_cast<const char*>(pf + r * us + 2 * kb), _MM_HINT_T0);   \
    const int64_t ke = std::min(kn, kb + 16);                                           \
    for (int64_t k = kb; k < ke; ++k) {                                                 \
      __m512i x[NZ];                                                                    \
      for (int z = 0; z < NZ; ++z) x[z] = _mm512_loadu_si512(v + k * vs + 16 * z);      \
      for (int r = 0; r < R; ++r) {                                                     \
        int32_t wp;                                                                     \
        std::memcpy(&wp, u + r * us + 2 * k, 4);                                        \
        const __m512i b = _mm512_set1_epi32(wp);                                        \
        for (int z = 0; z < NZ; ++z) acc[r][z] = ACC(acc[r][z], b, x[z]);               \
      }                                                                                 \
    }                                                                                   \
  }                                                                                     \
  for (int r = 0; r < R; ++r) {                                                         \
    for (int z = 0; z < NZ; ++z) _mm512_storeu_si512(out + r * os + 16 * z, acc[r][z]); \
  }

#define QSEARCH_WINO_GEMM_DISPATCH(NAME)                                        \
  switch (rows * 8 + nz) {                                                      \
    case 6 * 8 + 2:                                                             \
      return NAME<6, 2>(u, us, v, vs, kn, out, os, pf);                         \
    case 5 * 8 + 2:                                                             \
      return NAME<5, 2>(u, us, v, vs, kn, out, os, pf);                         \
    case 6 * 8 + 1:                                                             \
      return NAME<6, 1>(u, us, v, vs, kn, out, os, pf);                         \
    case 5 * 8 + 1:                                                             \
      return NAME<5, 1>(u, us, v, vs, kn, out, os, pf);                         \
    default:                                                                    \
      for (int r = 0; r < rows; ++r) {                                          \
        if (nz == 2) {                                                          \
          NAME<1, 2>(u + r * us, us, v, vs, kn, out + r * os, os, pf + r * us); \
        } else {                                                                \
          NAME<1, 1>(u + r * us, us, v, vs, kn, out + r * os, os, pf + r * us); \
        }                                                                       \
      }                                                                         \
  }

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
namespace {
inline __m512i madd_add(__m512i acc, __m512i a, __m512i b) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
template <int R, int NZ>
void wino_gemm_bw(const int16_t* u, int64_t us, const int32_t* v, int64_t vs, int64_t kn,
                  int32_t* out, int64_t os, const int16_t* pf) {
  QSEARCH_WINO_GEMM_BODY(madd_add)
}
// rows <= 6 output channels, nz <= 2 blocks of 16 lanes.
void wino_gemm_avx512bw(const int16_t* u, int64_t us, const int32_t* v, int64_t vs, int64_t kn,
                        int rows, int nz, int32_t* out, int64_t os, const int16_t* pf) {
  QSEARCH_WINO_GEMM_DISPATCH(wino_gemm_bw)
}

// F(4x4)'s input row split by column phase (Wino4Job::transform_all): out[ph * wq + m] = the
// padded row's column q = 4 m + ph (xp[q] = src[q - pl] for 0 <= q - pl < n, else 0), m < wq (a
// multiple of 16). Per 16 m the 64 columns are loaded masked (never touching src outside [0, n):
// masked-off lanes do not fault) and widened to int16 in registers, and two vpermt2w pick the
// four phases (no store and reload: a masked store forwards to no load).
template <typename T>
void split_phases_avx512(const T* src, int64_t n, int64_t pl, int64_t wq, int16_t* out) {
  alignas(64) int16_t i01[32], i23[32];
  for (int i = 0; i < 16; ++i) {
    i01[i] = static_cast<int16_t>(4 * i);
    i01[16 + i] = static_cast<int16_t>(4 * i + 1);
    i23[i] = static_cast<int16_t>(4 * i + 2);
    i23[16 + i] = static_cast<int16_t>(4 * i + 3);
  }
  const __m512i x01 = _mm512_load_si512(i01), x23 = _mm512_load_si512(i23);
  const auto base = reinterpret_cast<uintptr_t>(src);
  for (int64_t m0 = 0; m0 < wq; m0 += 16) {
    // Columns q = 4 m0 + i, i < 64: src[j0 + i], valid for lo <= i < hi.
    const int64_t j0 = 4 * m0 - pl;
    const int64_t lo = std::max<int64_t>(0, -j0), hi = std::min<int64_t>(64, n - j0);
    __mmask64 m = 0;
    if (hi > lo) {
      m = (hi >= 64 ? ~__mmask64{0} : (__mmask64{1} << hi) - 1) & ~((__mmask64{1} << lo) - 1);
    }
    const void* p = reinterpret_cast<const void*>(
        base + static_cast<uintptr_t>(j0 * static_cast<int64_t>(sizeof(T))));
    __m512i a, b;
    if constexpr (sizeof(T) == 2) {
      a = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(m), p);
      b = _mm512_maskz_loadu_epi16(
          static_cast<__mmask32>(m >> 32),
          reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + 64));
    } else {
      const __m512i bytes = _mm512_maskz_loadu_epi8(m, p);
      const __m256i l = _mm512_castsi512_si256(bytes), h = _mm512_extracti64x4_epi64(bytes, 1);
      a = std::is_signed_v<T> ? _mm512_cvtepi8_epi16(l) : _mm512_cvtepu8_epi16(l);
      b = std::is_signed_v<T> ? _mm512_cvtepi8_epi16(h) : _mm512_cvtepu8_epi16(h);
    }
    const __m512i p01 = _mm512_permutex2var_epi16(a, x01, b);
    const __m512i p23 = _mm512_permutex2var_epi16(a, x23, b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + m0), _mm512_castsi512_si256(p01));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + wq + m0),
                        _mm512_extracti64x4_epi64(p01, 1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * wq + m0), _mm512_castsi512_si256(p23));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 3 * wq + m0),
                        _mm512_extracti64x4_epi64(p23, 1));
  }
}
template void split_phases_avx512(const int8_t*, int64_t, int64_t, int64_t, int16_t*);
template void split_phases_avx512(const uint8_t*, int64_t, int64_t, int64_t, int16_t*);
template void split_phases_avx512(const int16_t*, int64_t, int64_t, int64_t, int16_t*);
}  // namespace
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")
namespace {
template <int R, int NZ>
void wino_gemm_vnni(const int16_t* u, int64_t us, const int32_t* v, int64_t vs, int64_t kn,
                    int32_t* out, int64_t os, const int16_t* pf) {
  QSEARCH_WINO_GEMM_BODY(_mm512_dpwssd_epi32)
}
void wino_gemm_avx512vnni(const int16_t* u, int64_t us, const int32_t* v, int64_t vs, int64_t kn,
                          int rows, int nz, int32_t* out, int64_t os, const int16_t* pf) {
  QSEARCH_WINO_GEMM_DISPATCH(wino_gemm_vnni)
}
}  // namespace
#pragma GCC pop_options
#undef QSEARCH_WINO_GEMM_BODY
#undef QSEARCH_WINO_GEMM_DISPATCH

#pragma GCC push_options
#pragma GCC target("avx2")
namespace {

inline __m256i load16(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline void store16(void* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

// Bytes of V2 up to which multiply_and_store runs block by block (by_block): the work item's
// whole V2 then stays in L2 (1 MB per core on Zen 5, with room for U's rows and M) while each
// block of output channels multiplies all positions and stores at once.
constexpr int64_t kBlockwiseV2Bytes = 640 * 1024;

// Whether multiply_and_store takes the output-channel blocks one at a time (M then holds one
// block: kPos * kMr * lanes int32, L1/L2-resident) rather than all positions of all blocks first
// (M: kPos * OC * lanes int32, 1.2 MB for ResNet-18's layer2 at 64 lanes, which left L2 on every
// write and again on every read of the output transform). The block order reads V2 once per
// block, which pays only while V2 stays in L2; the wide layers keep the position order, where
// a position's V2 stays in L2 across the blocks (U, megabytes there, is read once either way).
bool by_block(int positions, int64_t cpairs, int64_t lanes) {
  return positions * cpairs * lanes * 4 <= kBlockwiseV2Bytes;
}

// The rest of a Winograd work item, for F(2x2) (kTile 2: Job = WinoJob, 16 transform
// positions) and F(4x4) (kTile 4: Wino4Job, 36): M[o][pos][lane] = U[pos][o] . V2[pos] for the
// output-channel blocks [ob0, ob1) and the global tiles [g0, g1) (the output transform of one
// channel then reads its positions a few hundred bytes apart, not oc * lanes * 4 bytes: that
// stride hit one L1 set; per position, per block of output channels their U rows stay in L1 and
// this position's V2 in L2), then the output transform and the epilogue's store of each run of
// consecutive output pixels (per image and tile-row segment of the panel, per output row). Where
// the work item's V2 fits kBlockwiseV2Bytes (by_block) this runs per block of output channels,
// all positions then the stores, so that M (`mbuf`: one block) stays in L1/L2; else all blocks'
// M first (`mbuf`: every output channel).
template <int kTile, typename Job>
void multiply_and_store(const Job& j, const int32_t* v2, const int64_t* goff, int32_t* mbuf,
                        int64_t g0, int64_t g1, int64_t ob0, int64_t ob1) {
  constexpr int kPos = (kTile + 2) * (kTile + 2);
  constexpr int kMr = Job::kMr, kRow = Job::kRow;
  const int64_t oc = j.w->geometry().out_channels, cpad = j.f->channels_padded;
  const int64_t np = (g1 - g0 + 15) / 16, lanes = np * 16;
  // The output transform and the epilogue's store of the blocks [oba, obb) from M as multiply()
  // left it.
  const Epilogue e(j.w->groups().front(), j.q);
  alignas(64) int32_t s[kTile][kMr * kRow];  // S per output row a of the tiles, pixel order
  alignas(64) int32_t tile[kMr * 16 + 16];   // run_t32's columns (16 lanes read per column)
  auto store = [&](int64_t oba, int64_t obb, const int32_t* m, int64_t mo0) {
    for (int64_t ob = oba; ob < obb; ++ob) {
      const int64_t o0 = oc * ob / j.mblocks;
      const int rows = static_cast<int>(oc * (ob + 1) / j.mblocks - o0);
      for (int64_t p = 0; p < np; ++p) {
        Job::transform_output(m + (o0 - mo0) * kPos * lanes + p * 16, lanes, kPos * lanes, rows, s);
        const int64_t gp0 = g0 + p * 16, gp1 = std::min(gp0 + 16, g1);
        for (int64_t gt = gp0; gt < gp1;) {
          const int64_t img = gt / j.tiles, t = gt % j.tiles;
          const int64_t ty = t / j.tw, tx = t % j.tw, len = std::min(j.tw - tx, gp1 - gt);
          const int64_t l0 = gt - gp0;
          std::byte* out = j.y + img * oc * j.oh * j.ow * j.y_es;
          for (int a = 0; a < kTile; ++a) {
            const int64_t yy = kTile * ty + a;
            if (yy >= j.oh) continue;
            const int64_t x0 = kTile * tx, xend = std::min(kTile * (tx + len), j.ow);
            for (int64_t xs = x0; xs < xend; xs += 16) {
              const int n = static_cast<int>(std::min<int64_t>(16, xend - xs));
              const int32_t* src = s[a] + kTile * l0 + (xs - x0);
              for (int r = 0; r < rows; ++r) {
                store16(tile + r * 16, load16(src + r * kRow));
                store16(tile + r * 16 + 8, load16(src + r * kRow + 8));
              }
              e.run_t32(tile, n, rows, yy * j.ow + xs, o0, out);
            }
          }
          gt += len;
        }
      }
    }
  };
  const int16_t* u = j.f->u.template data<int16_t>();
  // M of the blocks [oba, obb) at m + ((o - mo0) * kPos + pos) * lanes.
  auto multiply = [&](int64_t oba, int64_t obb, int32_t* m, int64_t mo0) {
    if (j.f->isa >= Isa::kAvx512Bw) {
      const auto gemm = j.f->isa >= Isa::kAvx512Vnni ? wino_gemm_avx512vnni : wino_gemm_avx512bw;
      for (int pos = 0; pos < kPos; ++pos) {
        for (int64_t ob = oba; ob < obb; ++ob) {
          const int64_t o0 = oc * ob / j.mblocks;
          const int rows = static_cast<int>(oc * (ob + 1) / j.mblocks - o0);
          const int16_t* ur = u + (pos * oc + o0) * cpad;
          // The first call prefetches the U rows of the next call with other rows: the next
          // block's at this position, or (one block) this block's at the next position.
          const int16_t* next =
              obb - oba > 1 ? ur + 6 * cpad : (pos + 1 < kPos ? ur + oc * cpad : ur);
          for (int64_t p = 0; p < np; p += 2) {
            gemm(ur, cpad, v2 + pos * j.cpairs * lanes + p * 16, lanes, j.cpairs, rows,
                 static_cast<int>(std::min<int64_t>(2, np - p)),
                 m + ((o0 - mo0) * kPos + pos) * lanes + p * 16, kPos * lanes, p == 0 ? next : ur);
          }
        }
      }
    } else {
      for (int pos = 0; pos < kPos; ++pos) {
        for (int64_t ob = oba; ob < obb; ++ob) {
          const int64_t o0 = oc * ob / j.mblocks;
          const int rows = static_cast<int>(oc * (ob + 1) / j.mblocks - o0);
          for (int64_t p = 0; p < np; ++p) {
            detail::conv_pairs_s32_avx2(
                u + (pos * oc + o0) * cpad, cpad, v2 + pos * j.cpairs * lanes + p * 16, goff,
                j.cpairs, rows, m + ((o0 - mo0) * kPos + pos) * lanes + p * 16, kPos * lanes);
          }
        }
      }
    }
  };
  if (by_block(kPos, j.cpairs, lanes)) {
    for (int64_t ob = ob0; ob < ob1; ++ob) {
      const int64_t o0 = oc * ob / j.mblocks;
      multiply(ob, ob + 1, mbuf, o0);
      store(ob, ob + 1, mbuf, o0);
    }
  } else {
    multiply(ob0, ob1, mbuf, 0);
    store(ob0, ob1, mbuf, 0);
  }
}

// A work item of either job: chunk ch = item / osplit of the global panels (16 global tiles
// each) and output-channel blocks [ob0, ob1) = [mblocks * os / osplit, mblocks * (os + 1) /
// osplit), os = item % osplit; the chunk's global tiles [g0, g1) fill `lanes` lanes (0 when the
// chunk is empty).
struct WorkItem {
  int64_t ob0, ob1, g0, g1, lanes;
};
template <typename Job>
WorkItem work_item(const Job& j, int64_t item) {
  const int64_t ch = item / j.osplit, os = item % j.osplit;
  const int64_t pa = j.panels * ch / j.chunks, pb = j.panels * (ch + 1) / j.chunks;
  return {j.mblocks * os / j.osplit, j.mblocks * (os + 1) / j.osplit, pa * 16,
          std::min(pb * 16, j.batch * j.tiles), (pb - pa) * 16};
}

// One conv2d() call's shared state (winograd.h, "Layout and loop").
struct WinoJob {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  const WinogradFilters* f;
  GemmParams q;
  DType a_dtype;
  size_t a_es, y_es;
  int64_t batch, oh, ow, th, tw, tiles, panels, chunks, osplit, cpairs, mblocks;
  int64_t wqa;  // the split rows' stride: tw + 1 entries, room for 16-lane reads past them
  static constexpr int kMr = detail::kMrConvPairsAvx2;
  static constexpr int kRow = 48;  // one channel's 32 output pixels of a panel row (+ slack)

  // Padded input rows [r0, r0 + rows) of one channel plane split by column parity:
  //   ev[i][k] = xp[r0 + i][2k], od[i][k] = xp[r0 + i][2k + 1], k < wqa,
  // xp the zero-padded input (xp[i][j] = X[i - pt][j - pl], 0 outside). `prow`: 2 * wqa int16.
  template <typename T>
  void split_rows(const T* plane, int64_t r0, int64_t rows, int16_t* prow, int16_t* ev,
                  int16_t* od) const {
    const Conv2dGeometry& g = w->geometry();
    // Input columns j < jend land at padded columns j + pl < 2 * wqa.
    const int64_t jend = std::min(g.in_w, 2 * wqa - g.pad_left);
    for (int64_t i = 0; i < rows; ++i) {
      int16_t* e = ev + i * wqa;
      int16_t* o = od + i * wqa;
      const int64_t r = r0 + i - g.pad_top;
      if (r < 0 || r >= g.in_h) {
        std::fill(e, e + wqa, int16_t{0});
        std::fill(o, o + wqa, int16_t{0});
        continue;
      }
      std::fill(prow, prow + 2 * wqa, int16_t{0});
      const T* src = plane + r * g.in_w;
      int16_t* d = prow + g.pad_left;
      for (int64_t j = 0; j < jend; ++j) d[j] = static_cast<int16_t>(src[j]);
      // Pairs (even, odd) as int32: the low half sign-extended and the high half, packed back
      // to int16 (exact: both fit) and put in order (packs works per 128-bit half).
      for (int64_t k = 0; k < wqa; k += 16) {
        const __m256i q0 = load16(prow + 2 * k), q1 = load16(prow + 2 * k + 16);
        const __m256i e0 = _mm256_srai_epi32(_mm256_slli_epi32(q0, 16), 16);
        const __m256i e1 = _mm256_srai_epi32(_mm256_slli_epi32(q1, 16), 16);
        const __m256i o0 = _mm256_srai_epi32(q0, 16), o1 = _mm256_srai_epi32(q1, 16);
        store16(e + k, _mm256_permute4x64_epi64(_mm256_packs_epi32(e0, e1), 0xD8));
        store16(o + k, _mm256_permute4x64_epi64(_mm256_packs_epi32(o0, o1), 0xD8));
      }
    }
  }

  // V = B^T d B of one channel of one image for its tiles [t0, t1): v[pos * vs + t - t0]. 16
  // tiles of a tile row per step; a step past the segment's end writes up to 15 lanes that the
  // next segment (or the caller's zeroing) overwrites, within the row's slack of 16.
  template <typename T>
  void transform_input(const T* plane, int64_t t0, int64_t t1, int64_t vs, int16_t* prow,
                       int16_t* ev, int16_t* od, int16_t* v) const {
    const int64_t ty0 = t0 / tw, ty1 = (t1 - 1) / tw;
    const int64_t r0 = 2 * ty0, rows = 2 * (ty1 - ty0) + 4;
    split_rows(plane, r0, rows, prow, ev, od);
    for (int64_t t = t0; t < t1;) {
      const int64_t ty = t / tw, tx = t % tw, len = std::min(tw - tx, t1 - t);
      const int64_t l0 = t - t0;
      const int16_t* e0 = ev + (2 * ty - r0) * wqa + tx;
      const int16_t* o0 = od + (2 * ty - r0) * wqa + tx;
      for (int64_t k = 0; k < len; k += 16) {
        // Row transform d B of the window's four rows: a[i][j].
        __m256i a[4][4];
        for (int i = 0; i < 4; ++i) {
          const __m256i e = load16(e0 + i * wqa + k), en = load16(e0 + i * wqa + k + 1);
          const __m256i o = load16(o0 + i * wqa + k), on = load16(o0 + i * wqa + k + 1);
          a[i][0] = _mm256_sub_epi16(e, en);
          a[i][1] = _mm256_add_epi16(o, en);
          a[i][2] = _mm256_sub_epi16(en, o);
          a[i][3] = _mm256_sub_epi16(o, on);
        }
        int16_t* vv = v + l0 + k;
        for (int j = 0; j < 4; ++j) {
          store16(vv + (0 * 4 + j) * vs, _mm256_sub_epi16(a[0][j], a[2][j]));
          store16(vv + (1 * 4 + j) * vs, _mm256_add_epi16(a[1][j], a[2][j]));
          store16(vv + (2 * 4 + j) * vs, _mm256_sub_epi16(a[2][j], a[1][j]));
          store16(vv + (3 * 4 + j) * vs, _mm256_sub_epi16(a[1][j], a[3][j]));
        }
      }
      t += len;
    }
  }

  // Tiny maps (tw <= kGatherTw tiles per row: outputs of 6x6 and less): the row-wise transform
  // above fills 1-3 of its 16 lanes per step and splits 4+ padded rows per image and channel, so
  // the input windows are gathered instead, 16 codes per tile (code 0 outside the image), with
  // the lanes running over the tiles of the work item (across images), and transformed 16 tiles
  // at a time. `win[l][k]`: the in-plane offset of window entry k = 4i + j of lane l's tile, or
  // -1 in the padding (every entry of a lane past g1); `img_off[l]`: its image's first code.
  static constexpr int64_t kGatherTw = 3;
  static size_t gather_bytes(int64_t lanes) {
    return static_cast<size_t>(lanes) * (16 * 4 + 8) + static_cast<size_t>(16 * lanes) * 2 + 64;
  }
  template <typename T>
  void gather_transform(int64_t g0, int64_t g1, int64_t lanes, std::byte* buf, int16_t* va,
                        int16_t* vb, int64_t vs, int32_t* v2) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t plane = g.in_h * g.in_w;
    auto* img_off = reinterpret_cast<int64_t*>(buf);
    auto* win = reinterpret_cast<int32_t*>(img_off + lanes);
    auto* d = reinterpret_cast<int16_t*>(win + 16 * lanes);  // d[k][lane], k = 4i + j
    for (int64_t l = 0; l < lanes; ++l) {
      const int64_t gt = g0 + l;
      img_off[l] = gt < g1 ? gt / tiles * g.in_channels * plane : 0;
      const int64_t t = gt % tiles, r0 = 2 * (t / tw) - g.pad_top, c0 = 2 * (t % tw) - g.pad_left;
      for (int64_t i = 0; i < 4; ++i) {
        for (int64_t j = 0; j < 4; ++j) {
          const int64_t r = r0 + i, c = c0 + j;
          const bool in = gt < g1 && r >= 0 && r < g.in_h && c >= 0 && c < g.in_w;
          win[l * 16 + i * 4 + j] = in ? static_cast<int32_t>(r * g.in_w + c) : -1;
        }
      }
    }
    const T* xt = reinterpret_cast<const T*>(x);
    for (int64_t cp = 0; cp < cpairs; ++cp) {
      for (int h = 0; h < 2; ++h) {
        int16_t* v = h == 0 ? va : vb;
        const int64_t c = 2 * cp + h;
        if (c >= g.in_channels) {
          std::fill(v, v + 16 * vs, int16_t{0});
          continue;
        }
        for (int64_t l = 0; l < lanes; ++l) {
          const int32_t* wl = win + l * 16;
          const T* src = xt + (img_off[l] + c * plane);  // only read through in-image offsets
          for (int k = 0; k < 16; ++k) {
            d[k * lanes + l] = wl[k] >= 0 ? static_cast<int16_t>(src[wl[k]]) : int16_t{0};
          }
        }
        for (int64_t l = 0; l < lanes; l += 16) {
          // d B per window row i, then B^T (d B): as transform_input, 16 tiles per step.
          __m256i a[4][4];
          for (int i = 0; i < 4; ++i) {
            const __m256i d0 = load16(d + (4 * i) * lanes + l);
            const __m256i d1 = load16(d + (4 * i + 1) * lanes + l);
            const __m256i d2 = load16(d + (4 * i + 2) * lanes + l);
            const __m256i d3 = load16(d + (4 * i + 3) * lanes + l);
            a[i][0] = _mm256_sub_epi16(d0, d2);
            a[i][1] = _mm256_add_epi16(d1, d2);
            a[i][2] = _mm256_sub_epi16(d2, d1);
            a[i][3] = _mm256_sub_epi16(d1, d3);
          }
          int16_t* vv = v + l;
          for (int j = 0; j < 4; ++j) {
            store16(vv + (0 * 4 + j) * vs, _mm256_sub_epi16(a[0][j], a[2][j]));
            store16(vv + (1 * 4 + j) * vs, _mm256_add_epi16(a[1][j], a[2][j]));
            store16(vv + (2 * 4 + j) * vs, _mm256_sub_epi16(a[2][j], a[1][j]));
            store16(vv + (3 * 4 + j) * vs, _mm256_sub_epi16(a[1][j], a[3][j]));
          }
        }
      }
      pair_channels(va, vb, vs, lanes, cp, v2);
    }
  }

  // Channel pairs: V2[pos][cp][lane] = (va, vb) as two int16 halves, va low. unpacklo/hi
  // interleave per 128-bit half; the permutes restore the lane order.
  void pair_channels(const int16_t* va, const int16_t* vb, int64_t vs, int64_t lanes, int64_t cp,
                     int32_t* v2) const {
    for (int pos = 0; pos < 16; ++pos) {
      int32_t* d = v2 + (pos * cpairs + cp) * lanes;
      const int16_t* sa = va + pos * vs;
      const int16_t* sb = vb + pos * vs;
      for (int64_t l = 0; l < lanes; l += 16) {
        const __m256i xa = load16(sa + l), xb = load16(sb + l);
        const __m256i lo = _mm256_unpacklo_epi16(xa, xb), hi = _mm256_unpackhi_epi16(xa, xb);
        store16(d + l, _mm256_permute2x128_si256(lo, hi, 0x20));
        store16(d + l + 8, _mm256_permute2x128_si256(lo, hi, 0x31));
      }
    }
  }

  // V2 of the global tiles [g0, g1) (tile t of image i is i * tiles + t): lane G - g0, lanes
  // past g1 - g0 zero.
  template <typename T>
  void transform_all(int64_t g0, int64_t g1, int64_t lanes, std::byte* buf, int32_t* v2) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t vs = lanes + 16;
    if (tw <= kGatherTw) {
      auto* va = reinterpret_cast<int16_t*>(buf);
      gather_transform<T>(g0, g1, lanes, buf + static_cast<size_t>(2 * 16 * vs) * 2, va,
                          va + 16 * vs, vs, v2);
      return;
    }
    int64_t rows_max = 0;
    for (int64_t img = g0 / tiles; img * tiles < g1; ++img) {
      const int64_t t0 = std::max(g0 - img * tiles, int64_t{0});
      const int64_t t1 = std::min(g1 - img * tiles, tiles);
      rows_max = std::max(rows_max, 2 * ((t1 - 1) / tw - t0 / tw) + 4);
    }
    auto* prow = reinterpret_cast<int16_t*>(buf);
    int16_t* ev = prow + 2 * wqa;
    int16_t* od = ev + rows_max * wqa;
    int16_t* va = od + rows_max * wqa;
    int16_t* vb = va + 16 * vs;
    const int64_t plane = g.in_h * g.in_w;
    for (int64_t cp = 0; cp < cpairs; ++cp) {
      for (int h = 0; h < 2; ++h) {
        int16_t* v = h == 0 ? va : vb;
        const int64_t c = 2 * cp + h;
        if (c >= g.in_channels) {
          std::fill(v, v + 16 * vs, int16_t{0});
          continue;
        }
        for (int64_t img = g0 / tiles; img * tiles < g1; ++img) {
          const int64_t t0 = std::max(g0 - img * tiles, int64_t{0});
          const int64_t t1 = std::min(g1 - img * tiles, tiles);
          const T* src = reinterpret_cast<const T*>(x) + (img * g.in_channels + c) * plane;
          transform_input(src, t0, t1, vs, prow, ev, od, v + (img * tiles + t0 - g0));
        }
        for (int pos = 0; pos < 16; ++pos) {
          std::fill(v + pos * vs + (g1 - g0), v + pos * vs + lanes, int16_t{0});
        }
      }
      pair_channels(va, vb, vs, lanes, cp, v2);
    }
  }

  // The output transform of one GEMM tile m[pos * pos_stride + r * row_stride + l] (r < rows):
  // S = (A^T M A) / 4 in pixel order, out[a][r * kRow + 2l + b] = S at output (a, b) of tile l.
  // Additions modulo 2^32 (epi32 wraps), exact because 4S fits int32 (winograd.h).
  static void transform_output(const int32_t* m, int64_t pos_stride, int64_t row_stride, int rows,
                               int32_t (*out)[kMr * kRow]) {
    for (int r = 0; r < rows; ++r) {
      for (int h = 0; h < 16; h += 8) {
        const int32_t* mr = m + r * row_stride + h;
        __m256i t0[4], t1[4];
        for (int j = 0; j < 4; ++j) {
          const __m256i m0 = load16(mr + j * pos_stride), m1 = load16(mr + (4 + j) * pos_stride);
          const __m256i m2 = load16(mr + (8 + j) * pos_stride);
          const __m256i m3 = load16(mr + (12 + j) * pos_stride);
          t0[j] = _mm256_add_epi32(_mm256_add_epi32(m0, m1), m2);
          t1[j] = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3);
        }
        for (int a = 0; a < 2; ++a) {
          const __m256i* t = a == 0 ? t0 : t1;
          const __m256i y0 =
              _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(t[0], t[1]), t[2]), 2);
          const __m256i y1 =
              _mm256_srai_epi32(_mm256_sub_epi32(_mm256_sub_epi32(t[1], t[2]), t[3]), 2);
          const __m256i lo = _mm256_unpacklo_epi32(y0, y1), hi = _mm256_unpackhi_epi32(y0, y1);
          int32_t* o = out[a] + r * kRow + 2 * h;
          store16(o, _mm256_permute2x128_si256(lo, hi, 0x20));
          store16(o + 8, _mm256_permute2x128_si256(lo, hi, 0x31));
        }
      }
    }
  }

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const auto [ob0, ob1, g0, g1, lanes] = work_item(*this, item);
    if (lanes == 0 || ob0 == ob1) return;
    const int64_t oc = g.out_channels;
    // Scratch: V2 (int32 pairs), M (int32), goff, then the padded row, the split rows and two
    // channels' V (int16).
    const size_t v2_bytes = static_cast<size_t>(16 * cpairs * lanes) * 4;
    // M: one block of output channels or all (multiply_and_store).
    const size_t m_bytes =
        static_cast<size_t>(16 * (by_block(16, cpairs, lanes) ? kMr : oc) * lanes) * 4;
    const size_t goff_bytes = static_cast<size_t>(cpairs) * 8;
    const int64_t rows_in = 2 * (std::min(lanes, tiles) / tw + 1) + 4;  // >= any image's rows
    const size_t tmp_bytes =
        tw <= kGatherTw
            ? static_cast<size_t>(2 * 16 * (lanes + 16)) * 2 + gather_bytes(lanes)
            : static_cast<size_t>(2 * wqa + 2 * rows_in * wqa + 2 * 16 * (lanes + 16)) * 2;
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kConvColumns, v2_bytes + m_bytes + goff_bytes + tmp_bytes + 64));
    auto* v2 = reinterpret_cast<int32_t*>(base);
    auto* mbuf = reinterpret_cast<int32_t*>(base + v2_bytes);
    auto* goff = reinterpret_cast<int64_t*>(base + v2_bytes + m_bytes);
    std::byte* tmp = base + v2_bytes + m_bytes + goff_bytes;
    for (int64_t k = 0; k < cpairs; ++k) goff[k] = k * lanes;
    switch (a_dtype) {
      case DType::kInt8:
        transform_all<int8_t>(g0, g1, lanes, tmp, v2);
        break;
      case DType::kUInt8:
        transform_all<uint8_t>(g0, g1, lanes, tmp, v2);
        break;
      default:
        transform_all<int16_t>(g0, g1, lanes, tmp, v2);
        break;
    }

    multiply_and_store<2>(*this, v2, goff, mbuf, g0, g1, ob0, ob1);
  }
};

// F(4x4, 3x3) (winograd.h): r = B^T z of six int16 lane vectors, modulo 2^16 (the results fit
// int16, so wrapping on the way is harmless).
inline void bt6(const __m256i* z, __m256i* r) {
  const __m256i a = _mm256_sub_epi16(z[4], _mm256_slli_epi16(z[2], 2));
  const __m256i b = _mm256_sub_epi16(z[3], _mm256_slli_epi16(z[1], 2));
  const __m256i c = _mm256_sub_epi16(z[4], z[2]);
  const __m256i e = _mm256_slli_epi16(_mm256_sub_epi16(z[3], z[1]), 1);
  r[0] = _mm256_add_epi16(_mm256_slli_epi16(_mm256_sub_epi16(z[0], z[2]), 2), c);
  r[1] = _mm256_add_epi16(a, b);
  r[2] = _mm256_sub_epi16(a, b);
  r[3] = _mm256_add_epi16(c, e);
  r[4] = _mm256_sub_epi16(c, e);
  r[5] = _mm256_add_epi16(_mm256_slli_epi16(_mm256_sub_epi16(z[1], z[3]), 2),
                          _mm256_sub_epi16(z[5], z[3]));
}

// y = Â z (winograd.h: Â = A^T diag(6, 4, 4, 1, 1, 24)) of six int32 lane vectors, modulo 2^32.
inline void at6(const __m256i* z, __m256i* y) {
  const __m256i s12 = _mm256_add_epi32(z[1], z[2]), d12 = _mm256_sub_epi32(z[1], z[2]);
  const __m256i s34 = _mm256_add_epi32(z[3], z[4]), d34 = _mm256_sub_epi32(z[3], z[4]);
  const __m256i d12x4 = _mm256_slli_epi32(d12, 2);
  y[0] = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(z[0], 1), _mm256_slli_epi32(z[0], 2)),
                          _mm256_add_epi32(_mm256_slli_epi32(s12, 2), s34));
  y[1] = _mm256_add_epi32(d12x4, _mm256_slli_epi32(d34, 1));
  y[2] = _mm256_slli_epi32(_mm256_add_epi32(s12, s34), 2);
  y[3] = _mm256_add_epi32(_mm256_add_epi32(d12x4, _mm256_slli_epi32(d34, 3)),
                          _mm256_add_epi32(_mm256_slli_epi32(z[5], 4), _mm256_slli_epi32(z[5], 3)));
}

// One conv2d() call by F(4x4, 3x3) (winograd.h, "F(4x4, 3x3)"): the loop of WinoJob with 36
// positions, 4x4 output tiles and every tile's 6x6 input window gathered (lanes over the tiles of
// the work item, across tile rows and images).
struct Wino4Job {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  const WinogradFilters* f;
  GemmParams q;
  DType a_dtype;
  size_t y_es;
  int64_t batch, oh, ow, th, tw, tiles, panels, chunks, osplit, cpairs, mblocks;
  static constexpr int kMr = detail::kMrConvPairsAvx2;
  static constexpr int kRow = 80;  // one channel's 64 output pixels of a panel row (+ slack)
  // 576 S * kInv9 = 64 S modulo 2^32 (9 * kInv9 = 1 modulo 2^32).
  static constexpr uint32_t kInv9 = 954437177u;

  // Entries per phase of a split row: tw + 2 (the windows' last padded column is 4 tw + 1)
  // rounded up to 16 (split_phases_avx512 writes 16 per phase and step).
  int64_t phase_width() const { return (tw + 2 + 15) / 16 * 16; }

  // V2[pos][cp][lane] of the global tiles [g0, g1) (lanes past g1 - g0: any values, their outputs
  // are dropped). Per channel the input rows the tiles read are widened into zero-padded int16
  // rows split by column phase (xp, per image its rows [4 ty0, 4 ty1 + 6), each 4 phases of wq =
  // tw + 2 entries: padded column q at [q % 4][q / 4]), then for every run of consecutive tiles
  // of one tile row (`seg`: image, ty, tx, length, first lane) entry (i, j) of their windows,
  // padded columns 4 (tx + t) + j, is the contiguous phase row [j % 4][tx + j / 4 + t] copied to
  // d[6i + j][lane...]; v[pos][lane] is one channel's V.
  template <typename T>
  void transform_all(int64_t g0, int64_t g1, int64_t lanes, int64_t (*seg)[5], int64_t nseg,
                     int16_t* xp, int16_t* d, int16_t* va, int16_t* vb, int32_t* v2) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t plane = g.in_h * g.in_w, wq = phase_width(), rs = 4 * wq;
    const bool wide = f->isa >= Isa::kAvx512Bw;
    const int64_t img0 = g0 / tiles, img1 = (g1 - 1) / tiles;
    // Image img's first padded row is 4 * ty_first(img); its rows start at xp + row_off[img].
    auto first_ty = [&](int64_t img) { return std::max(g0 - img * tiles, int64_t{0}) / tw; };
    auto last_ty = [&](int64_t img) { return (std::min(g1 - img * tiles, tiles) - 1) / tw; };
    const int64_t ds = lanes + 16;  // d's row stride: 16 lanes of slack
    std::fill(d, d + 36 * ds, int16_t{0});
    const T* xt = reinterpret_cast<const T*>(x);
    for (int64_t cp = 0; cp < cpairs; ++cp) {
      for (int h = 0; h < 2; ++h) {
        int16_t* v = h == 0 ? va : vb;
        const int64_t c = 2 * cp + h;
        if (c >= g.in_channels) {
          std::fill(v, v + 36 * lanes, int16_t{0});
          continue;
        }
        int16_t* rows = xp;
        for (int64_t img = img0; img <= img1; ++img) {
          const T* src = xt + (img * g.in_channels + c) * plane;
          const int64_t r0 = 4 * first_ty(img), r1 = 4 * last_ty(img) + 6;
          for (int64_t r = r0; r < r1; ++r, rows += rs) {
            const int64_t ir = r - g.pad_top;
            // Padded columns q = j + pl < 4 tw + 2 (the last window's end).
            const int64_t j1 = std::min(g.in_w, 4 * tw + 2 - g.pad_left);
            if (wide && ir >= 0 && ir < g.in_h) {
              split_phases_avx512(src + ir * g.in_w, j1, g.pad_left, wq, rows);
              continue;
            }
            std::fill(rows, rows + rs, int16_t{0});
            if (ir < 0 || ir >= g.in_h) continue;
            const T* sr = src + ir * g.in_w;
            for (int64_t j = 0; j < j1; ++j) {
              const int64_t q = j + g.pad_left;
              rows[(q & 3) * wq + (q >> 2)] = static_cast<int16_t>(sr[j]);
            }
          }
        }
        for (int64_t s = 0; s < nseg; ++s) {
          const int64_t len = seg[s][3], l0 = seg[s][4];
          const int16_t* base = xp + seg[s][0] + (4 * seg[s][1]) * rs + seg[s][2];
          for (int i = 0; i < 6; ++i) {
            for (int j = 0; j < 6; ++j) {
              const int16_t* sp = base + i * rs + (j & 3) * wq + (j >> 2);
              // 16 codes per step: past len into the next lanes (rewritten by the next run) or
              // the row's slack of 16 (dropped lanes), reading within xp's slack.
              int16_t* dp = d + (6 * i + j) * ds + l0;
              for (int64_t t = 0; t < len; t += 16) store16(dp + t, load16(sp + t));
            }
          }
        }
        for (int64_t l = 0; l < lanes; l += 16) {
          // d B per window row i (a[i][.]), then B^T (d B) per column j.
          __m256i a[6][6];
          for (int i = 0; i < 6; ++i) {
            __m256i z[6];
            for (int j = 0; j < 6; ++j) z[j] = load16(d + (6 * i + j) * ds + l);
            bt6(z, a[i]);
          }
          for (int j = 0; j < 6; ++j) {
            __m256i z[6], r[6];
            for (int i = 0; i < 6; ++i) z[i] = a[i][j];
            bt6(z, r);
            for (int i = 0; i < 6; ++i) store16(v + (6 * i + j) * lanes + l, r[i]);
          }
        }
      }
      // Channel pairs: V2[pos][cp][lane] = (va, vb) as two int16 halves, va low.
      for (int pos = 0; pos < 36; ++pos) {
        int32_t* dst = v2 + (pos * cpairs + cp) * lanes;
        const int16_t* sa = va + pos * lanes;
        const int16_t* sb = vb + pos * lanes;
        for (int64_t l = 0; l < lanes; l += 16) {
          const __m256i xa = load16(sa + l), xb = load16(sb + l);
          const __m256i lo = _mm256_unpacklo_epi16(xa, xb), hi = _mm256_unpackhi_epi16(xa, xb);
          store16(dst + l, _mm256_permute2x128_si256(lo, hi, 0x20));
          store16(dst + l + 8, _mm256_permute2x128_si256(lo, hi, 0x31));
        }
      }
    }
  }

  // The output transform of one GEMM tile m[pos * pos_stride + r * row_stride + l] (r < rows):
  // S = (Â M Â^T) / 576 in pixel order, out[a][r * kRow + 4l + b] = S at output (a, b) of tile
  // l. Modulo 2^32, then 64 S = 576 S * kInv9 and S = (64 S) >> 6, exact because |S| <=
  // kMaxSumF4 (winograd.h).
  static void transform_output(const int32_t* m, int64_t pos_stride, int64_t row_stride, int rows,
                               int32_t (*out)[kMr * kRow]) {
    const __m256i inv9 = _mm256_set1_epi32(static_cast<int32_t>(kInv9));
    for (int r = 0; r < rows; ++r) {
      for (int h = 0; h < 16; h += 8) {
        const int32_t* mr = m + r * row_stride + h;
        __m256i t[4][6];  // Â M: t[a][j]
        for (int j = 0; j < 6; ++j) {
          __m256i z[6], yv[4];
          for (int i = 0; i < 6; ++i) z[i] = load16(mr + (6 * i + j) * pos_stride);
          at6(z, yv);
          for (int a = 0; a < 4; ++a) t[a][j] = yv[a];
        }
        for (int a = 0; a < 4; ++a) {
          __m256i yv[4];
          at6(t[a], yv);
          for (int b = 0; b < 4; ++b) {
            yv[b] = _mm256_srai_epi32(_mm256_mullo_epi32(yv[b], inv9), 6);
          }
          // 8 tiles x 4 columns into pixel order: a 4 x 8 transpose per 128-bit half.
          const __m256i p01l = _mm256_unpacklo_epi32(yv[0], yv[1]);
          const __m256i p01h = _mm256_unpackhi_epi32(yv[0], yv[1]);
          const __m256i p23l = _mm256_unpacklo_epi32(yv[2], yv[3]);
          const __m256i p23h = _mm256_unpackhi_epi32(yv[2], yv[3]);
          const __m256i q0 = _mm256_unpacklo_epi64(p01l, p23l);  // tiles 0 | 4
          const __m256i q1 = _mm256_unpackhi_epi64(p01l, p23l);  // tiles 1 | 5
          const __m256i q2 = _mm256_unpacklo_epi64(p01h, p23h);  // tiles 2 | 6
          const __m256i q3 = _mm256_unpackhi_epi64(p01h, p23h);  // tiles 3 | 7
          int32_t* o = out[a] + r * kRow + 4 * h;
          store16(o, _mm256_permute2x128_si256(q0, q1, 0x20));
          store16(o + 8, _mm256_permute2x128_si256(q2, q3, 0x20));
          store16(o + 16, _mm256_permute2x128_si256(q0, q1, 0x31));
          store16(o + 24, _mm256_permute2x128_si256(q2, q3, 0x31));
        }
      }
    }
  }

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const auto [ob0, ob1, g0, g1, lanes] = work_item(*this, item);
    if (lanes == 0 || ob0 == ob1) return;
    const int64_t oc = g.out_channels;
    // Scratch: V2 (int32 pairs), M (int32), goff, the runs, the padded rows, then d and two
    // channels' V (int16).
    const int64_t rs = 4 * phase_width();  // a padded row split by column phase (transform_all)
    int64_t xp_rows = 0;
    for (int64_t img = g0 / tiles; img * tiles < g1; ++img) {
      const int64_t ty0 = std::max(g0 - img * tiles, int64_t{0}) / tw;
      const int64_t ty1 = (std::min(g1 - img * tiles, tiles) - 1) / tw;
      xp_rows += 4 * (ty1 - ty0) + 6;
    }
    const size_t v2_bytes = static_cast<size_t>(36 * cpairs * lanes) * 4;
    const size_t m_bytes =
        static_cast<size_t>(36 * (by_block(36, cpairs, lanes) ? kMr : oc) * lanes) * 4;
    const size_t goff_bytes = static_cast<size_t>(cpairs) * 8;
    const size_t seg_bytes = static_cast<size_t>(lanes) * 5 * 8;
    const size_t xp_bytes = static_cast<size_t>(xp_rows * rs) * 2 + 64;
    const size_t v_bytes = static_cast<size_t>(36 * lanes) * 2;
    const size_t d_bytes = static_cast<size_t>(36 * (lanes + 16)) * 2;
    auto* base = static_cast<std::byte*>(scratch(
        ScratchSlot::kConvColumns,
        v2_bytes + m_bytes + goff_bytes + seg_bytes + xp_bytes + d_bytes + 2 * v_bytes + 64));
    auto* v2 = reinterpret_cast<int32_t*>(base);
    std::byte* at = base + v2_bytes;
    auto* mbuf = reinterpret_cast<int32_t*>(at);
    at += m_bytes;
    auto* goff = reinterpret_cast<int64_t*>(at);
    at += goff_bytes;
    auto* seg = reinterpret_cast<int64_t(*)[5]>(at);
    at += seg_bytes;
    auto* xp = reinterpret_cast<int16_t*>(at);
    at += xp_bytes;
    auto* d = reinterpret_cast<int16_t*>(at);
    int16_t* va = d + 36 * (lanes + 16);
    int16_t* vb = va + 36 * lanes;
    for (int64_t k = 0; k < cpairs; ++k) goff[k] = k * lanes;
    // The runs of consecutive tiles of one tile row: seg[s] = {image's first padded row offset
    // in xp minus its first row's (4 ty0) rows, ty, tx, length, first lane}.
    int64_t nseg = 0;
    {
      int64_t img_base = 0, cur_img = -1, ty0 = 0;
      for (int64_t gt = g0; gt < g1;) {
        const int64_t img = gt / tiles, t = gt % tiles;
        if (img != cur_img) {
          if (cur_img >= 0) {
            const int64_t ty1 = (std::min(g1 - cur_img * tiles, tiles) - 1) / tw;
            img_base += (4 * (ty1 - ty0) + 6) * rs;
          }
          cur_img = img;
          ty0 = t / tw;
        }
        const int64_t ty = t / tw, tx = t % tw, len = std::min(tw - tx, g1 - gt);
        seg[nseg][0] = img_base - 4 * ty0 * rs;
        seg[nseg][1] = ty;
        seg[nseg][2] = tx;
        seg[nseg][3] = len;
        seg[nseg][4] = gt - g0;
        ++nseg;
        gt += len;
      }
    }
    switch (a_dtype) {
      case DType::kInt8:
        transform_all<int8_t>(g0, g1, lanes, seg, nseg, xp, d, va, vb, v2);
        break;
      case DType::kUInt8:
        transform_all<uint8_t>(g0, g1, lanes, seg, nseg, xp, d, va, vb, v2);
        break;
      default:
        transform_all<int16_t>(g0, g1, lanes, seg, nseg, xp, d, va, vb, v2);
        break;
    }

    multiply_and_store<4>(*this, v2, goff, mbuf, g0, g1, ob0, ob1);
  }
};

// Bytes of one position's V2 per work item aimed at (L2-resident while the output-channel blocks
// run over it).
constexpr int64_t kSliceBytes = 96 * 1024;

// Work items of one call (either tile): chunks of `panels` panels and, when there are fewer
// chunks than threads, `osplit` ranges of the output-channel blocks.
void split_work(int64_t panels, int64_t cpairs, int64_t mblocks, int64_t* chunks, int64_t* osplit) {
  // Panels per work item: one position's V2 (cpairs * 16 lanes * 4 bytes per panel) within
  // kSliceBytes (L2), at least one work item per thread while there are panels for it, then the
  // output channels split among the threads.
  const int64_t per_panel = cpairs * 16 * 4;
  // Inside a batch-parallel evaluation this call has one thread (as conv2d).
  const int64_t threads = in_parallel_region() ? 1 : num_threads();
  // Balance: M's traffic (written and read once: 8 / C bytes per multiply) against U's (read
  // once per work item: 2 / lanes bytes per multiply) gives lanes ~ C / 4, i.e. C / 64 panels
  // (8 for C = 512, whose 8 MB of U are not L2-resident); at least 4 panels, so that the input
  // transform's split rows and the per-item setup are shared by several panels.
  int64_t nb = std::min(kSliceBytes / per_panel, std::max<int64_t>(4, cpairs / 32));
  nb = std::clamp<int64_t>(nb, 1, panels);
  nb = std::min(nb, std::max<int64_t>(1, panels / threads));
  *chunks = (panels + nb - 1) / nb;
  // A few work items (parallel_for hands out one at a time up to 4 per thread): a multiple of the
  // threads, so that every thread runs as many (their panels differ by at most one). ResNet-18's
  // 512-channel convs at batch 16 (16 panels of at most 6) made 3 items for 2 threads, one
  // thread running 11 panels while the other ran 5; 4 items of 4 panels cost a fourth more reads
  // of U (8.4 MB per item) and balance the threads.
  if (threads > 1 && *chunks > threads && *chunks <= 4 * threads) {
    *chunks = std::min(panels, (*chunks + threads - 1) / threads * threads);
  }
  *osplit = *chunks >= threads ? 1 : std::min(mblocks, threads / *chunks);
}

}  // namespace
#pragma GCC pop_options
#pragma GCC diagnostic pop
#endif  // __x86_64__

bool winograd_conv2d(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                     void* y, ConvPool pool) {
#if !defined(__x86_64__)
  (void)x, (void)batch, (void)w, (void)p, (void)y, (void)pool;
  return false;
#else
  const WinogradFilters* f = w.winograd().get();
  if (f == nullptr || pool != ConvPool::kNone || batch < f->min_batch) return false;
  const Conv2dGeometry& g = w.geometry();
  if (f->tile == 4) {
    Wino4Job job;
    job.x = static_cast<const std::byte*>(x);
    job.y = static_cast<std::byte*>(y);
    job.w = &w;
    job.f = f;
    job.oh = g.out_h();
    job.ow = g.out_w();
    job.q = p;
    job.q.ldc_m = 1;  // NCHW, as WinoJob
    job.q.ldc_n = job.oh * job.ow;
    job.a_dtype = w.a_dtype();
    job.y_es = dtype_size(gemm_output_dtype(p));
    job.batch = batch;
    job.th = (job.oh + 3) / 4;
    job.tw = (job.ow + 3) / 4;
    job.tiles = job.th * job.tw;
    job.panels = (batch * job.tiles + 15) / 16;
    job.cpairs = f->channels_padded / 2;
    job.mblocks = (g.out_channels + Wino4Job::kMr - 1) / Wino4Job::kMr;
    split_work(job.panels, job.cpairs, job.mblocks, &job.chunks, &job.osplit);
    const Wino4Job* shared = &job;
    parallel_for(0, job.chunks * job.osplit, 1, [shared](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) shared->run(i);
    });
    return true;
  }
  WinoJob job;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.f = f;
  job.oh = g.out_h();
  job.ow = g.out_w();
  job.q = p;
  job.q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  job.q.ldc_n = job.oh * job.ow;
  job.a_dtype = w.a_dtype();
  job.a_es = dtype_size(job.a_dtype);
  job.y_es = dtype_size(gemm_output_dtype(p));
  job.batch = batch;
  job.th = (job.oh + 1) / 2;
  job.tw = (job.ow + 1) / 2;
  job.tiles = job.th * job.tw;
  job.panels = (batch * job.tiles + 15) / 16;  // over the whole batch: images share panels
  job.cpairs = f->channels_padded / 2;
  job.wqa = (job.tw + 1 + 17 + 15) / 16 * 16;
  job.mblocks = (g.out_channels + WinoJob::kMr - 1) / WinoJob::kMr;
  split_work(job.panels, job.cpairs, job.mblocks, &job.chunks, &job.osplit);
  const WinoJob* shared = &job;
  parallel_for(0, job.chunks * job.osplit, 1, [shared](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) shared->run(i);
  });
  return true;
#endif
}

}  // namespace qsearch::kernels::fixed
