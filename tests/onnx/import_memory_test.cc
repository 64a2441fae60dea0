// Import frees each initializer's data in the proto once it is a Tensor, and reads files straight
// into the proto (no second buffer) with large raw_data read straight into Tensors
// (import_lift.cc): the values must come through unchanged, also for an initializer read by several
// nodes and for both raw_data and float_data, and a file's import must hold its weights about once.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"

namespace qsearch::onnx {
namespace {

using testing::ModelBuilder;

std::vector<float> values(int64_t n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 7919) % 1000 - 500);
  return v;
}

// x [N, 256] -> MatMul(W0) -> MatMul(W1) -> MatMul(W0) (W0 read twice) -> Add(b): W0 as
// raw_data, W1 as float_data.
std::string bytes_prefix(const std::string& s, size_t n) { return s.substr(0, n); }

std::string model_bytes() {
  ModelBuilder mb(13, {-1, 256});
  mb.init("W1", {256, 256}, values(256 * 256, 1e-4f));
  mb.init("b", {256}, values(256, 1e-2f));
  auto* w0 = mb.model().mutable_graph()->add_initializer();
  w0->set_name("W0");
  w0->set_data_type(::onnx::TensorProto::FLOAT);
  w0->add_dims(256);
  w0->add_dims(256);
  const std::vector<float> v0 = values(256 * 256, 2e-4f);
  w0->set_raw_data(std::string(reinterpret_cast<const char*>(v0.data()), v0.size() * 4));
  mb.node("MatMul", {"x", "W0"}, {"h0"}, "/m0");
  mb.node("MatMul", {"h0", "W1"}, {"h1"}, "/m1");
  mb.node("MatMul", {"h1", "W0"}, {"h2"}, "/m2");
  mb.node("Add", {"h2", "b"}, {"y"}, "/add");
  mb.output("y");
  return mb.bytes();
}

// The constants of the graph by value name.
std::vector<std::pair<std::string, std::vector<float>>> constants(const ir::Graph& g) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const ir::Value& v : g.values()) {
    if (!v.is_constant() || v.data.dtype() != DType::kFloat32) continue;
    out.emplace_back(
        v.name, std::vector<float>(v.data.data<float>(), v.data.data<float>() + v.data.numel()));
  }
  return out;
}

TEST(ImportMemory, FileAndBytesGiveTheInitializersValuesEvenWhenReadTwice) {
  const std::string bytes = model_bytes();
  const ir::Graph from_bytes = import_model_bytes(bytes, "m.onnx");
  const std::string path = ::testing::TempDir() + "/import_memory_test.onnx";
  {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const ir::Graph from_file = import_model(path);
  std::remove(path.c_str());

  const auto a = constants(from_bytes), b = constants(from_file);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second, b[i].second) << a[i].first;
  }
  // Both MatMuls reading W0 got its values (the second from the cached entry, after the proto's
  // copy was freed), as did W1 (float_data) and b.
  const std::vector<float> w0 = values(256 * 256, 2e-4f), w1 = values(256 * 256, 1e-4f);
  int w0_reads = 0, w1_reads = 0;
  for (const ir::Node& n : from_file.nodes()) {
    for (ir::ValueId in : n.inputs) {
      const ir::Value& v = from_file.value(in);
      if (!v.is_constant() || v.data.numel() != 256 * 256) continue;
      const std::vector<float> got(v.data.data<float>(), v.data.data<float>() + v.data.numel());
      if (got == w0) ++w0_reads;
      if (got == w1) ++w1_reads;
    }
  }
  EXPECT_EQ(w0_reads, 2);
  EXPECT_EQ(w1_reads, 1);
}

std::string write_temp(const std::string& bytes, const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// x [N, k] -> MatMul(W [k, n], raw_data) -> y at `opset`.
std::string matmul_model(int opset, int64_t k, int64_t n, const std::vector<float>& w,
                         size_t cut_bytes = 0) {
  ModelBuilder mb(opset, {-1, k});
  auto* t = mb.model().mutable_graph()->add_initializer();
  t->set_name("W");
  t->set_data_type(::onnx::TensorProto::FLOAT);
  t->add_dims(k);
  t->add_dims(n);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(w.data()), w.size() * 4 - cut_bytes));
  mb.node("MatMul", {"x", "W"}, {"y"}, "/m");
  mb.output("y");
  return mb.bytes();
}

// A file and the same bytes in memory give the same large raw_data values, also through ONNX's
// version converter (opset 9 -> 13, which needs the data back in the proto), and the same error
// for a large raw_data of the wrong length.
TEST(ImportMemory, LargeRawDataFromAFileEqualsTheBytesPathAtEveryOpsetAndInErrors) {
  const std::vector<float> w = values(512 * 300, 1e-3f);  // 600 KB: read into its Tensor
  for (int opset : {9, 13}) {
    const std::string bytes = matmul_model(opset, 512, 300, w);
    const std::string path = write_temp(bytes, "import_memory_lift.onnx");
    const auto a = constants(import_model_bytes(bytes, "m.onnx"));
    const auto b = constants(import_model(path));
    std::remove(path.c_str());
    ASSERT_EQ(a.size(), 1u) << "opset " << opset;
    ASSERT_EQ(b.size(), 1u) << "opset " << opset;
    EXPECT_EQ(b[0].second, w) << "opset " << opset;
    EXPECT_EQ(a[0].second, b[0].second) << "opset " << opset;
  }
  const std::string bad = matmul_model(13, 512, 300, w, 4);
  const std::string path = write_temp(bad, "import_memory_bad.onnx");
  const std::string from_file = error_of([&] { import_model(path); });
  const std::string from_bytes = error_of([&] { import_model_bytes(bad, path); });
  std::remove(path.c_str());
  EXPECT_NE(from_file.find("initializer 'W' has 614396 bytes of data, expected 614400"),
            std::string::npos)
      << from_file;
  EXPECT_EQ(from_file, from_bytes);
  // A file cut inside the large raw_data is not a model, as protobuf says.
  const std::string cut_path =
      write_temp(bytes_prefix(matmul_model(13, 512, 300, w), 400000), "import_memory_cut.onnx");
  const std::string cut = error_of([&] { import_model(cut_path); });
  std::remove(cut_path.c_str());
  EXPECT_NE(cut.find("is not an ONNX model"), std::string::npos) << cut;
}

#if defined(__SANITIZE_ADDRESS__)
#define QSEARCH_NO_RSS_TEST 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QSEARCH_NO_RSS_TEST 1
#endif
#endif

// kB of the "VmRSS:" / "VmHWM:" line of /proc/self/status.
[[maybe_unused]] int64_t status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  }
  return -1;
}

// Importing a file with a 48 MB matrix raises the peak resident memory by about one copy of it:
// before, the proto's raw_data and the Tensor converted from it existed together (2x).
TEST(ImportMemory, AFilesLargeMatrixIsHeldOnceAtThePeak) {
#ifdef QSEARCH_NO_RSS_TEST
  GTEST_SKIP() << "resident memory under a sanitizer is not the program's";
#else
  const int64_t k = 3072, n = 4096;  // 48 MiB of float32
  std::string path;
  {
    const std::vector<float> w = values(k * n, 1e-4f);
    path = write_temp(matmul_model(13, k, n, w), "import_memory_rss.onnx");
  }
  {
    // Resets the peak (VmHWM) to the current resident size (Linux 4.0+).
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";
    reset.flush();
    if (!reset) GTEST_SKIP() << "cannot reset the peak resident size (/proc/self/clear_refs)";
  }
  const int64_t before_kb = status_kb("VmRSS:");
  ASSERT_LT(status_kb("VmHWM:") - before_kb, 4096) << "the peak was not reset";
  int64_t peak_kb = 0;
  {
    const ir::Graph g = import_model(path);
    peak_kb = status_kb("VmHWM:");
    ASSERT_EQ(constants(g).size(), 1u);
  }
  std::remove(path.c_str());
  const double weights_mb = static_cast<double>(k * n * 4) / (1 << 20);
  const double extra_mb = static_cast<double>(peak_kb - before_kb) / 1024;
  EXPECT_LT(extra_mb, 1.25 * weights_mb)
      << "peak " << extra_mb << " MB for " << weights_mb << " MB of weights";
#endif
}

}  // namespace
}  // namespace qsearch::onnx
