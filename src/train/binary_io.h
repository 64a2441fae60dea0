// Little binary record helpers for checkpoints: fixed-width little-endian scalars, length-
// prefixed strings and float arrays. Readers throw Error on a short read (a truncated file).
//
//   write_u64(out, 7); write_string(out, "adam"); write_floats(out, p, n);
//   uint64_t k = read_u64(in); std::string s = read_string(in); read_floats(in, p, n);
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <string>

#include "core/error.h"

namespace qsearch::train::bin {

static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian");

inline void write_raw(std::ostream& out, const void* p, size_t n) {
  out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
}
inline void read_raw(std::istream& in, void* p, size_t n) {
  in.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) != n) fail("checkpoint is truncated");
}

inline void write_u64(std::ostream& out, uint64_t v) { write_raw(out, &v, 8); }
inline void write_i64(std::ostream& out, int64_t v) { write_raw(out, &v, 8); }
inline void write_f64(std::ostream& out, double v) { write_raw(out, &v, 8); }
inline uint64_t read_u64(std::istream& in) {
  uint64_t v;
  read_raw(in, &v, 8);
  return v;
}
inline int64_t read_i64(std::istream& in) {
  int64_t v;
  read_raw(in, &v, 8);
  return v;
}
inline double read_f64(std::istream& in) {
  double v;
  read_raw(in, &v, 8);
  return v;
}

inline void write_string(std::ostream& out, const std::string& s) {
  write_u64(out, s.size());
  write_raw(out, s.data(), s.size());
}
inline std::string read_string(std::istream& in) {
  const uint64_t n = read_u64(in);
  if (n > (1u << 20)) fail("checkpoint is corrupt (a string of {} bytes)", n);
  std::string s(n, '\0');
  read_raw(in, s.data(), n);
  return s;
}

inline void write_floats(std::ostream& out, const float* p, int64_t n) {
  write_i64(out, n);
  write_raw(out, p, static_cast<size_t>(n) * sizeof(float));
}
// Reads an array that must have exactly n elements; `what` names it in the error.
inline void read_floats(std::istream& in, float* p, int64_t n, const std::string& what) {
  const int64_t got = read_i64(in);
  if (got != n) fail("checkpoint's {} has {} values, the model needs {}", what, got, n);
  read_raw(in, p, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace qsearch::train::bin
