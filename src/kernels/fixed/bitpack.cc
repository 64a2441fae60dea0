#include "kernels/fixed/bitpack.h"

#include <cstring>

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

template <typename T>
void unpack_typed(const uint8_t* in, int bits, bool is_signed, int64_t n, T* out) {
  int64_t done = 0;
  if constexpr (sizeof(T) == 1) {
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
