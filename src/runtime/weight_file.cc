#include "runtime/weight_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "core/tensor_cache.h"
#include "core/tensor_storage.h"

namespace qsearch::runtime {
namespace {

constexpr uintptr_t kPage = 4096;

// The live mappings, [begin, end): release_file_pages must never drop anonymous memory (its
// contents would be lost).
std::mutex& ranges_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::pair<uintptr_t, uintptr_t>>& ranges() {
  static std::vector<std::pair<uintptr_t, uintptr_t>> r;
  return r;
}

bool on_disk(int fd) {
  struct statfs st {};
  if (fstatfs(fd, &st) != 0) return false;
  return st.f_type != TMPFS_MAGIC && st.f_type != RAMFS_MAGIC;
}

// An unlinked file in dir on a disk file system, or -1.
int open_weight_file(const std::string& dir) {
  if (dir.empty()) return -1;
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (!on_disk(fd)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const void* data, size_t n, off_t offset) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, offset);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return true;
}

}  // namespace

int64_t map_constants_to_file(ir::Graph& graph, const std::vector<std::string>& dirs,
                              size_t min_bytes) {
  std::vector<ir::ValueId> moved;
  size_t total = 0;
  for (size_t v = 0; v < graph.values().size(); ++v) {
    const Tensor& t = graph.values()[v].data;
    if (t.empty() || t.dtype() != DType::kFloat32 || t.nbytes() < min_bytes) continue;
    moved.push_back(static_cast<ir::ValueId>(v));
    total += (t.nbytes() + kPage - 1) / kPage * kPage;
  }
  if (moved.empty()) return 0;
  std::vector<std::string> candidates = dirs;
  if (const char* tmp = std::getenv("TMPDIR")) candidates.emplace_back(tmp);
  candidates.emplace_back("/tmp");
  int fd = -1;
  for (const std::string& d : candidates) {
    if ((fd = open_weight_file(d)) >= 0) break;
  }
  if (fd < 0) return 0;
  // Write everything first: a full disk leaves the graph as it was.
  off_t offset = 0;
  std::vector<off_t> offsets;
  for (ir::ValueId v : moved) {
    const Tensor& t = graph.value(v).data;
    if (!write_all(fd, t.raw(), t.nbytes(), offset)) {
      ::close(fd);
      return 0;
    }
    offsets.push_back(offset);
    offset += static_cast<off_t>((t.nbytes() + kPage - 1) / kPage * kPage);
  }
  int64_t bytes = 0;
  for (size_t i = 0; i < moved.size(); ++i) {
    Tensor& t = graph.value(moved[i]).data;
    const size_t len = (t.nbytes() + kPage - 1) / kPage * kPage;
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offsets[i]);
    if (p == MAP_FAILED) continue;  // this one stays in memory
    const auto begin = reinterpret_cast<uintptr_t>(p);
    {
      std::lock_guard<std::mutex> lock(ranges_mutex());
      ranges().emplace_back(begin, begin + len);
    }
    std::shared_ptr<std::byte[]> storage(static_cast<std::byte*>(p), [begin, len](std::byte* q) {
      {
        std::lock_guard<std::mutex> lock(ranges_mutex());
        auto& r = ranges();
        for (size_t k = 0; k < r.size(); ++k) {
          if (r[k].first == begin) {
            r.erase(r.begin() + static_cast<std::ptrdiff_t>(k));
            break;
          }
        }
      }
      ::munmap(q, len);
    });
    bytes += static_cast<int64_t>(t.nbytes());
    {
      ScopedTensorStorage use(std::move(storage));
      t = Tensor(t.shape(), t.dtype());
    }
    // The bytes written are in the page cache; the mapping's pages start out not resident.
    release_file_pages(t.raw(), t.nbytes());
  }
  ::close(fd);  // the mappings keep the file
  release_cached_tensor_blocks();
  return bytes;
}

bool in_weight_file(const void* p, size_t n) {
  const auto b = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(ranges_mutex());
  for (const auto& [lo, hi] : ranges()) {
    if (b >= lo && b + n <= hi) return true;
  }
  return false;
}

void release_file_pages(const void* p, size_t n) {
  if (n == 0 || !in_weight_file(p, n)) return;
  const auto b = reinterpret_cast<uintptr_t>(p);
  const uintptr_t first = (b + kPage - 1) / kPage * kPage;
  const uintptr_t last = (b + n) / kPage * kPage;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace qsearch::runtime
