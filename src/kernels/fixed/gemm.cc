#include "kernels/fixed/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/fixed/bitpack.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"
#include "kernels/fixed/scratch.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {

using detail::kNr;
using Layout = PackedWeights::Layout;

namespace {

using U128 = __uint128_t;
constexpr U128 kU128Max = ~U128{0};

U128 sat_mul(U128 a, U128 b) { return (b != 0 && a > kU128Max / b) ? kU128Max : a * b; }
U128 sat_add(U128 a, U128 b) { return a > kU128Max - b ? kU128Max : a + b; }
U128 sat_shl(U128 v, int s) {
  if (v == 0 || s <= 0) return v;
  return (s >= 127 || v > (kU128Max >> s)) ? kU128Max : v << s;
}

bool is_one_of(DType t, std::initializer_list<DType> set) {
  return std::find(set.begin(), set.end(), t) != set.end();
}

int64_t max_abs_of_dtype(DType t) {
  switch (t) {
    case DType::kInt8:
      return 128;
    case DType::kUInt8:
      return 255;
    case DType::kInt16:
      return 32768;
    default:
      return int64_t{1} << 31;
  }
}

// Calls f with the weight codes as a typed pointer (int8, int16 or int32: pack_weights checks).
template <typename F>
void with_codes(const void* codes, DType t, F&& f) {
  switch (t) {
    case DType::kInt8:
      return f(static_cast<const int8_t*>(codes));
    case DType::kInt16:
      return f(static_cast<const int16_t*>(codes));
    default:
      return f(static_cast<const int32_t*>(codes));
  }
}

template <typename T>
void fill_panels(const GemmWeights& s, Layout layout, int64_t kp, int64_t panels, T* dst) {
  with_codes(s.b, s.b_dtype, [&](const auto* b) {
    const int gs = detail::group_size(layout);
    const int64_t groups = kp / gs;
    for (int64_t p = 0; p < panels; ++p) {
      for (int64_t g = 0; g < groups; ++g) {
        for (int j = 0; j < kNr; ++j) {
          for (int h = 0; h < gs; ++h) {
            const int64_t k = g * gs + h, n = p * kNr + j;
            T v = 0;
            if (k < s.k && n < s.n) v = static_cast<T>(b[k * s.stride_k + n * s.stride_n]);
            dst[((p * groups + g) * kNr + j) * gs + h] = v;
          }
        }
      }
    }
  });
}

}  // namespace

PackedWeights pack_weights(const GemmWeights& s, Isa isa) {
  quant::validate(s.a_format, "activation (data_in)");
  quant::validate(s.b_format, "weight");
  if (s.bias != nullptr) quant::validate(s.bias_format, "bias");
  if (!is_one_of(s.a_dtype, {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32})) {
    fail(
        "integer GEMM: activation codes of dtype {} are not supported (int8, uint8, int16, "
        "int32); requantize them to a format of width <= 31 (unsigned) or <= 32 (signed)",
        dtype_name(s.a_dtype));
  }
  if (!quant::dtype_holds(s.a_dtype, s.a_format)) {
    fail("integer GEMM: activation dtype {} cannot hold format {}", dtype_name(s.a_dtype),
         quant::format_name(s.a_format));
  }
  if (!is_one_of(s.b_dtype, {DType::kInt8, DType::kInt16, DType::kInt32})) {
    fail("integer GEMM: weight codes of dtype {} are not supported (int8, int16, int32)",
         dtype_name(s.b_dtype));
  }
  if (s.k < 1 || s.n < 1 || s.b == nullptr) {
    fail("integer GEMM: empty weights (k = {}, n = {})", s.k, s.n);
  }
  if (s.bias != nullptr && !is_one_of(s.bias_dtype, {DType::kInt8, DType::kUInt8, DType::kInt16,
                                                     DType::kInt32, DType::kInt64})) {
    fail("integer GEMM: bias codes must have an integer dtype, not {}", dtype_name(s.bias_dtype));
  }

  PackedWeights w;
  w.k_ = s.k;
  w.n_ = s.n;
  w.a_dtype_ = s.a_dtype;
  w.b_dtype_ = s.b_dtype;
  w.a_format_ = s.a_format;
  w.b_frac_ = s.b_format.frac;
  w.has_bias_ = s.bias != nullptr;
  w.isa_ = std::min(isa, best_isa());
  if (s.a_dtype == DType::kInt32 || s.b_dtype == DType::kInt32) {
    w.layout_ = Layout::kWide32;
  } else if (w.isa_ == Isa::kAvx512Vnni && s.b_dtype == DType::kInt8 &&
             (s.a_dtype == DType::kInt8 || s.a_dtype == DType::kUInt8)) {
    w.layout_ = Layout::kQuads;
  } else {
    w.layout_ = Layout::kPairs;
  }
  const int gs = detail::group_size(w.layout_);
  w.kp_ = (s.k + gs - 1) / gs * gs;
  w.panels_n_ = (s.n + kNr - 1) / kNr;

  // Weights: every code inside its format, and per-column sums for the bound and correction.
  w.abs_col_sum_.assign(s.n, 0);
  std::vector<int64_t> col_sum(s.n, 0);
  with_codes(s.b, s.b_dtype, [&](const auto* b) {
    const int64_t lo = s.b_format.min_code(), hi = s.b_format.max_code();
    for (int64_t n = 0; n < s.n; ++n) {  // k innermost: contiguous for Linear's [N, K]
      int64_t sum = 0;
      uint64_t abs_sum = 0;
      bool outside = false;
      for (int64_t k = 0; k < s.k; ++k) {
        const int64_t v = b[k * s.stride_k + n * s.stride_n];
        outside |= v < lo || v > hi;
        abs_sum += static_cast<uint64_t>(v < 0 ? -v : v);
        sum += v;
      }
      if (outside) {
        for (int64_t k = 0; k < s.k; ++k) {
          const int64_t v = b[k * s.stride_k + n * s.stride_n];
          if (v < lo || v > hi) {
            fail("weight code {} at (k={}, n={}) is outside format {}", v, k, n,
                 quant::format_name(s.b_format));
          }
        }
      }
      w.abs_col_sum_[n] = abs_sum;
      col_sum[n] = sum;
    }
  });
  const DType panel_dtype = w.layout_ == Layout::kWide32  ? DType::kInt32
                            : w.layout_ == Layout::kQuads ? DType::kInt8
                                                          : s.b_dtype;
  w.panel_dtype_ = panel_dtype;
  w.panels_ = Tensor({w.panels_n_ * w.kp_ * kNr}, panel_dtype);
  switch (panel_dtype) {
    case DType::kInt8:
      fill_panels(s, w.layout_, w.kp_, w.panels_n_, w.panels_.data<int8_t>());
      break;
    case DType::kInt16:
      fill_panels(s, w.layout_, w.kp_, w.panels_n_, w.panels_.data<int16_t>());
      break;
    default:
      fill_panels(s, w.layout_, w.kp_, w.panels_n_, w.panels_.data<int32_t>());
      break;
  }
  if (s.bit_pack && s.b_format.width < 8 * static_cast<int>(dtype_size(panel_dtype))) {
    // Each panel is kp * 16 codes, a whole number of bytes at any width, so panels start on
    // byte boundaries and unpack independently.
    w.code_bits_ = s.b_format.width;
    const int64_t elems = w.panels_.numel();
    Tensor bits({bit_packed_bytes(elems, w.code_bits_)}, DType::kUInt8);
    bit_pack(w.panels_.raw(), panel_dtype, elems, w.code_bits_, /*is_signed=*/true,
             bits.data<uint8_t>());
    w.panels_ = std::move(bits);
  }
  w.correction_.assign(s.n, 0);
  if (w.layout_ == Layout::kQuads && s.a_dtype == DType::kInt8) {
    for (int64_t n = 0; n < s.n; ++n) w.correction_[n] = 128 * col_sum[n];
  }

  // Binary points: F = max(fa + fb, fc); both the product sum and the bias shift left onto F.
  const int prod_frac = s.a_format.frac + s.b_format.frac;
  w.acc_frac_ = w.has_bias_ ? std::max(prod_frac, s.bias_format.frac) : prod_frac;
  w.acc_shift_ = w.acc_frac_ - prod_frac;
  w.bias_aligned_.assign(s.n, 0);
  w.bias_abs_.assign(s.n, 0);
  if (w.has_bias_) {
    w.bias_shift_ = w.acc_frac_ - s.bias_format.frac;
    for (int64_t n = 0; n < s.n; ++n) {
      const int64_t v = quant::load_code(s.bias, s.bias_dtype, n);
      if (v < s.bias_format.min_code() || v > s.bias_format.max_code()) {
        fail("bias code {} at n={} is outside format {}", v, n, quant::format_name(s.bias_format));
      }
      w.bias_abs_[n] = static_cast<uint64_t>(v < 0 ? -v : v);
      // Saturates when the shift overflows int64; accumulator_bound() then reports
      // kOverflowsInt64 and gemm() must not be called.
      w.bias_aligned_[n] = quant::rounding_shift_right(v, -w.bias_shift_, Rounding::kFloor);
    }
  }
  return w;
}

AccumulatorBound accumulator_bound(const PackedWeights& w) {
  const U128 max_a = static_cast<U128>(w.a_format().max_abs_code());
  U128 worst = 0;
  for (int64_t n = 0; n < w.n(); ++n) {
    const U128 products = sat_shl(sat_mul(max_a, w.abs_col_sum()[n]), w.acc_shift());
    const U128 bias = sat_shl(w.bias_abs()[n], w.bias_shift());
    worst = std::max(worst, sat_add(products, bias));
  }
  AccumulatorBound b;
  b.max_abs =
      worst == kU128Max ? std::numeric_limits<double>::infinity() : static_cast<double>(worst);
  if (worst <= static_cast<U128>(std::numeric_limits<int32_t>::max())) {
    b.need = AccNeed::kInt32;
  } else if (worst <= static_cast<U128>(std::numeric_limits<int64_t>::max())) {
    b.need = AccNeed::kInt64;
  } else {
    b.need = AccNeed::kOverflowsInt64;
  }
  return b;
}

DType gemm_output_dtype(const GemmParams& p) {
  switch (p.output) {
    case GemmOutput::kAccumulator:
      return p.acc == AccType::kInt32 ? DType::kInt32 : DType::kInt64;
    case GemmOutput::kRequantize:
      return quant::storage_dtype(p.out_format);
    case GemmOutput::kFloat:
      return p.post_quantize ? quant::storage_dtype(p.post_format) : DType::kFloat32;
  }
  return DType::kInt32;
}

namespace detail {

int group_size(Layout layout) {
  switch (layout) {
    case Layout::kPairs:
      return 2;
    case Layout::kQuads:
      return 4;
    case Layout::kWide32:
      return 1;
  }
  return 1;
}

TileKernel select_tile_kernel(const PackedWeights& w, AccType acc) {
  const bool b8 = w.b_dtype() == DType::kInt8;
  const Isa isa = w.isa();
#if defined(__x86_64__)
  if (w.layout() == Layout::kWide32) {
    if (isa >= Isa::kAvx2) return {kMrWideAvx2, nullptr, wide_s64_avx2, 0};
    return {kMrScalar, nullptr, wide_s64_scalar, 0};
  }
  if (w.layout() == Layout::kQuads) {
    // Per quad |sum| <= 4 * 255 * 128; blocks of 16447 quads stay inside int32.
    if (acc == AccType::kInt32) {
      return {kMrQuadsVnni, quads_s32_vnni, nullptr, 0, quads_rows_vnni, kNpAvx512};
    }
    return {kMrQuadsVnni, quads_s32_vnni, nullptr,
            std::numeric_limits<int32_t>::max() / (4 * 255 * 128)};
  }
  // Pairs: an int32 block holds (2^31 - 1) / (2 max|A| max|B|) groups; zero for int16 x int16,
  // which has its own int64 tile.
  const int64_t block = std::numeric_limits<int32_t>::max() /
                        (2 * max_abs_of_dtype(w.a_dtype()) * max_abs_of_dtype(w.b_dtype()));
  if (isa >= Isa::kAvx512Bw) {
    if (acc == AccType::kInt64 && block == 0) {
      return {kMrPairs16S64Avx512, nullptr, pairs16_s64_avx512, 0};
    }
    if (acc == AccType::kInt32) {
      return {kMrPairsAvx512,
              nullptr,
              nullptr,
              0,
              b8 ? pairs_rows_avx512<int8_t> : pairs_rows_avx512<int16_t>,
              kNpAvx512};
    }
    return {kMrPairsAvx512, b8 ? pairs_s32_avx512<int8_t> : pairs_s32_avx512<int16_t>, nullptr,
            block};
  }
  if (isa >= Isa::kAvx2) {
    if (acc == AccType::kInt64 && block == 0) {
      return {kMrPairs16S64Avx2, nullptr, pairs16_s64_avx2, 0};
    }
    if (acc == AccType::kInt32) {
      return {kMrPairsRowsAvx2,
              nullptr,
              nullptr,
              0,
              b8 ? pairs_rows_avx2<int8_t> : pairs_rows_avx2<int16_t>,
              1};
    }
    return {kMrPairsAvx2, b8 ? pairs_s32_avx2<int8_t> : pairs_s32_avx2<int16_t>, nullptr, block};
  }
#else
  (void)acc;
  (void)isa;
#endif
  if (w.layout() == Layout::kWide32) return {kMrScalar, nullptr, wide_s64_scalar, 0};
  return {kMrScalar, nullptr, b8 ? pairs_s64_scalar<int8_t> : pairs_s64_scalar<int16_t>, 0};
}

}  // namespace detail

namespace {

// Copies rows [0, rows) of A into the layout the tile kernels read, padding k to kp and the rows
// to a multiple of mr with zeros.
template <typename AT>
void prepare_rows(const AT* a, int64_t rows, int64_t rows_padded, int64_t lda,
                  const PackedWeights& w, void* dst) {
  const int64_t k = w.k(), kp = w.k_padded();
  switch (w.layout()) {
    case Layout::kPairs: {
      int16_t* d = static_cast<int16_t*>(dst);
      for (int64_t r = 0; r < rows_padded; ++r) {
        int16_t* dr = d + r * kp;
        if (r < rows) {
          for (int64_t i = 0; i < k; ++i) dr[i] = static_cast<int16_t>(a[r * lda + i]);
          for (int64_t i = k; i < kp; ++i) dr[i] = 0;
        } else {
          std::memset(dr, 0, kp * sizeof(int16_t));
        }
      }
      break;
    }
    case Layout::kQuads: {
      // vpdpbusd wants unsigned activations: int8 codes are stored as code + 128 (code ^ 0x80).
      uint8_t* d = static_cast<uint8_t*>(dst);
      const uint8_t flip = std::is_same_v<AT, int8_t> ? 0x80 : 0;
      for (int64_t r = 0; r < rows_padded; ++r) {
        uint8_t* dr = d + r * kp;
        if (r < rows) {
          for (int64_t i = 0; i < k; ++i) dr[i] = static_cast<uint8_t>(a[r * lda + i]) ^ flip;
          for (int64_t i = k; i < kp; ++i) dr[i] = 0;
        } else {
          std::memset(dr, 0, kp);
        }
      }
      break;
    }
    case Layout::kWide32: {
      int32_t* d = static_cast<int32_t*>(dst);
      for (int64_t r = 0; r < rows_padded; ++r) {
        int32_t* dr = d + r * kp;
        if (r < rows) {
          for (int64_t i = 0; i < k; ++i) dr[i] = static_cast<int32_t>(a[r * lda + i]);
        } else {
          std::memset(dr, 0, kp * sizeof(int32_t));
        }
      }
      break;
    }
  }
}

void prepare(const void* a, DType t, int64_t rows, int64_t rows_padded, int64_t lda,
             const PackedWeights& w, void* dst) {
  switch (t) {
    case DType::kInt8:
      prepare_rows(static_cast<const int8_t*>(a), rows, rows_padded, lda, w, dst);
      break;
    case DType::kUInt8:
      prepare_rows(static_cast<const uint8_t*>(a), rows, rows_padded, lda, w, dst);
      break;
    case DType::kInt16:
      prepare_rows(static_cast<const int16_t*>(a), rows, rows_padded, lda, w, dst);
      break;
    default:
      prepare_rows(static_cast<const int32_t*>(a), rows, rows_padded, lda, w, dst);
      break;
  }
}

size_t prepared_elem_size(Layout layout) {
  return layout == Layout::kPairs ? 2 : layout == Layout::kQuads ? 1 : 4;
}

// The panels [p, p + np) in the element layout, panel_bytes() apart: in place, or unpacked into
// this thread's buffer.
const std::byte* panel_at(const PackedWeights& w, int64_t p, int np = 1) {
  if (w.code_bits() == 0) {
    return static_cast<const std::byte*>(w.panels().raw()) + p * w.panel_bytes();
  }
  const int64_t elems = w.k_padded() * kNr;
  auto* dst = static_cast<std::byte*>(scratch(ScratchSlot::kGemmB, np * w.panel_bytes()));
  const size_t packed = bit_packed_bytes(elems, w.code_bits());
  for (int q = 0; q < np; ++q) {
    bit_unpack(w.panels().data<uint8_t>() + (p + q) * packed, w.code_bits(), /*is_signed=*/true,
               elems, w.panel_dtype(), dst + q * w.panel_bytes());
  }
  return dst;
}

// Raw sums of one tile (rows of the prepared block starting at `a_rows`, one panel in the
// element layout), corrected to the exact sum_k A * B as int64.
void compute_tile(const detail::TileKernel& tk, const PackedWeights& w, const std::byte* a_rows,
                  const std::byte* panel, int64_t col0, int64_t cols, int64_t* out) {
  const size_t es = prepared_elem_size(w.layout());
  const int gs = detail::group_size(w.layout());
  const int64_t groups = w.k_padded() / gs;
  const int64_t kp = w.k_padded();
  const size_t b_es = dtype_size(w.panel_dtype());
  const int64_t* corr = w.correction().data() + col0;
  const int cells = tk.mr * kNr;
  if (tk.t64 != nullptr) {
    tk.t64(a_rows, kp, panel, groups, out);
  } else if (tk.block == 0) {
    alignas(64) int32_t t[8 * kNr];
    tk.t32(a_rows, kp, panel, groups, t);
    for (int r = 0; r < tk.mr; ++r) {
      for (int64_t j = 0; j < cols; ++j) {
        // The true sum fits int32 (the caller's AccType); subtract the correction modulo 2^32.
        out[r * kNr + j] = static_cast<int32_t>(static_cast<uint32_t>(t[r * kNr + j]) -
                                                static_cast<uint32_t>(corr[j]));
      }
    }
    return;
  } else {
    alignas(64) int32_t t[8 * kNr];
    std::fill(out, out + cells, 0);
    for (int64_t g0 = 0; g0 < groups; g0 += tk.block) {
      const int64_t g1 = std::min(groups, g0 + tk.block);
      tk.t32(a_rows + g0 * gs * es, kp, panel + g0 * gs * kNr * b_es, g1 - g0, t);
      for (int c = 0; c < cells; ++c) out[c] += t[c];
    }
  }
  for (int r = 0; r < tk.mr; ++r) {
    for (int64_t j = 0; j < cols; ++j) out[r * kNr + j] -= corr[j];
  }
}

}  // namespace

namespace {

// The largest TileRows output, np * mr * 16 int32.
constexpr int kMaxRowsCells = 3 * 8 * kNr;

// Everything one gemm() call shares between its work items. parallel_for's lambda captures only
// a pointer to it, which std::function stores without allocating.
struct GemmJob {
  const std::byte* a;
  int64_t m, lda;
  const PackedWeights* w;
  void* c;
  detail::TileKernel tk;
  const Epilogue* epi;
  int64_t rows_per_block, panels, panel_chunks;
  int64_t row_cap;  // the largest rows_per_block for any m: scratch sizes depend on k only
  size_t es, a_es, a_bytes;
  bool sparse_ok = false;           // int8 x int8 quads on VNNI with an int32 accumulator
  detail::FillRows fill = nullptr;  // set: A's rows come from fill(fill_ctx, ...), not from `a`
  const void* fill_ctx = nullptr;

  // Sparse rows: when most activation quads of a row block are zero (MNIST's pixels, ReLU
  // outputs), each row multiplies only its nonzero quads, with the weights as vpdpbusd's
  // unsigned operand (gemm_tiles.h, quads_sparse_row_vnni). Returns false, having done nothing,
  // when the block is too dense for that to pay; the dense tiles then run.
  bool run_sparse(const uint8_t* prepared, int64_t rows, int64_t row0, int64_t p0, int64_t p1,
                  int64_t* tile) const {
    const int64_t kp = w->k_padded(), groups = kp / 4;
    // Per row: its nonzero quads, their count and 128 * sum(A) modulo 2^32.
    const size_t list_bytes = static_cast<size_t>(row_cap * groups) * sizeof(int32_t);
    const size_t out_bytes = 8 * detail::kSparsePanels * kNr * sizeof(int32_t);
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kGemmSparse, list_bytes + out_bytes + 2 * 8 * row_cap));
    auto* quads = reinterpret_cast<int32_t*>(base);
    auto* out = reinterpret_cast<int32_t*>(base + list_bytes);
    auto* count = reinterpret_cast<int32_t*>(base + list_bytes + out_bytes);
    auto* corr = reinterpret_cast<uint32_t*>(count + row_cap);
    // Quads past ceil(k / 4) hold only padding: never listed.
    const int64_t real_groups = (w->k() + 3) / 4;
    int64_t nonzero = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const detail::SparseRow sr =
          detail::list_nonzero_quads_avx512(prepared + r * kp, real_groups, quads + r * groups);
      count[r] = sr.count;
      corr[r] = sr.correction;
      nonzero += sr.count;
    }
    // The sparse row kernel costs about twice a dense tile per quad it multiplies.
    if (2 * nonzero > rows * real_groups) return false;
    const size_t pb = w->panel_bytes();
    // Panels per pass: each pass reads its panels once per listed quad of every row, so they
    // should stay in L1/L2-near reach (~56 KiB; 4 panels of the MNIST MLP's 784-deep first
    // layer measured best, 2 and 16 were 10-20% slower).
    const int64_t chunk = std::clamp<int64_t>((56 << 10) / static_cast<int64_t>(w->panel_bytes()),
                                              1, detail::kSparsePanels);
    for (int64_t c0 = p0; c0 < p1; c0 += chunk) {
      const int np = static_cast<int>(std::min<int64_t>(chunk, p1 - c0));
      const std::byte* panels_at = static_cast<const std::byte*>(w->panels().raw()) + c0 * pb;
      if (w->code_bits() != 0) {  // bit-packed: unpack this chunk's panels side by side
        auto* dst = static_cast<std::byte*>(scratch(ScratchSlot::kGemmB, np * pb));
        const int64_t elems = w->k_padded() * kNr;
        const size_t packed = bit_packed_bytes(elems, w->code_bits());
        for (int p = 0; p < np; ++p) {
          bit_unpack(w->panels().data<uint8_t>() + (c0 + p) * packed, w->code_bits(),
                     /*is_signed=*/true, elems, w->panel_dtype(), dst + p * pb);
        }
        panels_at = dst;
      }
      for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        const int nr = static_cast<int>(std::min<int64_t>(8, rows - r0));
        for (int r = 0; r < nr; ++r) {
          detail::quads_sparse_row_vnni(prepared + (r0 + r) * kp, quads + (r0 + r) * groups,
                                        count[r0 + r], panels_at, static_cast<int64_t>(pb), np,
                                        out + r * np * kNr);
        }
        for (int p = 0; p < np; ++p) {
          const int64_t col0 = (c0 + p) * kNr;
          const int cols = static_cast<int>(std::min<int64_t>(kNr, w->n() - col0));
          for (int r = 0; r < nr; ++r) {
            const int32_t* o = out + (r * np + p) * kNr;
            for (int j = 0; j < cols; ++j) {
              // The true sum fits int32 (the int32 accumulator): exact modulo 2^32.
              tile[r * kNr + j] = static_cast<int32_t>(static_cast<uint32_t>(o[j]) - corr[r0 + r]);
            }
          }
          epi->run(tile, nr, cols, row0 + r0, col0, c);
        }
      }
    }
    return true;
  }

  // The register-blocked tiles (TileKernel::rows_fn, an int32 accumulator): np panels at a time,
  // each against every row tile of the block, the last tile only over its real rows.
  void run_rows(const std::byte* prepared, int64_t rows, int64_t row0, int64_t p0, int64_t p1,
                int64_t* tile) const {
    const int64_t kp = w->k_padded(), groups = kp / detail::group_size(w->layout());
    const int64_t pb = static_cast<int64_t>(w->panel_bytes());
    alignas(64) int32_t t[kMaxRowsCells];
    QSEARCH_DCHECK(tk.np * tk.mr * kNr <= kMaxRowsCells);
    for (int64_t pi = p0; pi < p1; pi += tk.np) {
      const int np = static_cast<int>(std::min<int64_t>(tk.np, p1 - pi));
      const std::byte* panels_at = panel_at(*w, pi, np);
      for (int64_t r0 = 0; r0 < rows; r0 += tk.mr) {
        const int nr = static_cast<int>(std::min<int64_t>(tk.mr, rows - r0));
        tk.rows_fn(prepared + r0 * kp * es, kp, panels_at, pb, groups, np, nr, t);
        for (int q = 0; q < np; ++q) {
          const int64_t col0 = (pi + q) * kNr;
          const int cols = static_cast<int>(std::min<int64_t>(kNr, w->n() - col0));
          const int64_t* corr = w->correction().data() + col0;
          const int32_t* tq = t + q * tk.mr * kNr;
          for (int r = 0; r < nr; ++r) {
            for (int j = 0; j < cols; ++j) {
              // The true sum fits int32 (the caller's AccType): the correction modulo 2^32.
              tile[r * kNr + j] = static_cast<int32_t>(static_cast<uint32_t>(tq[r * kNr + j]) -
                                                       static_cast<uint32_t>(corr[j]));
            }
          }
          epi->run(tile, nr, cols, row0 + r0, col0, c);
        }
      }
    }
  }

  void run(int64_t begin, int64_t end) const {
    std::byte* prepared = static_cast<std::byte*>(scratch(ScratchSlot::kGemmA, a_bytes));
    alignas(64) int64_t tile[8 * kNr];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t rb = item / panel_chunks, pc = item % panel_chunks;
      const int64_t row0 = rb * rows_per_block;
      const int64_t rows = std::min(rows_per_block, m - row0);
      const int64_t rows_padded = (rows + tk.mr - 1) / tk.mr * tk.mr;
      if (fill != nullptr) {
        fill(fill_ctx, row0, rows, rows_padded, *w, prepared);
      } else {
        prepare(a + row0 * lda * a_es, w->a_dtype(), rows, rows_padded, lda, *w, prepared);
      }
      const int64_t p0 = panels * pc / panel_chunks, p1 = panels * (pc + 1) / panel_chunks;
      if (sparse_ok &&
          run_sparse(reinterpret_cast<const uint8_t*>(prepared), rows, row0, p0, p1, tile)) {
        continue;
      }
      if (tk.rows_fn != nullptr) {
        run_rows(prepared, rows, row0, p0, p1, tile);
        continue;
      }
      for (int64_t pi = p0; pi < p1; ++pi) {
        const int64_t col0 = pi * kNr;
        const int64_t cols = std::min<int64_t>(kNr, w->n() - col0);
        const std::byte* panel = panel_at(*w, pi);
        for (int64_t r0 = 0; r0 < rows; r0 += tk.mr) {
          compute_tile(tk, *w, prepared + r0 * w->k_padded() * es, panel, col0, cols, tile);
          epi->run(tile, static_cast<int>(std::min<int64_t>(tk.mr, rows - r0)),
                   static_cast<int>(cols), row0 + r0, col0, c);
        }
      }
    }
  }
};

}  // namespace

namespace {

void run_gemm(const void* a, detail::FillRows fill, const void* fill_ctx, int64_t m, int64_t lda,
              const PackedWeights& w, const GemmParams& p, void* c) {
  QSEARCH_DCHECK(lda >= w.k());
  QSEARCH_DCHECK(p.acc == AccType::kInt64 || accumulator_bound(w).need == AccNeed::kInt32);
  if (m <= 0) return;
  const Epilogue epi(w, p);
  GemmJob job;
  job.a = static_cast<const std::byte*>(a);
  job.fill = fill;
  job.fill_ctx = fill_ctx;
  job.m = m;
  job.lda = lda;
  job.w = &w;
  job.c = c;
  job.tk = detail::select_tile_kernel(w, p.acc);
  QSEARCH_CHECK(job.tk.mr > 0 && job.tk.mr <= 8);
  job.epi = &epi;
  // Row blocks of about 64 rows (a multiple of mr), as many as needed, of equal sizes: 64 rows
  // in 6-row tiles are one block of 11 tiles, not 60 + 4.
  const int64_t cap = (64 + job.tk.mr - 1) / job.tk.mr * job.tk.mr;
  const int64_t row_blocks = (m + cap - 1) / cap;
  job.rows_per_block = ((m + row_blocks - 1) / row_blocks + job.tk.mr - 1) / job.tk.mr * job.tk.mr;
  job.row_cap = cap;
  job.panels = w.num_panels();
  // Enough work items for the threads: split the panels too when there are few row blocks.
  const int64_t want = 2 * static_cast<int64_t>(num_threads());
  job.panel_chunks =
      row_blocks >= want ? 1 : std::min(job.panels, (want + row_blocks - 1) / row_blocks);
  job.es = prepared_elem_size(w.layout());
  job.a_es = dtype_size(w.a_dtype());
  job.a_bytes = static_cast<size_t>(cap * w.k_padded()) * job.es;
  job.sparse_ok = w.layout() == Layout::kQuads && w.a_dtype() == DType::kInt8 &&
                  w.panel_dtype() == DType::kInt8 && p.acc == AccType::kInt32 &&
                  job.tk.t32 != nullptr && job.tk.block == 0;
  const GemmJob* shared = &job;
  parallel_for(0, row_blocks * job.panel_chunks, 1,
               [shared](int64_t begin, int64_t end) { shared->run(begin, end); });
}

}  // namespace

void gemm(const void* a, int64_t m, int64_t lda, const PackedWeights& w, const GemmParams& p,
          void* c) {
  run_gemm(a, nullptr, nullptr, m, lda, w, p, c);
}

void detail::gemm_rows(FillRows fill, const void* ctx, int64_t m, const PackedWeights& w,
                       const GemmParams& p, void* c) {
  run_gemm(nullptr, fill, ctx, m, w.k(), w, p, c);
}

}  // namespace qsearch::kernels::fixed
