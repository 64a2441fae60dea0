// SHA-256 (FIPS 180-4), for the checksums `qsearch data download` stores beside each file
// (FILE.sha256, in `sha256sum` format) and verifies on every later load.
//
//   Sha256 h;
//   h.update(bytes.data(), bytes.size());
//   std::string hex = h.hex_digest();   // 64 lowercase hex digits; ends the hash
//   sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qsearch::data {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // Pads and returns the digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view bytes);
// Hash of a file's raw (not gunzipped) bytes, read in chunks. Throws Error if unreadable.
std::string sha256_file(const std::string& path);

// FILE.sha256 beside `path`: writes "<hex>  <basename>\n" / reads the hex back (nullopt-like
// empty string when there is no such file). Throws Error on a malformed checksum file.
void write_checksum_file(const std::string& path, const std::string& hex);
std::string read_checksum_file(const std::string& path);
// When FILE.sha256 exists, checks it against the file and throws Error on a mismatch, naming
// both hashes and `fix`. No checksum file: nothing to check (the file was placed by hand).
void verify_checksum_if_present(const std::string& path, const std::string& fix);

}  // namespace qsearch::data
