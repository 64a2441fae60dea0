#include "kernels/fixed/bitpack.h"

#include <cstring>

#if defined(__SSSE3__)
#include <immintrin.h>
#endif

#include "core/check.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {

namespace {

inline int64_t extend(uint64_t v, int bits, bool is_signed) {
  if (!is_signed || bits == 64) return static_cast<int64_t>(v);
  const uint64_t sign = uint64_t{1} << (bits - 1);
  return static_cast<int64_t>((v ^ sign) - sign);
}

// Codes [from, n) through a 64-bit window that reads each byte once (any width, any dtype).
template <typename T>
void unpack_stream(const uint8_t* in, int bits, bool is_signed, int64_t from, int64_t n, T* out) {
  const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  const int64_t bit0 = from * bits;
  const uint8_t* p = in + bit0 / 8;
  uint64_t acc = 0;
  int have = 0;
  if (bit0 % 8 != 0) {
    acc = *p++ >> (bit0 % 8);
    have = 8 - static_cast<int>(bit0 % 8);
  }
  for (int64_t i = from; i < n; ++i) {
    while (have < bits) {
      acc |= static_cast<uint64_t>(*p++) << have;
      have += 8;
    }
    out[i] = static_cast<T>(extend(acc & mask, bits, is_signed));
    acc >>= bits;
    have -= bits;
  }
}

// 1, 2 and 4 bits into int8/uint8: whole bytes with shifts only (the compiler vectorises these),
// then the stream for a partial last byte. Returns the number of codes done.
template <typename T>
int64_t unpack_small(const uint8_t* in, int bits, int64_t n, T* out) {
  const int per = 8 / bits;
  const int64_t bytes = n / per;
  if (bits == 4) {
    for (int64_t j = 0; j < bytes; ++j) {
      const T b = static_cast<T>(in[j]);
      out[2 * j] = static_cast<T>(static_cast<T>(b << 4) >> 4);
      out[2 * j + 1] = static_cast<T>(b >> 4);
    }
  } else if (bits == 2) {
    for (int64_t j = 0; j < bytes; ++j) {
      const T b = static_cast<T>(in[j]);
      out[4 * j] = static_cast<T>(static_cast<T>(b << 6) >> 6);
      out[4 * j + 1] = static_cast<T>(static_cast<T>(b << 4) >> 6);
      out[4 * j + 2] = static_cast<T>(static_cast<T>(b << 2) >> 6);
      out[4 * j + 3] = static_cast<T>(b >> 6);
    }
  } else {
    for (int64_t j = 0; j < bytes; ++j) {
      const T b = static_cast<T>(in[j]);
      for (int t = 0; t < 8; ++t)
        out[8 * j + t] = static_cast<T>(static_cast<T>(b << (7 - t)) >> 7);
    }
  }
  return bytes * per;
}

#if defined(__SSSE3__)
// Signed 1-, 2- and 4-bit codes into int8, 16 packed bytes at a time (SSE: fields by shifts and
// masks, interleaved back into stream order, sign-extended as (f ^ s) - s with s the sign bit).
// Returns the number of codes done (a multiple of the codes in 16 bytes).
int64_t unpack_signed_simd(const uint8_t* in, int bits, int64_t n, int8_t* out) {
  const int64_t per_block = 16 * 8 / bits;
  const int64_t blocks = n / per_block;
  auto store = [&](int8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); };
  if (bits == 4) {
    const __m128i mask = _mm_set1_epi8(0x0F), sign = _mm_set1_epi8(0x08);
    for (int64_t b = 0; b < blocks; ++b) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * b));
      const __m128i lo = _mm_sub_epi8(_mm_xor_si128(_mm_and_si128(v, mask), sign), sign);
      const __m128i hi =
          _mm_sub_epi8(_mm_xor_si128(_mm_and_si128(_mm_srli_epi16(v, 4), mask), sign), sign);
      store(out + 32 * b, _mm_unpacklo_epi8(lo, hi));
      store(out + 32 * b + 16, _mm_unpackhi_epi8(lo, hi));
    }
  } else if (bits == 2) {
    const __m128i mask = _mm_set1_epi8(0x03), sign = _mm_set1_epi8(0x02);
    auto field = [&](__m128i v, int shift) {
      return _mm_sub_epi8(_mm_xor_si128(_mm_and_si128(_mm_srli_epi16(v, shift), mask), sign), sign);
    };
    for (int64_t b = 0; b < blocks; ++b) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * b));
      const __m128i f0 = field(v, 0), f1 = field(v, 2), f2 = field(v, 4), f3 = field(v, 6);
      const __m128i a0 = _mm_unpacklo_epi8(f0, f1), b0 = _mm_unpacklo_epi8(f2, f3);
      const __m128i a1 = _mm_unpackhi_epi8(f0, f1), b1 = _mm_unpackhi_epi8(f2, f3);
      int8_t* o = out + 64 * b;
      store(o, _mm_unpacklo_epi16(a0, b0));
      store(o + 16, _mm_unpackhi_epi16(a0, b0));
      store(o + 32, _mm_unpacklo_epi16(a1, b1));
      store(o + 48, _mm_unpackhi_epi16(a1, b1));
    }
  } else {  // 1 bit: a set bit is the code -1
    const __m128i bitmask = _mm_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
    for (int64_t b = 0; b < blocks; ++b) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * b));
      for (int j = 0; j < 16; j += 2) {
        // Bytes j and j + 1 each repeated 8 times, then one lane per bit.
        const __m128i rep =
            _mm_shuffle_epi8(v, _mm_setr_epi8(j, j, j, j, j, j, j, j, j + 1, j + 1, j + 1, j + 1,
                                              j + 1, j + 1, j + 1, j + 1));
        store(out + 128 * b + 8 * j, _mm_cmpeq_epi8(_mm_and_si128(rep, bitmask), bitmask));
      }
    }
  }
  return blocks * per_block;
}
#endif

template <typename T>
void unpack_typed(const uint8_t* in, int bits, bool is_signed, int64_t n, T* out) {
  int64_t done = 0;
  if constexpr (sizeof(T) == 1) {
#if defined(__SSSE3__)
    if (is_signed && (bits == 1 || bits == 2 || bits == 4)) {
      done = unpack_signed_simd(in, bits, n, reinterpret_cast<int8_t*>(out));
      in += done * bits / 8;
      out += done;
      n -= done;
      done = 0;
    }
#endif
    if (bits == 1 || bits == 2 || bits == 4) {
      // Arithmetic shifts of int8 sign-extend; logical shifts of uint8 zero-extend.
      done = is_signed ? unpack_small(in, bits, n, reinterpret_cast<int8_t*>(out))
                       : unpack_small(in, bits, n, reinterpret_cast<uint8_t*>(out));
    } else if (bits == 8) {
      std::memcpy(out, in, static_cast<size_t>(n));
      return;
    }
  }
  unpack_stream(in, bits, is_signed, done, n, out);
}

}  // namespace

void bit_pack(const void* codes, DType t, int64_t n, int bits, [[maybe_unused]] bool is_signed,
              uint8_t* out) {
  QSEARCH_CHECK(bits >= 1 && bits <= 32);
  std::memset(out, 0, static_cast<size_t>(bit_packed_bytes(n, bits)));
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = quant::load_code(codes, t, i);
    QSEARCH_DCHECK(is_signed ? (v >= -(int64_t{1} << (bits - 1)) && v < (int64_t{1} << (bits - 1)))
                             : (v >= 0 && v <= static_cast<int64_t>(mask)));
    uint64_t u = static_cast<uint64_t>(v) & mask;
    int64_t bit = i * bits;
    for (int left = bits; left > 0;) {
      const int at = static_cast<int>(bit % 8), take = std::min(left, 8 - at);
      out[bit / 8] |= static_cast<uint8_t>((u & ((uint64_t{1} << take) - 1)) << at);
      u >>= take;
      bit += take;
      left -= take;
    }
  }
}

void bit_unpack(const uint8_t* in, int bits, bool is_signed, int64_t n, DType t, void* out) {
  QSEARCH_CHECK(bits >= 1 && bits <= 32);
  switch (t) {
    case DType::kInt8:
      return unpack_typed(in, bits, is_signed, n, static_cast<int8_t*>(out));
    case DType::kUInt8:
      return unpack_typed(in, bits, is_signed, n, static_cast<uint8_t*>(out));
    case DType::kInt16:
      return unpack_typed(in, bits, is_signed, n, static_cast<int16_t*>(out));
    case DType::kInt32:
      return unpack_typed(in, bits, is_signed, n, static_cast<int32_t*>(out));
    case DType::kInt64:
      return unpack_typed(in, bits, is_signed, n, static_cast<int64_t*>(out));
    default:
      QSEARCH_CHECK(false && "integer dtype expected");
  }
}

}  // namespace qsearch::kernels::fixed
