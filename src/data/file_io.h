// Whole-file reads for the data loaders, plain or gzip (detected by the gzip magic bytes, not
// the file name), and small filesystem helpers.
//
//   std::string bytes = read_file("/data/mnist/t10k-images-idx3-ubyte.gz");  // decompressed
//   FileBytes csv = FileBytes::open("/data/jsc/x.csv", fix);    // mapped read-only, no copy
//   std::string_view text = csv.view();
//
// FileBytes maps a plain file read-only (the pages come straight from the page cache: no
// copy and no fresh memory to fault in, which matters for the 100+ MB JSC CSV) and falls back
// to decompressing into memory for gzip.
//
// Errors name the path: a missing or unreadable file, a truncated or corrupt gzip stream.
// `fix` is appended to each message ("run scripts/setup.sh", ...).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsearch::data {

// The file's bytes, gunzipped when it starts with the gzip magic (1f 8b). Throws Error naming
// `path` and ending with `fix` when it cannot be read or the gzip stream is damaged.
std::string read_file(const std::string& path, const std::string& fix);

// Read-only bytes of a file: mapped when plain, decompressed when gzip. Move-only.
class FileBytes {
 public:
  // populate: fault every page in at once (fast for a file read whole); false maps lazily, for
  // a reader that touches part of the file or drop()s what it has read.
  static FileBytes open(const std::string& path, const std::string& fix, bool populate = true);
  static FileBytes from_string(std::string bytes);  // owns `bytes` (tests, small documents)
  FileBytes(FileBytes&& o) noexcept;
  FileBytes& operator=(FileBytes&& o) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();
  std::string_view view() const {
    return map_ ? std::string_view(static_cast<const char*>(map_), map_size_) : owned_;
  }
  // Returns the whole pages inside view()[offset, offset + size) to the page cache (they no
  // longer count in this process's memory; a later read faults them back in, same bytes).
  // No-op for bytes held in memory (gzip, from_string).
  void drop(size_t offset, size_t size) const;

 private:
  FileBytes() = default;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::string owned_;
};

bool file_exists(const std::string& path);  // a regular file (after symlinks)
bool dir_exists(const std::string& path);

// The first of `candidates` that exists, or nullopt.
std::optional<std::string> first_existing(const std::vector<std::string>& candidates);

// "a/b" joined without doubling the slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace qsearch::data
