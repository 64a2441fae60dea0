// Helpers shared by the data module's tests: fixture paths, temporary directories, raw
// little-endian arrays, and expecting an Error whose message contains given pieces.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/source_dir.h"

namespace qsearch::data::testing {

inline std::string fixture(const std::string& rel) {
  return std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/data/" + rel;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/qsearch-data-test-XXXXXX";
    const char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
std::vector<T> read_raw(const std::string& path) {
  const std::string b = read_bytes(path);
  EXPECT_EQ(b.size() % sizeof(T), 0u) << path;
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

// Runs fn, expects a qsearch::Error whose what() contains every piece.
inline void expect_error(const std::function<void()>& fn,
                         std::initializer_list<std::string> pieces) {
  try {
    fn();
    ADD_FAILURE() << "expected a qsearch::Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& p : pieces) {
      EXPECT_NE(what.find(p), std::string::npos) << "missing '" << p << "' in:\n" << what;
    }
  }
}

}  // namespace qsearch::data::testing
