#include "data/sha256.h"

#include <gtest/gtest.h>

#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::TempDir;
using testing::write_bytes;

TEST(Sha256, KnownVectors) {
  // FIPS 180-4 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, ChunkedUpdatesEqualOneShot) {
  std::string msg;
  for (int i = 0; i < 1000; ++i) msg += static_cast<char>(i * 31 + 7);
  for (size_t chunk : {1, 3, 63, 64, 65, 200}) {
    Sha256 h;
    for (size_t i = 0; i < msg.size(); i += chunk) {
      h.update(msg.data() + i, std::min(chunk, msg.size() - i));
    }
    EXPECT_EQ(h.hex_digest(), sha256_hex(msg)) << chunk;
  }
}

TEST(Sha256, ChecksumFileRoundTripAndMismatch) {
  TempDir dir;
  const std::string file = dir / "f.bin";
  write_bytes(file, "abc");
  verify_checksum_if_present(file, "fix");  // no .sha256: nothing to check
  EXPECT_EQ(sha256_file(file), sha256_hex("abc"));
  write_checksum_file(file, sha256_file(file));
  EXPECT_EQ(testing::read_bytes(file + ".sha256"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  f.bin\n");
  verify_checksum_if_present(file, "fix");
  write_bytes(file, "abd");
  expect_error([&] { verify_checksum_if_present(file, "re-download it"); },
               {file, "does not match", "ba7816bf", "re-download it"});
  write_bytes(file + ".sha256", "xyz  f.bin\n");
  expect_error([&] { verify_checksum_if_present(file, ""); }, {"not a SHA-256 checksum file"});
}

}  // namespace
}  // namespace qsearch::data
