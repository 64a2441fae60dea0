// The int conv's quantizing store called directly (Epilogue::run_t32 and run_t32_runs on int32
// sums stored column by column, as conv2d's pixel-major tiles and depthwise blocks call it; the
// AVX2 forms of epilogue_avx2.cc, QuantizeStore), against the scalar definitions element by
// element: acc = (S << acc_shift) + bias, v = float(acc) * 2^-F, then the fused affine
// fma(v, scale[c], shift[c]), the clamp `u < lo ? lo : u`, `u > hi ? hi : u`, the SiLU, and
// quant::quantize. Sums chosen to land on rounding ties, at both ends of every code range and
// far beyond; code widths 2..16 signed and unsigned (and 20, 24); the three roundings; clamps
// that merge with the code range, that lie outside it, that are reversed or NaN; channels with
// NaN, +-inf, -0.0 and 0 scales and with finite ones only; acc_shift 0 and 3; 1..6 columns;
// full runs, split runs, runs that skip lanes and partial rows. Every element the store must not
// write keeps its canary.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/fixed/epilogue.h"
#include "kernels/vec_math.h"
#include "kernels_fixed/tester.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kMaxCols = 6;
constexpr int64_t kChannels = 13;  // columns col0 .. col0 + cols - 1 of these
constexpr int64_t kLd = 40;        // output elements per channel (ldc_n)

float silu(float u) {
  float s = 0.0f;
  vmath::map_f32(vmath::Fn::kSigmoid, &u, &s, 1);
  return u * s;
}

// Weights of bias.size() columns whose accumulator has binary point F = fa + fb + shift and whose
// aligned biases are `bias` (one k row of zero weights: only the Epilogue's fields matter).
PackedWeights make_weights(int shift, const std::vector<int32_t>& bias, Isa isa) {
  static const std::vector<int8_t> zeros(256, 0);
  const int64_t n = static_cast<int64_t>(bias.size());
  QSEARCH_CHECK(n <= 256);
  GemmWeights s;
  s.b = zeros.data();
  s.b_dtype = DType::kInt8;
  s.k = 1;
  s.n = n;
  s.stride_k = n;
  s.stride_n = 1;
  s.b_format = {8, 4, true};
  s.a_format = {8, 3, true};
  s.a_dtype = DType::kInt8;
  s.bias = bias.data();
  s.bias_dtype = DType::kInt32;
  s.bias_format = {28, 7 + shift, true};  // fc = fa + fb + shift: F = fc, acc_shift = shift
  return pack_weights(s, isa);
}

struct Post {
  const char* name;
  bool affine;
  float lo, hi;
  bool silu;
};

struct Seen {
  int64_t ties = 0, at_lo = 0, at_hi = 0, nan = 0, values = 0;
  int64_t modes[6] = {};
};

// Per-channel BatchNorm scales and shifts of n channels: random powers of two times 1 + k/64 of
// both signs, shifts on a 1/8 grid with -0; with `specials`, also infinities, NaN, +-0 and (from
// 18 channels) a subnormal-making scale.
void random_post(Rng& rng, int64_t n, bool specials, std::vector<float>* scale,
                 std::vector<float>* shift) {
  scale->assign(static_cast<size_t>(n), 0.0f);
  shift->assign(static_cast<size_t>(n), 0.0f);
  std::vector<float>& sc = *scale;
  std::vector<float>& sh = *shift;
  for (int64_t c = 0; c < n; ++c) {
    const float v = std::ldexp(1.0f + static_cast<float>(rng.uniform_int(64)) / 64.0f,
                               static_cast<int>(rng.uniform_int(25)) - 12);
    sc[c] = c % 3 == 1 ? -v : v;
    sh[c] = c % 5 == 0 ? -0.0f : (static_cast<float>(rng.uniform_int(257)) - 128.0f) / 8.0f;
  }
  if (specials) {
    sc[2] = kInf, sc[5] = -kInf, sc[7] = kNaN, sc[8] = 0.0f, sc[10] = -0.0f;
    sh[11] = kNaN, sh[13] = kInf;
    if (n > 17) sc[17] = 0x1p-140f;
  }
}

// Runs of a 16-lane tile: {first lane, lanes, output element}.
using RunSet = std::vector<std::array<int64_t, 3>>;
const std::vector<RunSet> kRunSets = {
    {{0, 16, 3}},                          // a full run (a 1x1 conv's panel)
    {{0, 14, 0}, {14, 2, 20}},             // an extended row and the next one's start
    {{0, 5, 30}, {5, 11, 1}},              // across two images
    {{3, 1, 7}, {9, 4, 12}, {15, 1, 39}},  // lanes skipped
    {{0, 1, 0}},                           // one pixel
    {{0, 15, 9}},                          // one run short of the full 16
    {{2, 14, 21}},                         // one run from lane 2
};

// A run set as the array Epilogue::run_t32_runs takes.
struct RunArray {
  int64_t runs[4][3];
  int n;
  explicit RunArray(const RunSet& rs) : n(static_cast<int>(rs.size())) {
    QSEARCH_CHECK(rs.size() <= 4);
    for (size_t q = 0; q < rs.size(); ++q) {
      for (int k = 0; k < 3; ++k) runs[q][k] = rs[q][k];
    }
  }
};

// Element i of both outputs (n elements of dtype t: float32 or a code type) set to canary(i),
// so that a store writing where it should not shows.
template <typename Canary>
void fill_canaries(Tensor& got, Tensor& want, DType t, int64_t n, Canary canary) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = canary(i);
    if (t == DType::kFloat32) {
      got.data<float>()[i] = want.data<float>()[i] = static_cast<float>(c);
    } else {
      quant::store_code(got.raw(), t, i, c);
      quant::store_code(want.raw(), t, i, c);
    }
  }
}

// The sums of one tile: lane r of column j at tile[j * 16 + r]. Around the ties of the codes'
// grid (F - frac = d binary places below the accumulator's), the code range's ends and int32's.
std::vector<int32_t> make_tile(int d, int shift, const FixedFormat& f, Rng& rng) {
  std::vector<int32_t> t(kMaxCols * 16 + 16);
  const int64_t lim = (int64_t{1} << (30 - shift)) - 1;  // (S << shift) + bias fits int32
  for (auto& v : t) {
    int64_t s = 0;
    switch (rng.uniform_int(6)) {
      case 0:  // an exact tie of the unscaled value: S = (k + 1/2) 2^(d - shift)
        s = d > shift
                ? ((static_cast<int64_t>(rng.uniform_int(41)) - 20) * 2 + 1) << (d - shift - 1)
                : static_cast<int64_t>(rng.uniform_int(41)) - 20;
        break;
      case 1:  // near the ends of the code range (unscaled)
        s = ((rng.uniform_int(2) ? f.max_code() : f.min_code()) << std::max(0, d - shift)) +
            static_cast<int64_t>(rng.uniform_int(9)) - 4;
        break;
      case 2:  // far outside
        s = rng.uniform_int(2) ? lim : -lim;
        break;
      default:
        s = static_cast<int64_t>(rng.uniform_int(1 << 12)) - (1 << 11);
        break;
    }
    v = static_cast<int32_t>(std::clamp<int64_t>(s, -lim, lim));
  }
  return t;
}

TEST(IntEpilogueStore, QuantizingStoreEqualsTheScalarDefinitions) {
  Rng rng(1414);
  const Post posts[] = {
      {"none", false, -kInf, kInf, false},      {"affine", true, -kInf, kInf, false},
      {"relu", true, 0.0f, kInf, false},        {"relu6", true, 0.0f, 6.0f, false},
      {"clip", true, -1.5f, 2.0f, false},       {"-0 clip", true, -0.0f, 0.75f, false},
      {"reversed", true, 2.0f, -1.0f, false},   {"nan lo", true, kNaN, 6.0f, false},
      {"above", true, 3000.0f, 4000.0f, false}, {"below", true, -4000.0f, -3000.0f, false},
      {"silu", true, -kInf, kInf, true},        {"clip silu", true, -1.5f, 2.0f, true},
  };
  std::vector<std::pair<int, bool>> widths;
  for (int w = 2; w <= 16; ++w) widths.push_back({w, true}), widths.push_back({w - 1, false});
  widths.push_back({16, false});
  widths.push_back({20, true});
  widths.push_back({24, true});
  widths.push_back({23, false});
  const quant::Rounding roundings[] = {quant::Rounding::kHalfToEven,
                                       quant::Rounding::kHalfAwayFromZero, quant::Rounding::kFloor};
  Seen seen;
  int64_t checks = 0;
  for (Isa isa : supported_isas()) {
    for (int shift : {0, 3}) {
      std::vector<int32_t> bias(kChannels);
      for (auto& b : bias) b = static_cast<int32_t>(rng.uniform_int(4001)) - 2000;
      const PackedWeights w = make_weights(shift, bias, isa);
      ASSERT_EQ(w.acc_shift(), shift);
      const int acc_frac = w.acc_frac();
      for (int specials = 0; specials < 3; ++specials) {
        // Per channel: dyadic scales (ties survive the affine), negative ones; with specials 1
        // one +inf, one -inf, one NaN, one 0 and one -0.0 scale and a NaN shift; with specials
        // 2 two tiny scales whose product with 2^-F is not exact (QuantizeStore::kMerged).
        std::vector<float> scale(kChannels), shift_v(kChannels);
        for (int64_t c = 0; c < kChannels; ++c) {
          const float s = std::ldexp(1.0f, static_cast<int>(rng.uniform_int(5)) - 2);
          scale[c] = c % 3 == 1 ? -s : s;
          shift_v[c] = c % 4 == 0   ? -0.0f
                       : c % 4 == 1 ? 0.0f
                                    : std::ldexp(static_cast<float>(rng.uniform_int(33)) - 16.0f,
                                                 -static_cast<int>(rng.uniform_int(6)));
        }
        if (specials == 2) {
          // Channels 4 and 9 (shifts -0.0 and 0.0): v * scale is a tiny nonzero, which floor
          // tells apart from the +-0 of a scale * 2^-F rounded to 0.
          scale[4] = 0x1p-143f;
          scale[9] = -0x1.8p-143f;
        }
        if (specials == 1) {
          scale[2] = kInf, scale[5] = -kInf, scale[7] = kNaN, scale[8] = 0.0f, scale[10] = -0.0f;
          shift_v[11] = kNaN;
        }
        for (const Post& post : posts) {
          for (const auto& [width, is_signed] : widths) {
            const int d = static_cast<int>(rng.uniform_int(9)) - 1;  // codes' frac = F - d
            const quant::Rounding r = roundings[rng.uniform_int(3)];
            GemmParams p;
            p.acc = AccType::kInt32;
            p.output = GemmOutput::kFloat;
            p.ldc_m = 1;
            p.ldc_n = kLd;
            if (post.affine) {
              p.post_scale = scale.data();
              p.post_shift = shift_v.data();
              p.post_lo = post.lo;
              p.post_hi = post.hi;
              p.post_silu = post.silu;
            }
            p.post_quantize = true;
            p.post_format = {width, acc_frac - d, is_signed};
            p.post_rounding = r;
            const FixedFormat& f = p.post_format;
            const DType t = quant::storage_dtype(f);
            const int64_t col0 = static_cast<int64_t>(rng.uniform_int(kChannels - kMaxCols + 1));
            const Epilogue e(w, p, 0);
            ++seen.modes[static_cast<int>(e.q_store_)];
            // The store this ISA must take (widths <= 24; AVX-512 needs VL too).
            if (width <= 24 && isa >= Isa::kAvx2) {
              const Isa want_isa = isa >= Isa::kAvx512Bw && __builtin_cpu_supports("avx512vl")
                                       ? Isa::kAvx512Bw
                                       : Isa::kAvx2;
              ASSERT_EQ(e.store_isa_, want_isa) << isa_name(isa);
            }
            const std::vector<int32_t> tile = make_tile(d, shift, f, rng);
            // The code of lane r of column j, by the scalar definitions.
            auto want_code = [&](int j, int lane) {
              const int64_t c = col0 + j;
              const int32_t acc =
                  static_cast<int32_t>((static_cast<uint32_t>(tile[j * 16 + lane]) << shift) +
                                       static_cast<uint32_t>(w.bias_aligned()[c]));
              float v = static_cast<float>(acc) * std::ldexp(1.0f, -acc_frac);
              if (post.affine) {
                v = std::fma(v, scale[c], shift_v[c]);
                v = v < post.lo ? post.lo : v;
                v = v > post.hi ? post.hi : v;
                if (post.silu) v = silu(v);
              }
              const int64_t q = quant::quantize(v, f, r);
              ++seen.values;
              seen.nan += std::isnan(v);
              const float s = v * std::ldexp(1.0f, f.frac);
              seen.ties += std::isfinite(s) && s - std::floor(s) == 0.5f && q > f.min_code() &&
                           q < f.max_code();
              seen.at_lo += !std::isnan(v) && q == f.min_code();
              seen.at_hi += !std::isnan(v) && q == f.max_code();
              return q;
            };
            const int64_t canary = f.is_signed ? f.min_code() + 1 : 1;
            for (int form = 0; form < static_cast<int>(kRunSets.size()) + 3; ++form) {
              const int cols = 1 + static_cast<int>(rng.uniform_int(kMaxCols));
              Tensor got({kChannels * kLd}, t), want({kChannels * kLd}, t);
              fill_canaries(got, want, t, kChannels * kLd, [&](int64_t) { return canary; });
              std::string what;
              if (form < static_cast<int>(kRunSets.size())) {
                const auto& rs = kRunSets[static_cast<size_t>(form)];
                const RunArray ra(rs);
                for (int j = 0; j < cols; ++j) {
                  for (const auto& run : rs) {
                    for (int64_t l = 0; l < run[1]; ++l) {
                      quant::store_code(want.raw(), t, (col0 + j) * kLd + run[2] + l,
                                        want_code(j, static_cast<int>(run[0] + l)));
                    }
                  }
                }
                e.run_t32_runs(tile.data(), ra.runs, ra.n, cols, col0, got.raw());
                what = fmt::format("runs #{}", form);
              } else {
                // run_t32: `rows` lanes to rows row0.. of each column.
                const int rows = form == static_cast<int>(kRunSets.size())
                                     ? 16
                                     : 1 + static_cast<int>(rng.uniform_int(16));
                const int64_t row0 = static_cast<int64_t>(rng.uniform_int(kLd - 16 + 1));
                for (int j = 0; j < cols; ++j) {
                  for (int l = 0; l < rows; ++l) {
                    quant::store_code(want.raw(), t, (col0 + j) * kLd + row0 + l, want_code(j, l));
                  }
                }
                e.run_t32(tile.data(), rows, cols, row0, col0, got.raw());
                what = fmt::format("run_t32 rows={} row0={}", rows, row0);
              }
              ++checks;
              ASSERT_TRUE(testing::equal_exactly(
                  want.raw(), got.raw(), t, kChannels * kLd,
                  fmt::format("isa={} shift={} specials={} post={} codes={} {} store={} col0={} "
                              "cols={} {}",
                              isa_name(isa), shift, specials, post.name, quant::format_name(f),
                              quant::rounding_name(r), static_cast<int>(e.q_store_), col0, cols,
                              what)));
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checks, 5000);
  EXPECT_GT(seen.ties, 5000);
  EXPECT_GT(seen.at_lo, 5000);
  EXPECT_GT(seen.at_hi, 5000);
  EXPECT_GT(seen.nan, 1000);
  // Every form of the store ran (QuantizeStore's order).
  for (int m = 0; m < 6; ++m) EXPECT_GT(seen.modes[m], 100) << "QuantizeStore " << m;
}

// The AVX-512 stores (epilogue_avx512.cc) against the AVX2 stores (epilogue_avx2.cc) on the
// same sums, byte for byte (floats by their bits, NaNs included), for every store the Epilogue
// vectorises: the int32 accumulator, the requantized codes, the float value with no affine, the
// affine and clamp, the affine with SiLU, and the codes of every QuantizeStore form; int8 /
// uint8 / int16 / int32 codes, the three roundings, acc_shift 0 and 3, 1..16 columns, partial
// rows 1..16, and run sets with ragged, skipped and shifted lanes. The affine's scales span
// 2^-12..2^12 (and +-inf, NaN, +-0) so that the SiLU sees its saturation edges, denormals, +-inf
// and NaN. Each Epilogue must have taken the path it tests (Epilogue::store_isa_).
TEST(IntEpilogueStore, Avx512StoresEqualTheAvx2Stores) {
  if (!cpu_supports(Isa::kAvx512Bw) || !__builtin_cpu_supports("avx512vl")) {
    GTEST_SKIP() << "no AVX-512BW/VL on this CPU";
  }
  constexpr int64_t kN = 40;     // channels
  constexpr int64_t kLd16 = 56;  // output elements per channel
  Rng rng(512512);
  std::vector<RunSet> run_sets = kRunSets;
  run_sets.push_back({{1, 15, 0}});
  run_sets.push_back({{7, 9, 40}, {0, 7, 0}});
  const quant::Rounding roundings[] = {quant::Rounding::kHalfToEven,
                                       quant::Rounding::kHalfAwayFromZero, quant::Rounding::kFloor};
  const Post posts[] = {
      {"none", false, -kInf, kInf, false},    {"affine", true, -kInf, kInf, false},
      {"relu6", true, 0.0f, 6.0f, false},     {"-0 clip", true, -0.0f, 0.75f, false},
      {"reversed", true, 2.0f, -1.0f, false}, {"nan lo", true, kNaN, 6.0f, false},
      {"silu", true, -kInf, kInf, true},      {"clip silu", true, -1.5f, 2.0f, true},
      {"nan silu", true, kNaN, kInf, true},
  };
  int64_t checks = 0, modes[6] = {}, kinds[4] = {};
  for (int shift : {0, 3}) {
    std::vector<int32_t> bias(kN);
    for (auto& b : bias) b = static_cast<int32_t>(rng.uniform_int(4001)) - 2000;
    const PackedWeights w2 = make_weights(shift, bias, Isa::kAvx2);
    const PackedWeights w16 = make_weights(shift, bias, best_isa());
    ASSERT_GE(w16.isa(), Isa::kAvx512Bw);
    const int acc_frac = w2.acc_frac();
    for (int specials = 0; specials < 2; ++specials) {
      std::vector<float> scale, shift_v;
      random_post(rng, kN, specials == 1, &scale, &shift_v);
      // kind 0: int32 accumulator, 1: requantized codes, 2: float (post), 3: codes of the float.
      for (int kind = 0; kind < 4; ++kind) {
        for (const Post& post : posts) {
          if ((kind < 2 && post.affine) || (kind < 2 && &post != &posts[0])) continue;
          for (DType code : {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32}) {
            if (kind != 1 && kind != 3 && code != DType::kInt8) continue;  // no codes
            for (quant::Rounding r : roundings) {
              if (kind != 1 && kind != 3 && r != roundings[0]) continue;
              GemmParams p;
              p.acc = AccType::kInt32;
              p.ldc_m = 1;
              p.ldc_n = kLd16;
              const int width = code == DType::kInt8    ? 2 + static_cast<int>(rng.uniform_int(7))
                                : code == DType::kUInt8 ? 1 + static_cast<int>(rng.uniform_int(8))
                                : code == DType::kInt16 ? 9 + static_cast<int>(rng.uniform_int(8))
                                                        : 17 + static_cast<int>(rng.uniform_int(8));
              const bool is_signed = code != DType::kUInt8;
              DType out_t = DType::kFloat32;
              if (kind == 0) {
                p.output = GemmOutput::kAccumulator;
                out_t = DType::kInt32;
              } else if (kind == 1) {
                p.output = GemmOutput::kRequantize;
                p.out_format = {width, acc_frac - 1 - static_cast<int>(rng.uniform_int(12)),
                                is_signed};
                p.rounding = r;
                p.relu = rng.uniform_int(2) != 0;
                out_t = quant::storage_dtype(p.out_format);
              } else {
                p.output = GemmOutput::kFloat;
                if (post.affine) {
                  p.post_scale = scale.data();
                  p.post_shift = shift_v.data();
                  p.post_lo = post.lo;
                  p.post_hi = post.hi;
                  p.post_silu = post.silu;
                }
                if (kind == 3) {
                  p.post_quantize = true;
                  p.post_format = {width, acc_frac - static_cast<int>(rng.uniform_int(9)) + 1,
                                   is_signed};
                  p.post_rounding = r;
                  out_t = quant::storage_dtype(p.post_format);
                }
              }
              const Epilogue e2(w2, p, 0), e16(w16, p, 0);
              ASSERT_EQ(e2.store_isa_, Isa::kAvx2) << kind << " " << post.name;
              ASSERT_EQ(e16.store_isa_, Isa::kAvx512Bw) << kind << " " << post.name;
              ++kinds[kind];
              if (kind == 3) ++modes[static_cast<int>(e16.q_store_)];
              const FixedFormat tf =
                  kind == 1 ? p.out_format : (kind == 3 ? p.post_format : FixedFormat{16, 0, true});
              for (int form = 0; form < static_cast<int>(run_sets.size()) + 3; ++form) {
                const int cols = 1 + static_cast<int>(rng.uniform_int(16));
                const int64_t col0 = static_cast<int64_t>(rng.uniform_int(kN - cols + 1));
                const int d = static_cast<int>(rng.uniform_int(9)) - 1;
                std::vector<int32_t> tile = make_tile(d, shift, tf, rng);
                tile.resize(16 * 16 + 16);
                for (size_t i = kMaxCols * 16 + 16; i < tile.size(); ++i) {
                  tile[i] = tile[i % (kMaxCols * 16)] ^ static_cast<int32_t>(rng.uniform_int(64));
                }
                Tensor got({kN * kLd16}, out_t), want({kN * kLd16}, out_t);
                fill_canaries(got, want, out_t, kN * kLd16, [](int64_t i) { return 1 + i % 3; });
                std::string what;
                if (form < static_cast<int>(run_sets.size())) {
                  const RunArray ra(run_sets[static_cast<size_t>(form)]);
                  e2.run_t32_runs(tile.data(), ra.runs, ra.n, cols, col0, want.raw());
                  e16.run_t32_runs(tile.data(), ra.runs, ra.n, cols, col0, got.raw());
                  what = fmt::format("runs #{}", form);
                } else {
                  const int rows = form == static_cast<int>(run_sets.size())
                                       ? 16
                                       : 1 + static_cast<int>(rng.uniform_int(16));
                  const int64_t row0 = static_cast<int64_t>(rng.uniform_int(kLd16 - 16 + 1));
                  e2.run_t32(tile.data(), rows, cols, row0, col0, want.raw());
                  e16.run_t32(tile.data(), rows, cols, row0, col0, got.raw());
                  what = fmt::format("run_t32 rows={} row0={}", rows, row0);
                }
                ++checks;
                ASSERT_TRUE(testing::equal_exactly(
                    want.raw(), got.raw(), out_t, kN * kLd16,
                    fmt::format("kind={} shift={} specials={} post={} out={} {} store={} col0={} "
                                "cols={} {}",
                                kind, shift, specials, post.name, dtype_name(out_t),
                                quant::rounding_name(r), static_cast<int>(e16.q_store_), col0, cols,
                                what)));
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checks, 2000);
  for (int k = 0; k < 4; ++k) EXPECT_GT(kinds[k], 0) << "kind " << k;
  for (int m = 0; m < 6; ++m) EXPECT_GT(modes[m], 10) << "QuantizeStore " << m;
}

// The AVX-512 channel-lanes store (ChannelLanes, 16 channels of a pixel as the lanes: the
// depthwise path on small maps) against the AVX2 one, byte for byte: 1..16 channels, no affine /
// affine / clamp / SiLU / NaN clamp, float out and int8 / uint8 / int16 / int32 codes with each
// rounding, sums at the ties, the code range's ends and far beyond, per-channel scales from 2^-12
// to 2^12 and NaN / +-inf / +-0, acc_shift 0 and 3, canaries between the strided outputs.
TEST(IntEpilogueStore, Avx512ChannelLanesEqualTheAvx2Ones) {
  if (!cpu_supports(Isa::kAvx512Bw) || !__builtin_cpu_supports("avx512vl")) {
    GTEST_SKIP() << "no AVX-512BW/VL on this CPU";
  }
  Rng rng(1616);
  const Post posts[] = {
      {"none", false, -kInf, kInf, false},        {"affine", true, -kInf, kInf, false},
      {"relu6", true, 0.0f, 6.0f, false},         {"nan lo", true, kNaN, 6.0f, false},
      {"silu", true, -kInf, kInf, true},          {"clip silu", true, -1.5f, 2.0f, true},
      {"reversed silu", true, 2.0f, -1.0f, true},
  };
  const quant::Rounding roundings[] = {quant::Rounding::kHalfToEven,
                                       quant::Rounding::kHalfAwayFromZero, quant::Rounding::kFloor};
  constexpr int64_t kStride = 3;
  int64_t checks = 0;
  for (int shift : {0, 3}) {
    const int8_t zero = 0;
    std::vector<PackedWeights> g2, g16;
    std::vector<int32_t> biases(16);
    for (int c = 0; c < 16; ++c) {
      biases[c] = static_cast<int32_t>(rng.uniform_int(4001)) - 2000;
      GemmWeights s;
      s.b = &zero;
      s.b_dtype = DType::kInt8;
      s.k = 1;
      s.n = 1;
      s.stride_k = 1;
      s.stride_n = 1;
      s.b_format = {8, 4, true};
      s.a_format = {8, 3, true};
      s.a_dtype = DType::kInt8;
      s.bias = &biases[c];
      s.bias_dtype = DType::kInt32;
      s.bias_format = {28, 7 + shift, true};
      g2.push_back(pack_weights(s, Isa::kAvx2));
      g16.push_back(pack_weights(s, best_isa()));
    }
    const int acc_frac = g2[0].acc_frac();
    for (int specials = 0; specials < 2; ++specials) {
      std::vector<float> scale, shift_v;
      random_post(rng, 16, specials == 1, &scale, &shift_v);
      for (const Post& post : posts) {
        for (int out = 0; out < 5; ++out) {  // float, then int8 / uint8 / int16 / int32 codes
          for (quant::Rounding r : roundings) {
            if (out == 0 && r != roundings[0]) continue;
            GemmParams p;
            p.acc = AccType::kInt32;
            p.output = GemmOutput::kFloat;
            if (post.affine) {
              p.post_scale = scale.data();
              p.post_shift = shift_v.data();
              p.post_lo = post.lo;
              p.post_hi = post.hi;
              p.post_silu = post.silu;
            }
            const int widths[] = {0, 2 + static_cast<int>(rng.uniform_int(7)),
                                  1 + static_cast<int>(rng.uniform_int(8)),
                                  9 + static_cast<int>(rng.uniform_int(8)),
                                  17 + static_cast<int>(rng.uniform_int(8))};
            DType t = DType::kFloat32;
            FixedFormat tf{16, 0, true};
            if (out > 0) {
              p.post_quantize = true;
              p.post_format = {widths[out], acc_frac - static_cast<int>(rng.uniform_int(9)) + 1,
                               out != 2};
              p.post_rounding = r;
              t = quant::storage_dtype(p.post_format);
              tf = p.post_format;
            }
            for (int trial = 0; trial < 6; ++trial) {
              const int nc = trial == 0 ? 16 : 1 + static_cast<int>(rng.uniform_int(16));
              const ChannelLanes l2(g2.data(), nc, p, 0), l16(g16.data(), nc, p, 0);
              ASSERT_TRUE(l2.ok() && l16.ok());
              ASSERT_EQ(l2.store_isa_, Isa::kAvx2);
              ASSERT_EQ(l16.store_isa_, Isa::kAvx512Bw);
              const std::vector<int32_t> acc =
                  make_tile(static_cast<int>(rng.uniform_int(9)) - 1, shift, tf, rng);
              Tensor got({16 * kStride}, t), want({16 * kStride}, t);
              for (int64_t i = 0; i < 16 * kStride; ++i) {
                if (t == DType::kFloat32) {
                  got.data<float>()[i] = want.data<float>()[i] = 7.0f;
                } else {
                  quant::store_code(got.raw(), t, i, 1);
                  quant::store_code(want.raw(), t, i, 1);
                }
              }
              l2.run(acc.data(), want.raw(), kStride);
              l16.run(acc.data(), got.raw(), kStride);
              ++checks;
              ASSERT_TRUE(testing::equal_exactly(
                  want.raw(), got.raw(), t, 16 * kStride,
                  fmt::format("shift={} specials={} post={} out={} {} nc={}", shift, specials,
                              post.name, dtype_name(t), quant::rounding_name(r), nc)));
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checks, 1000);
}

}  // namespace
}  // namespace qsearch::kernels::fixed
