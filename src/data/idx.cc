#include "data/idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include "core/error.h"
#include "data/file_io.h"

namespace qsearch::data {

namespace {

uint32_t be32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}

const char* kind(int ndims) { return ndims == 3 ? "images" : "labels"; }

IdxHeader parse_header_only(const unsigned char* p, size_t size, int expect_ndims,
                            const std::string& path, const std::string& fix) {
  if (size < 4) {
    fail("'{}' is not an IDX {} file: only {} bytes; {}", path, kind(expect_ndims), size, fix);
  }
  const uint32_t magic = be32(p);
  const uint32_t want = 0x800u | static_cast<uint32_t>(expect_ndims);
  if (magic != want) {
    fail(
        "'{}' is not an IDX {} file: magic number 0x{:08x}, expected 0x{:08x} (unsigned "
        "bytes, {} dims); the file is corrupt or not the one expected; {}",
        path, kind(expect_ndims), magic, want, expect_ndims, fix);
  }
  IdxHeader h;
  h.ndims = expect_ndims;
  h.data_offset = 4 + 4 * static_cast<size_t>(expect_ndims);
  if (size < h.data_offset) {
    fail("'{}' is truncated: {} bytes, shorter than its {}-byte IDX header; {}", path, size,
         h.data_offset, fix);
  }
  for (int i = 0; i < expect_ndims; ++i) {
    const int64_t d = be32(p + 4 + 4 * i);
    if (d <= 0) fail("'{}': IDX dimension {} is {}, must be positive; {}", path, i, d, fix);
    h.dims.push_back(d);
  }
  return h;
}

// Streams an IDX file (gzread reads plain files transparently) so that the payload goes
// straight from a small buffer into its destination: no whole-file copy in memory.
class IdxStream {
 public:
  // deflate expands at most 1032:1 (zlib's FAQ, "maximum compression ratio").
  static constexpr int64_t kMaxDeflateRatio = 1032;

  IdxStream(const std::string& path, const std::string& fix) : path_(path), fix_(fix) {
    gz_ = gzopen(path.c_str(), "rb");
    if (gz_ == nullptr) fail("cannot open '{}': {}; {}", path, std::strerror(errno), fix);
    gzbuffer(gz_, 1 << 17);
  }
  ~IdxStream() { gzclose_r(gz_); }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  // expect_ndims < 0: whichever of the two MNIST kinds (1 or 3 dims) the magic says.
  IdxHeader header(int expect_ndims) {
    unsigned char buf[16] = {};
    size_t got = read(buf, 4);
    if (expect_ndims < 0) {
      if (got < 4 || buf[2] != 8 || (buf[3] != 1 && buf[3] != 3)) {
        fail("'{}' is not an MNIST IDX file (magic 0x{:08x}); {}", path_, got == 4 ? be32(buf) : 0,
             fix_);
      }
      expect_ndims = buf[3];
    }
    if (got == 4) got += read(buf + 4, 4 * static_cast<size_t>(expect_ndims));
    header_ = parse_header_only(buf, got, expect_ndims, path_, fix_);
    return header_;
  }

  // The header's dims must describe a payload this file can hold, checked before the caller
  // allocates for it: a plain file holds exactly its size minus the header, a gzip file at most
  // kMaxDeflateRatio times its size (deflate's limit). A corrupt header claiming gigabytes thus
  // fails here instead of allocating them; the exact length is still checked by payload().
  void require_payload_fits() {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // a pipe: no bound
    const auto file = static_cast<int64_t>(st.st_size);
    const bool plain = gzdirect(gz_) != 0;
    const int64_t bound =
        plain ? file - static_cast<int64_t>(header_.data_offset) : file * kMaxDeflateRatio;
    uint64_t total = 1;
    bool overflow = false;
    for (int64_t d : header_.dims) {
      overflow = overflow || __builtin_mul_overflow(total, static_cast<uint64_t>(d), &total);
    }
    const int64_t room = std::max<int64_t>(bound, 0);
    if (!overflow && total <= static_cast<uint64_t>(room)) return;
    const std::string bytes = overflow ? std::string("over 2^64") : std::to_string(total);
    if (plain) {
      fail("'{}' is truncated: its header announces {} bytes of data ({}) but only {} follow; {}",
           path_, bytes, shape_str(header_.dims), room, fix_);
    }
    fail(
        "'{}' is corrupt: its header announces {} bytes of data ({}) but the {}-byte gzip file "
        "can hold at most {}; {}",
        path_, bytes, shape_str(header_.dims), file, room, fix_);
  }

  // Calls fn(chunk, size, offset) over the payload; checks it is exactly prod(dims) bytes.
  void payload(const std::function<void(const unsigned char*, size_t, int64_t)>& fn) {
    int64_t total = 1;
    for (int64_t d : header_.dims) total *= d;
    std::vector<unsigned char> buf(size_t{1} << 20);
    int64_t done = 0;
    while (done < total) {
      const auto want = static_cast<size_t>(std::min<int64_t>(total - done, buf.size()));
      const size_t got = read(buf.data(), want);
      fn(buf.data(), got, done);
      done += static_cast<int64_t>(got);
      if (got < want) {
        fail(
            "'{}' is truncated: its header announces {} bytes of data ({}) but only {} "
            "follow; {}",
            path_, total, shape_str(header_.dims), done, fix_);
      }
    }
    int64_t extra = 0;
    for (size_t got; (got = read(buf.data(), buf.size())) > 0;) extra += got;
    if (extra > 0) {
      fail("'{}' has {} unexpected bytes after the {} its header announces ({}): corrupt; {}",
           path_, extra, total, shape_str(header_.dims), fix_);
    }
  }

 private:
  // Reads up to n bytes; fewer only at the end. A damaged gzip stream is an Error.
  size_t read(void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      const int got = gzread(gz_, static_cast<char*>(dst) + done, static_cast<unsigned>(n - done));
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    int err = Z_OK;
    const char* msg = gzerror(gz_, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
      fail("'{}' is not a valid gzip file ({}): truncated or corrupt; {}", path_, msg ? msg : "",
           fix_);
    }
    return done;
  }

  gzFile gz_;
  std::string path_, fix_;
  IdxHeader header_;
};

}  // namespace

std::vector<int64_t> peek_idx_dims(const std::string& path, const std::string& fix) {
  IdxStream s(path, fix);
  return s.header(-1).dims;
}

Dataset load_idx_pair(const std::string& name, Split split, const std::string& images_path,
                      const std::string& labels_path, const std::vector<std::string>& class_names,
                      const std::string& fix, int64_t max_samples) {
  IdxStream images(images_path, fix);
  const IdxHeader ih = images.header(3);
  images.require_payload_fits();
  IdxStream labels(labels_path, fix);
  const IdxHeader lh = labels.header(1);
  labels.require_payload_fits();
  const int64_t n = ih.dims[0], rows = ih.dims[1], cols = ih.dims[2];
  if (lh.dims[0] != n) {
    fail("'{}' has {} images but '{}' has {} labels: the two files do not belong together; {}",
         images_path, n, labels_path, lh.dims[0], fix);
  }
  const int64_t keep = max_samples > 0 ? std::min(n, max_samples) : n;
  Dataset d;
  d.name = name;
  d.split = split;
  d.num_classes = static_cast<int>(class_names.size());
  d.class_names = class_names;
  d.source = images_path + ", " + labels_path;
  d.y = Tensor({keep}, DType::kInt64);
  int64_t* y = d.y.data<int64_t>();
  labels.payload([&](const unsigned char* p, size_t size, int64_t offset) {
    for (size_t i = 0; i < size; ++i) {
      if (p[i] >= d.num_classes) {
        fail("'{}': label {} of sample {} is out of range 0..{}: corrupt file; {}", labels_path,
             static_cast<int>(p[i]), offset + static_cast<int64_t>(i), d.num_classes - 1, fix);
      }
      if (offset + static_cast<int64_t>(i) < keep) y[offset + static_cast<int64_t>(i)] = p[i];
    }
  });
  d.x = Tensor({keep, 1, rows, cols}, DType::kFloat32);
  float* x = d.x.data<float>();
  const int64_t kept_bytes = keep * rows * cols;
  images.payload([&](const unsigned char* p, size_t size, int64_t offset) {
    const int64_t stored = std::clamp<int64_t>(kept_bytes - offset, 0, static_cast<int64_t>(size));
    float* out = x + offset;
    // A plain loop the compiler vectorises; division (not * (1/255)) to match ToTensor exactly.
    for (int64_t i = 0; i < stored; ++i) out[i] = static_cast<float>(p[i]) / 255.0f;
  });
  return d;
}

}  // namespace qsearch::data
