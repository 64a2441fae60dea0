// Reading a model file with its large initializers' raw_data straight into Tensor buffers.
//
// Parsing the file with protobuf puts every initializer's bytes into a std::string of the proto,
// and converting it to a Tensor needs a second buffer while the first still exists: a 64 MB
// matrix was held twice (the wide MLP's import peaked at 164 MB for 80 MB of weights). Here the
// file is walked once in protobuf's wire format (ModelProto.graph -> GraphProto.initializer ->
// TensorProto.raw_data); each raw_data of kLiftBytes or more is read from the file into a 64-byte
// aligned Tensor, and the proto parsed from the rest of the bytes gets a short marker in its
// place. float_tensor (proto.cc) hands out a view of that Tensor, so the weights exist once.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {

// Smaller raw_data stays in the proto (its copy is brief and small).
constexpr uint64_t kLiftBytes = uint64_t{64} << 10;
// A marker starts with a NUL and names no real tensor: lifted payloads are at least kLiftBytes,
// so a real raw_data of a marker's length is never looked up.
constexpr std::string_view kMarker{"\0qsearch-lifted-initializer:", 28};

thread_local LiftedData* g_lifted = nullptr;

class FileReader {
 public:
  FileReader(int fd, uint64_t size, const std::string& path)
      : fd_(fd), size_(size), path_(path), buf_(size_t{1} << 16) {}

  uint64_t pos() const { return consumed_ - (end_ - at_); }

  bool byte(uint8_t& b) {
    if (at_ == end_ && !fill()) return false;
    b = static_cast<uint8_t>(buf_[at_++]);
    return true;
  }
  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = 0;
      if (!byte(b)) return false;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // Skips n bytes (seeking past what is not buffered).
  bool skip(uint64_t n) {
    const uint64_t buffered = end_ - at_;
    if (n <= buffered) {
      at_ += static_cast<size_t>(n);
      return true;
    }
    n -= buffered;
    at_ = end_;
    if (n > size_ - consumed_) return false;
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) return false;
    consumed_ += n;
    return true;
  }
  // Copies n bytes to dst (append to `out` when dst is null).
  bool read(char* dst, uint64_t n, std::string* out = nullptr) {
    while (n > 0) {
      if (at_ == end_ && !fill()) return false;
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, end_ - at_));
      if (dst) {
        std::memcpy(dst, buf_.data() + at_, k);
        dst += k;
      } else {
        out->append(buf_.data() + at_, k);
      }
      at_ += k;
      n -= k;
    }
    return true;
  }

 private:
  bool fill() {
    if (consumed_ >= size_) return false;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf_.size(), size_ - consumed_));
    ssize_t got;
    do {
      got = ::read(fd_, buf_.data(), want);
    } while (got < 0 && errno == EINTR);
    if (got < 0) fail("cannot read ONNX model '{}': {}", path_, std::strerror(errno));
    if (got == 0) return false;  // the file shrank while read: malformed from here on
    at_ = 0;
    end_ = static_cast<size_t>(got);
    consumed_ += static_cast<uint64_t>(got);
    return true;
  }

  int fd_;
  uint64_t size_;
  const std::string& path_;
  std::vector<char> buf_;
  size_t at_ = 0, end_ = 0;
  uint64_t consumed_ = 0;
};

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

enum Level { kModel, kGraph, kTensor };

// Copies the message of bytes [r.pos(), end) to `out`, lifting as described above. False for
// bytes that are not a well-formed message at these three levels (groups included: ONNX has
// none); the caller then lets protobuf parse the file and report it.
bool walk(FileReader& r, uint64_t end, Level level, std::string& out, LiftedData& lifted) {
  while (r.pos() < end) {
    uint64_t tag = 0;
    if (!r.varint(tag)) return false;
    put_varint(out, tag);
    const uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0: {
        uint64_t v = 0;
        if (!r.varint(v)) return false;
        put_varint(out, v);
        break;
      }
      case 1:
        if (!r.read(nullptr, 8, &out)) return false;
        break;
      case 5:
        if (!r.read(nullptr, 4, &out)) return false;
        break;
      case 2: {
        uint64_t len = 0;
        if (!r.varint(len) || len > end - r.pos()) return false;
        const uint64_t sub_end = r.pos() + len;
        if ((level == kModel && field == 7) || (level == kGraph && field == 5)) {
          std::string sub;
          if (!walk(r, sub_end, level == kModel ? kGraph : kTensor, sub, lifted)) return false;
          put_varint(out, sub.size());
          out += sub;
        } else if (level == kTensor && field == 9 && len >= kLiftBytes && len % 4 == 0) {
          Tensor data({static_cast<int64_t>(len / 4)}, DType::kFloat32);
          if (!r.read(static_cast<char*>(data.raw()), len)) return false;
          std::string key(kMarker);
          key += std::to_string(lifted.tensors.size());
          put_varint(out, key.size());
          out += key;
          lifted.tensors.emplace(std::move(key), std::move(data));
        } else {
          put_varint(out, len);
          if (!r.read(nullptr, len, &out)) return false;
        }
        break;
      }
      default:
        return false;
    }
  }
  return r.pos() == end;
}

}  // namespace

bool parse_lifting(int fd, uint64_t size, const std::string& path, pb::ModelProto& model,
                   LiftedData& lifted) {
  FileReader r(fd, size, path);
  std::string rest;
  if (!walk(r, size, kModel, rest, lifted)) {
    lifted.tensors.clear();
    return false;
  }
  if (!model.ParseFromString(rest)) {
    lifted.tensors.clear();
    return false;
  }
  return true;
}

namespace {

// The graph inputs (GraphProto.input, ValueInfoProto) and initializer names (TensorProto.name)
// of the message [r.pos(), end) at `level`; everything else is skipped, initializers' data
// without reading it.
bool walk_inputs(FileReader& r, uint64_t end, Level level, std::vector<pb::ValueInfoProto>& inputs,
                 std::vector<std::string>& initializers) {
  while (r.pos() < end) {
    uint64_t tag = 0, v = 0;
    if (!r.varint(tag)) return false;
    const uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0:
        if (!r.varint(v)) return false;
        break;
      case 1:
        if (!r.skip(8)) return false;
        break;
      case 5:
        if (!r.skip(4)) return false;
        break;
      case 2: {
        uint64_t len = 0;
        if (!r.varint(len) || len > end - r.pos()) return false;
        const uint64_t sub_end = r.pos() + len;
        if ((level == kModel && field == 7) || (level == kGraph && field == 5)) {
          if (level == kGraph) initializers.emplace_back();
          if (!walk_inputs(r, sub_end, level == kModel ? kGraph : kTensor, inputs, initializers)) {
            return false;
          }
        } else if ((level == kGraph && field == 11) || (level == kTensor && field == 8)) {
          std::string bytes;
          if (!r.read(nullptr, len, &bytes)) return false;
          if (level == kTensor) {
            initializers.back() = std::move(bytes);
          } else if (!inputs.emplace_back().ParseFromString(bytes)) {
            return false;
          }
        } else if (!r.skip(len)) {
          return false;
        }
        break;
      }
      default:
        return false;
    }
  }
  return r.pos() == end;
}

}  // namespace

bool read_declared_inputs(int fd, uint64_t size, const std::string& path,
                          std::vector<pb::ValueInfoProto>& inputs,
                          std::vector<std::string>& initializers) {
  FileReader r(fd, size, path);
  return walk_inputs(r, size, kModel, inputs, initializers);
}

LiftScope::LiftScope(LiftedData& lifted) : previous_(g_lifted) { g_lifted = &lifted; }
LiftScope::~LiftScope() { g_lifted = previous_; }

const Tensor* lifted_data(const pb::TensorProto& t) {
  if (g_lifted == nullptr || !t.has_raw_data() || !t.raw_data().starts_with(kMarker)) {
    return nullptr;
  }
  auto it = g_lifted->tensors.find(t.raw_data());
  return it == g_lifted->tensors.end() ? nullptr : &it->second;
}

void forget_lifted(const pb::TensorProto& t) {
  if (lifted_data(t) != nullptr) g_lifted->tensors.erase(t.raw_data());
}

namespace {
void restore_graph(pb::GraphProto& g) {
  for (auto& t : *g.mutable_initializer()) {
    if (const Tensor* data = lifted_data(t)) {
      std::string bytes(static_cast<const char*>(data->raw()), data->nbytes());
      g_lifted->tensors.erase(t.raw_data());
      t.set_raw_data(std::move(bytes));
    }
  }
}
}  // namespace

void restore_lifted(pb::ModelProto& model) {
  if (g_lifted == nullptr || g_lifted->tensors.empty() || !model.has_graph()) return;
  restore_graph(*model.mutable_graph());
}

}  // namespace qsearch::onnx::detail
