#include "data/npy.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>

#include "core/check.h"
#include "core/error.h"
#include "data/file_io.h"

namespace qsearch::data {

namespace {

constexpr const char* kNpyFix = "re-save the array with numpy.save (or numpy.savez for an .npz)";
constexpr const char* kTypeFix =
    "convert it before saving, e.g. np.save(path, a.astype(np.float32)) for inputs or "
    "a.astype(np.int64) for class labels";

[[noreturn]] void bad(const std::string& where, const std::string& what,
                      const char* fix = kNpyFix) {
  fail("{}: {}; fix: {}", where, what, fix);
}

// ---- the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } -----------

class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& where) : s_(s), where_(where) {}

  void parse(std::string* descr, bool* fortran, Shape* shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = quoted("a key");
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') {
          bad(where_, "has a structured (record) dtype, which is not supported", kTypeFix);
        }
        *descr = quoted("the 'descr' value");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (s_.substr(i_, 4) == "True") {
          *fortran = true;
          i_ += 4;
        } else if (s_.substr(i_, 5) == "False") {
          *fortran = false;
          i_ += 5;
        } else {
          bad(where_, "header's 'fortran_order' is neither True nor False");
        }
        have_fortran = true;
      } else if (key == "shape") {
        *shape = tuple();
        have_shape = true;
      } else {
        bad(where_, fmt::format("header has an unknown key '{}'", key));
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() != '}') bad(where_, "header dict is malformed (expected ',' or '}')");
    }
    if (!have_descr || !have_fortran || !have_shape) {
      bad(where_, "header lacks one of 'descr', 'fortran_order', 'shape'");
    }
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) bad(where_, fmt::format("header dict is malformed (expected '{}')", c));
    ++i_;
  }
  std::string quoted(const char* what) {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') bad(where_, fmt::format("header is malformed at {}", what));
    const size_t end = s_.find(q, i_ + 1);
    if (end == std::string_view::npos) bad(where_, "header has an unterminated string");
    std::string out(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return out;
  }
  Shape tuple() {
    expect('(');
    Shape shape;
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        return shape;
      }
      if (peek() < '0' || peek() > '9') bad(where_, "header's 'shape' is not a tuple of sizes");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) {
          bad(where_, "header's 'shape' has a size beyond int64");
        }
        v = v * 10 + (peek() - '0');
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2's long literal
      shape.push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != ')') {
        bad(where_, "header's 'shape' is not a tuple of sizes");
      }
    }
  }

  std::string_view s_;
  const std::string& where_;
  size_t i_ = 0;
};

struct ElementType {
  DType dtype;
  size_t file_size;  // bytes per element in the file
  bool is_unsigned = false;
  bool is_bool = false;
};

ElementType element_type(const std::string& descr, const std::string& where, bool* big_endian) {
  if (descr.size() < 2) bad(where, fmt::format("unsupported dtype '{}'", descr), kTypeFix);
  const char order = descr[0];
  std::string t = descr.substr(1);
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    bad(where, fmt::format("unsupported dtype '{}' (no byte-order mark)", descr), kTypeFix);
  }
  *big_endian = order == '>' || (order == '=' && std::endian::native == std::endian::big);
  if (t == "f4") return {DType::kFloat32, 4};
  if (t == "f8") return {DType::kFloat64, 8};
  if (t == "i1") return {DType::kInt8, 1};
  if (t == "u1") return {DType::kUInt8, 1};
  if (t == "b1") return {DType::kUInt8, 1, false, true};
  if (t == "i2") return {DType::kInt16, 2};
  if (t == "i4") return {DType::kInt32, 4};
  if (t == "i8") return {DType::kInt64, 8};
  if (t == "u2") return {DType::kInt32, 2, true};
  if (t == "u4") return {DType::kInt64, 4, true};
  bad(where,
      fmt::format("unsupported dtype '{}' (supported: float32, float64, int8, uint8, int16, int32, "
                  "int64, uint16, uint32, bool)",
                  descr),
      kTypeFix);
}

uint64_t load_uint(const unsigned char* p, size_t n, bool big_endian) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t b = big_endian ? k : n - 1 - k;
    v = (v << 8) | p[b];
  }
  return v;
}

// Copies element i of the file (file_size bytes at src) into dst as `et.dtype`.
void convert(const unsigned char* src, std::byte* dst, int64_t count, const ElementType& et,
             bool big_endian) {
  const size_t out = dtype_size(et.dtype);
  if (!big_endian && !et.is_unsigned && !et.is_bool) {
    std::memcpy(dst, src, static_cast<size_t>(count) * out);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    uint64_t v = load_uint(src + i * et.file_size, et.file_size, big_endian);
    if (et.is_bool) v = v != 0;
    // Little-endian store of the (sign-preserving) value's low `out` bytes.
    for (size_t b = 0; b < out; ++b) {
      dst[i * out + b] = static_cast<std::byte>(b < 8 ? (v >> (8 * b)) & 0xff : 0);
    }
  }
}

}  // namespace

namespace {

// An .npy header: where the data start, and what they are.
struct NpyHeader {
  size_t data_start = 0;
  std::string descr;
  bool fortran = false;
  Shape shape;
  ElementType et;
  bool big_endian = false;
  int64_t numel = 1;
};

// The header of `bytes` (an .npy file or a prefix of one); nullopt when the prefix is too short
// to hold it. Throws Error on a malformed header.
std::optional<NpyHeader> read_header(std::string_view bytes, const std::string& where) {
  static constexpr std::string_view kMagic = "\x93NUMPY";
  if (bytes.size() < 10) return std::nullopt;
  if (bytes.substr(0, 6) != kMagic) bad(where, "is not a NumPy .npy array (no \\x93NUMPY magic)");
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const int major = u[6];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = u[8] | (size_t{u[9]} << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return std::nullopt;
    header_len = u[8] | (size_t{u[9]} << 8) | (size_t{u[10]} << 16) | (size_t{u[11]} << 24);
    header_start = 12;
  } else {
    bad(where, fmt::format("has .npy format version {}.{} (supported: 1.0, 2.0, 3.0)", major,
                           static_cast<int>(u[7])));
  }
  if (header_len > bytes.size() - header_start) return std::nullopt;
  NpyHeader h;
  HeaderParser(bytes.substr(header_start, header_len), where).parse(&h.descr, &h.fortran, &h.shape);
  h.et = element_type(h.descr, where, &h.big_endian);
  for (int64_t d : h.shape) {
    if (d != 0 && h.numel > std::numeric_limits<int64_t>::max() / d) {
      bad(where, fmt::format("has an impossible shape {}", shape_str(h.shape)));
    }
    h.numel *= d;
  }
  h.data_start = header_start + header_len;
  return h;
}

// Whether only the first max_rows rows of h's array are read (a C-order array with more rows).
bool cuts_rows(const NpyHeader& h, int64_t max_rows) {
  return max_rows >= 0 && !h.shape.empty() && h.shape[0] > max_rows &&
         (!h.fortran || h.shape.size() < 2);
}

// How many bytes of the file a reader of its first max_rows rows needs (all of them when the
// rows are not cut); nullopt while `head` is too short to tell.
std::optional<size_t> bytes_needed(std::string_view head, size_t full_size,
                                   const std::string& where, int64_t max_rows) {
  const auto h = read_header(head, where);
  if (!h) return std::nullopt;
  if (!cuts_rows(*h, max_rows)) return full_size;
  const uint64_t row = static_cast<uint64_t>(h->numel / h->shape[0]) * h->et.file_size;
  return std::min<uint64_t>(full_size, h->data_start + row * static_cast<uint64_t>(max_rows));
}

// Parses `bytes`, the first bytes of an .npy file of full_size bytes holding at least the kept
// rows (see bytes_needed).
Tensor parse_rows(std::string_view bytes, size_t full_size, const std::string& where,
                  int64_t max_rows, int64_t* rows) {
  if (bytes.size() < 10) bad(where, "is not a NumPy .npy array (no \\x93NUMPY magic)");
  const auto header = read_header(bytes, where);
  if (!header) bad(where, "is truncated inside its header");
  NpyHeader h = *header;
  const size_t have = full_size - h.data_start;
  if (static_cast<uint64_t>(h.numel) > have / h.et.file_size) {
    bad(where, fmt::format("is truncated: shape {} of {} needs {} bytes of data, the file has {}",
                           shape_str(h.shape), h.descr,
                           static_cast<uint64_t>(h.numel) * h.et.file_size, have));
  }
  if (rows != nullptr) *rows = h.shape.empty() ? 0 : h.shape[0];
  if (cuts_rows(h, max_rows)) {
    h.numel = h.numel / h.shape[0] * max_rows;
    h.shape[0] = max_rows;
  }
  QSEARCH_CHECK(static_cast<uint64_t>(h.numel) * h.et.file_size <= bytes.size() - h.data_start);
  Tensor t(h.shape, h.et.dtype);
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data()) + h.data_start;
  const int64_t numel = h.numel;
  const Shape& shape = h.shape;
  const ElementType& et = h.et;
  const bool big_endian = h.big_endian;
  if (!h.fortran || shape.size() < 2) {
    convert(src, static_cast<std::byte*>(t.raw()), numel, et, big_endian);
    return t;
  }
  // Fortran order: the first index varies fastest in the file. Walk the file in its order,
  // keeping the C-order offset of the current index.
  const size_t rank = shape.size();
  std::vector<int64_t> c_stride(rank, 1), idx(rank, 0);
  for (size_t d = rank - 1; d > 0; --d) c_stride[d - 1] = c_stride[d] * shape[d];
  auto* dst = static_cast<std::byte*>(t.raw());
  const size_t out = dtype_size(et.dtype);
  int64_t c_off = 0;
  for (int64_t i = 0; i < numel; ++i) {
    convert(src + i * et.file_size, dst + c_off * out, 1, et, big_endian);
    for (size_t d = 0; d < rank; ++d) {
      c_off += c_stride[d];
      if (++idx[d] < shape[d]) break;
      c_off -= c_stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return t;
}

}  // namespace

Tensor parse_npy(std::string_view bytes, const std::string& where) {
  return parse_rows(bytes, bytes.size(), where, -1, nullptr);
}

Tensor read_npy(const std::string& path, int64_t max_rows, int64_t* rows) {
  FileBytes f = FileBytes::open(path, kNpyFix, /*populate=*/max_rows < 0);
  const std::string_view b = f.view();
  return parse_rows(b, b.size(), "'" + path + "'", max_rows, rows);
}

// ---- .npz ----------------------------------------------------------------------------------

namespace {

constexpr const char* kNpzFix = "re-create the archive with numpy.savez or numpy.savez_compressed";

uint64_t le(const unsigned char* p, size_t n) { return load_uint(p, n, false); }

}  // namespace

NpzFile NpzFile::open(const std::string& path) {
  NpzFile z;
  z.path_ = path;
  z.bytes_ = std::make_shared<const FileBytes>(FileBytes::open(path, kNpzFix, false));
  const std::string_view b = z.bytes_->view();
  const auto* u = reinterpret_cast<const unsigned char*>(b.data());
  const std::string where = "'" + path + "'";
  if (b.size() < 22 || b.substr(0, 2) != "PK") {
    bad(where, "is not an .npz (zip) archive", kNpzFix);
  }
  // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
  size_t eocd = std::string_view::npos;
  const size_t lowest = b.size() > 22 + 65535 ? b.size() - 22 - 65535 : 0;
  for (size_t i = b.size() - 22 + 1; i-- > lowest;) {
    if (le(u + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string_view::npos) {
    bad(where, "is truncated or no zip archive (no end-of-directory record)", kNpzFix);
  }
  uint64_t entries = le(u + eocd + 10, 2);
  uint64_t dir_size = le(u + eocd + 12, 4);
  uint64_t dir_offset = le(u + eocd + 16, 4);
  // Zip64: a locator right before the end record points at the zip64 end record.
  if (eocd >= 20 && le(u + eocd - 20, 4) == 0x07064b50) {
    const uint64_t z64 = le(u + eocd - 20 + 8, 8);
    if (z64 > b.size() || b.size() - z64 < 56 || le(u + z64, 4) != 0x06064b50) {
      bad(where, "has a damaged zip64 end-of-directory record", kNpzFix);
    }
    entries = le(u + z64 + 32, 8);
    dir_size = le(u + z64 + 40, 8);
    dir_offset = le(u + z64 + 48, 8);
  }
  if (dir_offset > b.size() || dir_size > b.size() - dir_offset) {
    bad(where, "has a central directory outside the file (truncated?)", kNpzFix);
  }
  size_t p = dir_offset;
  const size_t dir_end = dir_offset + dir_size;
  for (uint64_t e = 0; e < entries; ++e) {
    if (dir_end - p < 46 || le(u + p, 4) != 0x02014b50) {
      bad(where, "has a damaged central directory", kNpzFix);
    }
    Member m;
    const uint64_t flags = le(u + p + 8, 2);
    m.method = static_cast<uint16_t>(le(u + p + 10, 2));
    m.crc = static_cast<uint32_t>(le(u + p + 16, 4));
    m.compressed = le(u + p + 20, 4);
    m.uncompressed = le(u + p + 24, 4);
    const size_t name_len = le(u + p + 28, 2), extra_len = le(u + p + 30, 2);
    const size_t comment_len = le(u + p + 32, 2);
    m.local_offset = le(u + p + 42, 4);
    if (dir_end - p - 46 < name_len + extra_len + comment_len) {
      bad(where, "has a damaged central directory", kNpzFix);
    }
    std::string name(b.substr(p + 46, name_len));
    // Zip64 extended information: 8-byte values for the fields that are 0xffffffff, in order.
    size_t x = p + 46 + name_len;
    const size_t x_end = x + extra_len;
    while (x_end - x >= 4) {
      const uint64_t id = le(u + x, 2), len = le(u + x + 2, 2);
      if (len > x_end - x - 4) break;
      if (id == 0x0001) {
        size_t q = x + 4;
        auto next = [&](uint64_t* field) {
          if (*field != 0xffffffffu) return;
          if (x + 4 + len - q < 8) bad(where, "has a damaged zip64 extra field", kNpzFix);
          *field = le(u + q, 8);
          q += 8;
        };
        next(&m.uncompressed);
        next(&m.compressed);
        next(&m.local_offset);
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (!name.ends_with(".npy")) continue;
    m.name = name.substr(0, name.size() - 4);
    if ((flags & 1) != 0) {
      bad(where + " member '" + name + "'", "is encrypted", kNpzFix);
    }
    z.members_.push_back(std::move(m));
  }
  return z;
}

std::vector<std::string> NpzFile::names() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m.name);
  return out;
}

bool NpzFile::has(const std::string& name) const {
  return std::any_of(members_.begin(), members_.end(),
                     [&](const Member& m) { return m.name == name; });
}

namespace {

// The member's method and declared sizes, checked before anything is allocated for it: a
// damaged directory entry can declare any size up to 2^64.
void check_sizes(const NpzFile::Member& m, const std::string& where) {
  if (m.method == 0) {
    if (m.uncompressed != m.compressed) bad(where, "has inconsistent stored sizes", kNpzFix);
    return;
  }
  if (m.method != 8) {
    bad(where, fmt::format("uses zip compression method {} (supported: stored, deflate)", m.method),
        kNpzFix);
  }
  // Deflate expands at most about 1032:1.
  if (m.uncompressed / 1032 > m.compressed + 1) {
    bad(where, "declares a size its compressed data cannot hold", kNpzFix);
  }
}

// Feeds a member's bytes (its sizes checked: check_sizes) to `take` in slices of at most 8 MB:
// straight from the mapping when stored (each slice's pages are returned to the page cache once
// taken), inflated into a reused buffer when deflated. Throws Error naming `where` on a damaged
// stream.
template <typename Take>
void stream_member(const NpzFile::Member& m, const FileBytes& file, uint64_t data,
                   const std::string& where, Take&& take) {
  constexpr size_t kSlice = size_t{8} << 20;
  const std::string_view packed = file.view().substr(data, m.compressed);
  if (m.method == 0) {
    for (size_t off = 0; off < packed.size(); off += kSlice) {
      const size_t n = std::min(kSlice, packed.size() - off);
      take(packed.data() + off, n);
      file.drop(data + off, n);
    }
    return;
  }
  std::string slice(std::min<uint64_t>(kSlice, m.uncompressed), '\0');
  // Ended on every way out: `take` may throw (a damaged header in the first bytes).
  struct Inflater {
    z_stream s{};
    bool live = false;
    ~Inflater() {
      if (live) inflateEnd(&s);
    }
  } z;
  z_stream& s = z.s;
  if (inflateInit2(&s, -MAX_WBITS) != Z_OK) bad(where, "cannot start zlib", kNpzFix);
  z.live = true;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  s.avail_in = 0;
  size_t in_left = packed.size();
  uint64_t produced = 0;
  int rc = Z_OK;
  constexpr size_t kChunk = 1u << 30;
  while (rc == Z_OK) {
    if (s.avail_in == 0 && in_left > 0) {
      s.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
      in_left -= s.avail_in;
    }
    // Never more output room than the member declares: a stream that runs past it stops here.
    const size_t room = std::min<uint64_t>(slice.size(), m.uncompressed - produced);
    s.next_out = reinterpret_cast<Bytef*>(slice.data());
    s.avail_out = static_cast<uInt>(room);
    const uInt before_in = s.avail_in;
    rc = inflate(&s, Z_NO_FLUSH);
    const size_t got = room - s.avail_out;
    produced += got;
    if (got > 0) take(slice.data(), got);
    if (rc == Z_BUF_ERROR || (rc == Z_OK && s.avail_in == before_in && got == 0)) break;
  }
  if (rc != Z_STREAM_END || produced != m.uncompressed) {
    bad(where, "has a damaged deflate stream", kNpzFix);
  }
}

uLong crc_of(uLong crc, const char* p, size_t n) {
  for (size_t off = 0; off < n; off += 1u << 30) {
    const size_t k = std::min(n - off, size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p + off), static_cast<uInt>(k));
  }
  return crc;
}

}  // namespace

Tensor NpzFile::array(const std::string& name, int64_t max_rows, int64_t* rows) const {
  const auto it = std::find_if(members_.begin(), members_.end(),
                               [&](const Member& m) { return m.name == name; });
  if (it == members_.end()) {
    std::string list;
    for (const auto& m : members_) list += (list.empty() ? "" : ", ") + m.name;
    fail("'{}' has no array '{}'; its arrays: {}", path_, name, list.empty() ? "(none)" : list);
  }
  const Member& m = *it;
  const std::string where = fmt::format("'{}' member '{}.npy'", path_, m.name);
  const std::string_view b = bytes_->view();
  const auto* u = reinterpret_cast<const unsigned char*>(b.data());
  if (m.local_offset > b.size() || b.size() - m.local_offset < 30 ||
      le(u + m.local_offset, 4) != 0x04034b50) {
    bad(where, "has a damaged local header (truncated archive?)", kNpzFix);
  }
  const uint64_t data =
      m.local_offset + 30 + le(u + m.local_offset + 26, 2) + le(u + m.local_offset + 28, 2);
  if (data > b.size() || m.compressed > b.size() - data) {
    bad(where, "is truncated (its data runs past the end of the archive)", kNpzFix);
  }
  check_sizes(m, where);
  // A whole stored member is parsed in place, after its CRC.
  if (m.method == 0 && max_rows < 0) {
    uLong crc = crc32(0L, Z_NULL, 0);
    stream_member(m, *bytes_, data, where,
                  [&](const char* p, size_t n) { crc = crc_of(crc, p, n); });
    if (crc != m.crc) bad(where, "fails its CRC-32 check (damaged archive)", kNpzFix);
    const std::string_view npy = b.substr(data, m.compressed);
    Tensor t = parse_rows(npy, npy.size(), where, -1, rows);
    bytes_->drop(data, m.compressed);
    return t;
  }
  // Otherwise the bytes the kept rows need are copied out as they stream past (all of them
  // when every row is kept; the header tells how many once it has arrived).
  std::string kept;
  if (max_rows < 0) kept.reserve(m.uncompressed);
  std::optional<size_t> need;
  if (max_rows < 0) need = m.uncompressed;
  uLong crc = crc32(0L, Z_NULL, 0);
  stream_member(m, *bytes_, data, where, [&](const char* p, size_t n) {
    crc = crc_of(crc, p, n);
    if (need && kept.size() >= *need) return;
    kept.append(p, need ? std::min(n, *need - kept.size()) : n);
    if (!need) {
      need = bytes_needed(kept, m.uncompressed, where, max_rows);
      if (need && kept.size() > *need) kept.resize(*need);
      // One allocation for the kept bytes: growing by appends copied them again and again.
      if (need) kept.reserve(*need);
    }
  });
  if (crc != m.crc) bad(where, "fails its CRC-32 check (damaged archive)", kNpzFix);
  return parse_rows(kept, m.uncompressed, where, max_rows, rows);
}

}  // namespace qsearch::data
