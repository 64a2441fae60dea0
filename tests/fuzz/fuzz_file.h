// Shared by the file-reader fuzz targets: the readers take paths, so each input is written to a
// file of this process's own temporary directory first (one directory per process, so several
// fuzz jobs can run side by side), and removed again by the next input or at exit.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace qsearch::fuzz {

inline const std::filesystem::path& temp_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("qsearch_fuzz_" + std::to_string(static_cast<long>(::getpid())));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(temp_dir(), ec);
    });
    return d;
  }();
  return dir;
}

// Writes `bytes` to temp_dir()/name (truncating) and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = (temp_dir() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Removes every file the previous input left (e.g. SQLite's -wal and -shm files).
inline void clear_dir() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(temp_dir(), ec)) {
    std::filesystem::remove_all(e.path(), ec);
  }
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace qsearch::fuzz
