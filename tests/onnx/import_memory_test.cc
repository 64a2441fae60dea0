// Import frees each initializer's data in the proto once it is a Tensor, and reads files straight
// into the proto (no second buffer): the values must come through unchanged, also for an
// initializer read by several nodes and for both raw_data and float_data.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace qsearch::onnx
