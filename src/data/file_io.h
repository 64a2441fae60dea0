// Whole-file reads for the data loaders, plain or gzip (detected by the gzip magic bytes, not
// the file name), and small filesystem helpers.
//
//   std::string bytes = read_file("/data/mnist/t10k-images-idx3-ubyte.gz");  // decompressed
//
// Errors name the path: a missing or unreadable file, a truncated or corrupt gzip stream.
// `fix` is appended to each message ("run scripts/setup.sh", ...).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace qsearch::data {

// The file's bytes, gunzipped when it starts with the gzip magic (1f 8b). Throws Error naming
// `path` and ending with `fix` when it cannot be read or the gzip stream is damaged.
std::string read_file(const std::string& path, const std::string& fix);

bool file_exists(const std::string& path);  // a regular file (after symlinks)
bool dir_exists(const std::string& path);

// The first of `candidates` that exists, or nullopt.
std::optional<std::string> first_existing(const std::vector<std::string>& candidates);

// "a/b" joined without doubling the slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace qsearch::data
