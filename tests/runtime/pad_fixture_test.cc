// Issue 8 item 16 on PyTorch's own export (tools/make_pad_fixtures.py): F.pad before a Conv and
// before an F.avg_pool2d, and F.avg_pool2d's default export (an all-zero Pad before the
// AveragePool), imported with the Pads folded away, give PyTorch's logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/";

TEST(PadFixture, TorchPadsFoldIntoConvAndAveragePoolWithTorchLogits) {
  std::ifstream in(kDir + "pad_pool_ref.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json ref = nlohmann::json::parse(in);
  // The export really has Pads, one of them all zero (avg_pool2d's).
  const auto& pads = ref.at("pads");
  ASSERT_GE(pads.size(), 2u) << ref.at("ops").dump();
  bool all_zero = false;
  for (const auto& p : pads) {
    all_zero = all_zero || std::all_of(p.begin(), p.end(), [](const auto& v) { return v == 0; });
  }
  EXPECT_TRUE(all_zero) << pads.dump();

  const ir::Graph g = onnx::import_model(kDir + ref.at("model").get<std::string>());
  std::vector<const ir::Node*> convs, pools;
  for (const ir::Node& n : g.nodes()) {
    if (n.kind == ir::OpKind::kConv) convs.push_back(&n);
    if (n.kind == ir::OpKind::kAveragePool) pools.push_back(&n);
  }
  ASSERT_EQ(convs.size(), 1u) << ir::to_string(g);
  ASSERT_EQ(pools.size(), 2u) << ir::to_string(g);
  // F.pad(x, (1, 2, 1, 0)): left 1, right 2, top 1, bottom 0 -> {top, left, bottom, right}.
  EXPECT_EQ(std::get<ir::ConvAttrs>(convs[0]->attrs).pads, (std::array<int64_t, 4>{1, 1, 0, 2}));
  EXPECT_EQ(std::get<ir::PoolAttrs>(pools[0]->attrs).pads, (std::array<int64_t, 4>{0, 0, 0, 0}));
  const auto& second = std::get<ir::PoolAttrs>(pools[1]->attrs);
  EXPECT_EQ(second.pads, (std::array<int64_t, 4>{0, 1, 1, 1}));  // F.pad(., (1, 1, 0, 1))
  EXPECT_TRUE(second.count_include_pad);

  const auto& shape = ref.at("input_shape");
  const int64_t n = shape[0].get<int64_t>();
  Tensor x({n, shape[1].get<int64_t>(), shape[2].get<int64_t>(), shape[3].get<int64_t>()},
           DType::kFloat32);
  const auto& values = ref.at("input");
  ASSERT_EQ(static_cast<int64_t>(values.size()), x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = values[i].get<float>();
  for (bool reference : {false, true}) {
    Executor ex(make_plan(g, {.max_batch = n, .use_reference_kernels = reference}));
    const Tensor& y = ex.run(x);
    const auto& logits = ref.at("logits");
    ASSERT_EQ(y.dim(0), n);
    for (int64_t i = 0; i < n; ++i) {
      double scale = 1;
      for (const auto& v : logits[i]) scale = std::max(scale, std::fabs(v.get<double>()));
      for (int64_t j = 0; j < y.dim(1); ++j) {
        EXPECT_NEAR(y.data<float>()[i * y.dim(1) + j], logits[i][j].get<double>(), 1e-5 * scale)
            << "row " << i << " class " << j << (reference ? " (reference kernels)" : "");
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::runtime
