// Bit-packed storage of fixed-point codes: n codes of `bits` bits each, back to back.
//
// Code i occupies bits [i * bits, (i + 1) * bits) of the byte stream, least significant bit
// first (byte j holds stream bits 8j .. 8j + 7, bit 0 = the lowest). A signed code is stored as
// its two's complement truncated to `bits` bits and sign-extended on unpacking; an unsigned code
// as itself. The stream is ceil(n * bits / 8) bytes. Packing is exact for every code inside the
// `bits`-bit range of its signedness; nothing is rounded.
//
//   int8_t w[4] = {-8, 7, 0, -1};              // s4 codes
//   uint8_t packed[2];
//   bit_pack(w, DType::kInt8, 4, 4, true, packed);   // packed = {0x78, 0xF0}
//   int8_t back[4];
//   bit_unpack(packed, 4, true, 4, DType::kInt8, back);  // back == w
//
// The integer GEMM stores weight panels this way (GemmWeights::bit_pack) and unpacks one panel at
// a time into the element layout its tile kernels read; 1-, 2- and 4-bit codes into int8 take a
// vectorisable path.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace qsearch::kernels::fixed {

// Bytes of n codes of `bits` bits.
inline int64_t bit_packed_bytes(int64_t n, int bits) { return (n * bits + 7) / 8; }

// Packs n codes of integer dtype t (each inside the `bits`-bit range of its signedness) into
// `out` (bit_packed_bytes(n, bits) bytes, fully written). 1 <= bits <= 32.
void bit_pack(const void* codes, DType t, int64_t n, int bits, bool is_signed, uint8_t* out);

// The inverse: n codes from `in` into `out` of integer dtype t (which must hold them).
void bit_unpack(const uint8_t* in, int bits, bool is_signed, int64_t n, DType t, void* out);

}  // namespace qsearch::kernels::fixed
