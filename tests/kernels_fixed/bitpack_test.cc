// Bit-packed weight storage (kernels/fixed/bitpack.h, GemmWeights::bit_pack): the stream layout,
// round trips at every width and dtype, and GEMM / conv with bit-packed weights equal to the
// reference exactly on every ISA, with the stored bytes shrinking to width / 8 per code.
#include "kernels/fixed/bitpack.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/gemm.h"
#include "kernels/fixed/ref/conv2d_ref.h"
#include "kernels/fixed/ref/gemm_ref.h"
#include "kernels_fixed/tester.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::make_codes;

TEST(BitPack, StreamLayoutIsLeastSignificantBitFirst) {
  const int8_t w[4] = {-8, 7, 0, -1};
  uint8_t packed[2] = {0xAA, 0xAA};
  bit_pack(w, DType::kInt8, 4, 4, true, packed);
  EXPECT_EQ(packed[0], 0x78);
  EXPECT_EQ(packed[1], 0xF0);
  // 3-bit codes straddle bytes: 1 = 001, -1 = 111, -4 = 100 -> bits 001 111 100 (LSB first)
  const int16_t v[3] = {1, -1, -4};
  uint8_t p3[2] = {0, 0};
  bit_pack(v, DType::kInt16, 3, 3, true, p3);
  EXPECT_EQ(p3[0], 0b00111001);
  EXPECT_EQ(p3[1], 0b1);
  EXPECT_EQ(bit_packed_bytes(3, 3), 2);
}

TEST(BitPack, RoundTripsEveryWidthDtypeAndLength) {
  Rng rng(99);
  const DType dtypes[] = {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32, DType::kInt64};
  for (DType t : dtypes) {
    const int max_bits = t == DType::kInt8 || t == DType::kUInt8 ? 8 : t == DType::kInt16 ? 16 : 32;
    for (int bits = 1; bits <= max_bits; ++bits) {
      for (bool is_signed : {true, false}) {
        if (t == DType::kUInt8 && is_signed) continue;
        if (t != DType::kUInt8 && t != DType::kInt64 && !is_signed && bits == max_bits) continue;
        if (t == DType::kInt8 && !is_signed) continue;  // unsigned codes live in uint8
        const FixedFormat f{bits, 0, is_signed};
        for (int64_t n : {1, 2, 7, 8, 9, 31, 64, 257}) {
          Tensor codes =
              make_codes(t, n, f, rng, n == 9 ? testing::Fill::kExtremes : testing::Fill::kRandom);
          std::vector<uint8_t> packed(bit_packed_bytes(n, bits) + 1, 0x5C);  // guard byte
          bit_pack(codes.raw(), t, n, bits, is_signed, packed.data());
          EXPECT_EQ(packed.back(), 0x5C) << "bit_pack wrote past its stream";
          Tensor back({n}, t);
          bit_unpack(packed.data(), bits, is_signed, n, t, back.raw());
          ASSERT_TRUE(equal_exactly(
              codes.raw(), back.raw(), t, n,
              fmt::format("{} bits={} signed={} n={}", dtype_name(t), bits, is_signed, n)));
        }
      }
    }
  }
}

TEST(BitPack, GemmWithBitPackedWeightsEqualsReferenceOnEveryIsa) {
  Rng rng(7);
  struct Shape3 {
    int64_t m, k, n;
  };
  for (Shape3 s : {Shape3{1, 1, 1}, Shape3{5, 17, 3}, Shape3{70, 784, 33}, Shape3{9, 130, 16}}) {
    for (int width : {1, 2, 3, 4, 5, 7, 9, 12, 15, 17, 23}) {
      const DType b_dtype = width <= 8 ? DType::kInt8 : width <= 16 ? DType::kInt16 : DType::kInt32;
      for (DType a_dtype : {DType::kInt8, DType::kUInt8, DType::kInt16}) {
        const FixedFormat af = a_dtype == DType::kUInt8   ? FixedFormat{8, 4, false}
                               : a_dtype == DType::kInt16 ? FixedFormat{12, 6, true}
                                                          : FixedFormat{8, 4, true};
        const FixedFormat bf{width, width / 2, true}, cf{16, 8, true};
        Tensor a = make_codes(a_dtype, s.m * s.k, af, rng);
        Tensor b = make_codes(b_dtype, s.k * s.n, bf, rng);
        Tensor c = make_codes(DType::kInt16, s.n, cf, rng);
        GemmWeights spec;
        spec.b = b.raw();
        spec.b_dtype = b_dtype;
        spec.k = s.k;
        spec.n = s.n;
        spec.stride_k = 1;  // [N, K] like Linear
        spec.stride_n = s.k;
        spec.b_format = bf;
        spec.bias = c.raw();
        spec.bias_dtype = DType::kInt16;
        spec.bias_format = cf;
        spec.a_format = af;
        spec.a_dtype = a_dtype;
        GemmParams p;
        p.acc = AccType::kInt64;
        p.output = GemmOutput::kRequantize;
        p.out_format = {8, 3, true};
        Tensor ref_out({s.m * s.n}, DType::kInt8);
        ref::gemm(a.raw(), s.m, s.k, spec, p, ref_out.raw());
        for (Isa isa : supported_isas()) {
          GemmWeights packed_spec = spec;
          packed_spec.bit_pack = true;
          const PackedWeights plain = pack_weights(spec, isa);
          const PackedWeights pw = pack_weights(packed_spec, isa);
          const int elem_bits = 8 * static_cast<int>(dtype_size(pw.panel_dtype()));
          EXPECT_EQ(pw.code_bits(), width < elem_bits ? width : 0);
          EXPECT_EQ(pw.packed_bytes(),
                    width < elem_bits
                        ? plain.packed_bytes() / dtype_size(pw.panel_dtype()) * width / 8
                        : plain.packed_bytes());
          Tensor out({s.m * s.n}, DType::kInt8);
          gemm(a.raw(), s.m, s.k, pw, p, out.raw());
          ASSERT_TRUE(equal_exactly(ref_out.raw(), out.raw(), DType::kInt8, s.m * s.n,
                                    testing::describe(packed_spec, p, pw.isa(), s.m)));
        }
      }
    }
  }
}

TEST(BitPack, ConvWithBitPackedWeightsEqualsReference) {
  Rng rng(11);
  Conv2dGeometry g{.in_channels = 4,
                   .in_h = 9,
                   .in_w = 7,
                   .out_channels = 6,
                   .kernel_h = 3,
                   .kernel_w = 3,
                   .groups = 2,
                   .pad_top = 1,
                   .pad_left = 1,
                   .pad_bottom = 1,
                   .pad_right = 1};
  const int64_t batch = 3, k = 2 * 3 * 3;
  for (int width : {2, 4, 6}) {
    Conv2dWeights w;
    const FixedFormat wf{width, 1, true};
    Tensor wt = make_codes(DType::kInt8, 6 * k, wf, rng);
    Tensor bias = make_codes(DType::kInt32, 6, {20, 10, true}, rng);
    w.w = wt.raw();
    w.w_dtype = DType::kInt8;
    w.w_format = wf;
    w.bias = bias.raw();
    w.bias_dtype = DType::kInt32;
    w.bias_format = {20, 10, true};
    w.a_format = {8, 4, false};
    w.a_dtype = DType::kUInt8;
    Tensor x = make_codes(DType::kUInt8, batch * 4 * 9 * 7, w.a_format, rng);
    GemmParams p;
    p.acc = AccType::kInt32;
    p.output = GemmOutput::kFloat;
    const int64_t out_n = batch * 6 * g.out_h() * g.out_w();
    Tensor ref_out({out_n}, DType::kFloat32), out({out_n}, DType::kFloat32);
    ref::conv2d(x.raw(), batch, g, w, p, ref_out.raw());
    w.bit_pack = true;
    const PackedConv2d pc = pack_conv2d(g, w);
    EXPECT_EQ(pc.groups()[0].code_bits(), width);
    conv2d(x.raw(), batch, pc, p, out.raw());
    ASSERT_TRUE(equal_exactly(ref_out.raw(), out.raw(), DType::kFloat32, out_n,
                              fmt::format("conv width {}", width)));
  }
}

}  // namespace
}  // namespace qsearch::kernels::fixed
