#include "data/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace qsearch::data {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string read_plain(const std::string& path, const std::string& fix) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail("cannot open '{}': {}; {}", path, std::strerror(errno), fix);
  struct stat st {};
  if (fstat(fileno(f.get()), &st) != 0) fail("cannot stat '{}': {}", path, std::strerror(errno));
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = std::fread(bytes.data(), 1, bytes.size(), f.get());
  if (got != bytes.size()) {
    fail("read error on '{}' ({} of {} bytes); {}", path, got, bytes.size(), fix);
  }
  return bytes;
}

// gzip keeps the uncompressed size mod 2^32 in its last four bytes: a good first reserve,
// unless the file is damaged (deflate cannot expand more than ~1032x).
size_t gzip_size_hint(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f || std::fseek(f.get(), 0, SEEK_END) != 0) return 0;
  const long compressed = std::ftell(f.get());
  if (compressed < 4 || std::fseek(f.get(), -4, SEEK_END) != 0) return 0;
  unsigned char b[4];
  if (std::fread(b, 1, 4, f.get()) != 4) return 0;
  const size_t hint = static_cast<size_t>(b[0]) | static_cast<size_t>(b[1]) << 8 |
                      static_cast<size_t>(b[2]) << 16 | static_cast<size_t>(b[3]) << 24;
  return hint <= static_cast<size_t>(compressed) * 1100 ? hint : 0;
}

std::string read_gzip(const std::string& path, const std::string& fix) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) fail("cannot open '{}': {}; {}", path, std::strerror(errno), fix);
  gzbuffer(gz, 1 << 18);
  std::string out;
  size_t hint = gzip_size_hint(path);
  out.resize(hint > 0 ? hint + 1 : size_t{1} << 20);
  size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    size_t want = std::min<size_t>(out.size() - used, size_t{1} << 30);
    int got = gzread(gz, out.data() + used, static_cast<unsigned>(want));
    if (got < 0) break;
    used += static_cast<size_t>(got);
    if (got == 0) break;
  }
  int err = Z_OK;
  const char* msg = gzerror(gz, &err);
  std::string what = msg ? msg : "";
  gzclose_r(gz);
  if (err != Z_OK && err != Z_STREAM_END) {
    fail("'{}' is not a valid gzip file ({}): truncated or corrupt; {}", path, what, fix);
  }
  out.resize(used);
  return out;
}

}  // namespace

std::string read_file(const std::string& path, const std::string& fix) {
  unsigned char magic[2] = {0, 0};
  {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) fail("cannot open '{}': {}; {}", path, std::strerror(errno), fix);
    if (std::fread(magic, 1, 2, f.get()) != 2) magic[0] = magic[1] = 0;
  }
  if (magic[0] == 0x1f && magic[1] == 0x8b) return read_gzip(path, fix);
  return read_plain(path, fix);
}

FileBytes FileBytes::open(const std::string& path, const std::string& fix, bool populate) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '{}': {}; {}", path, std::strerror(errno), fix);
  struct stat st {};
  unsigned char magic[2] = {0, 0};
  const bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  const bool gzip = ok && pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  FileBytes b;
  if (ok && !gzip && st.st_size > 0) {
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ,
                   MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
    if (m != MAP_FAILED) {
      b.map_ = m;
      b.map_size_ = static_cast<size_t>(st.st_size);
    }
  }
  ::close(fd);
  if (b.map_ == nullptr) b.owned_ = read_file(path, fix);  // gzip, empty, or mmap refused
  return b;
}

FileBytes FileBytes::from_string(std::string bytes) {
  FileBytes b;
  b.owned_ = std::move(bytes);
  return b;
}

FileBytes::FileBytes(FileBytes&& o) noexcept
    : map_(o.map_), map_size_(o.map_size_), owned_(std::move(o.owned_)) {
  o.map_ = nullptr;
  o.map_size_ = 0;
}

FileBytes& FileBytes::operator=(FileBytes&& o) noexcept {
  if (this != &o) {
    if (map_ != nullptr) munmap(map_, map_size_);
    map_ = o.map_;
    map_size_ = o.map_size_;
    owned_ = std::move(o.owned_);
    o.map_ = nullptr;
    o.map_size_ = 0;
  }
  return *this;
}

void FileBytes::drop(size_t offset, size_t size) const {
  if (map_ == nullptr || offset >= map_size_) return;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t end = std::min(map_size_, offset + size) / page * page;
  const size_t begin = (offset + page - 1) / page * page;
  if (end > begin) madvise(static_cast<char*>(map_) + begin, end - begin, MADV_DONTNEED);
}

FileBytes::~FileBytes() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<std::string> first_existing(const std::vector<std::string>& candidates) {
  for (const auto& c : candidates) {
    if (file_exists(c)) return c;
  }
  return std::nullopt;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace qsearch::data
