// Shared by the PyTorch fixture tests (transformer, BERT, GRU/LSTM, CNN): the fixture JSONs'
// per-op-type formats as a QuantAssignment, running a plan over a fixture's evaluation rows, and
// the float-logit comparison against PyTorch's.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/assignment.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace qsearch::runtime::testing {

// The config's formats applied by op type (MASE's by = "type"): formats[mase_op] holds data_in
// and optionally weight, bias and data_out, each {width, frac} (signed).
inline quant::QuantAssignment assignment_by_type(const ir::Graph& g,
                                                 const nlohmann::json& formats) {
  quant::QuantAssignment q;
  auto fmt_of = [](const nlohmann::json& j) {
    return quant::FixedFormat{j.at("width").get<int>(), j.at("frac").get<int>(), true};
  };
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (!formats.contains(op)) continue;
    quant::NodeQuantConfig c;
    c.quantized = true;
    c.data_in = fmt_of(formats[op].at("data_in"));
    if (formats[op].contains("weight")) c.weight = fmt_of(formats[op].at("weight"));
    if (formats[op].contains("bias")) c.bias = fmt_of(formats[op].at("bias"));
    if (formats[op].contains("data_out")) c.data_out = fmt_of(formats[op].at("data_out"));
    q[n.config_name] = c;
  }
  return q;
}

// Checks the first `rows` rows of `got` ([N, classes] float32) against PyTorch's `logits` (a JSON
// list of rows): each element within 1e-5 of its row's scale, max(1, max |logit|). Returns the
// worst |got - want| / scale.
inline double expect_logits_close(const Tensor& got, const nlohmann::json& logits, int64_t rows,
                                  int64_t classes) {
  double worst = 0;
  for (int64_t i = 0; i < rows; ++i) {
    double scale = 1;
    for (const auto& v : logits[i]) scale = std::max(scale, std::fabs(v.get<double>()));
    for (int64_t j = 0; j < classes; ++j) {
      const double d = std::fabs(got.data<float>()[i * classes + j] - logits[i][j].get<double>());
      worst = std::max(worst, d / scale);
      EXPECT_LE(d, 1e-5 * scale) << "row " << i << " class " << j;
    }
  }
  return worst;
}

struct FixtureOutputs {
  std::vector<int> predictions;  // argmax of each row
  Tensor first;                  // logits of the first 64 rows
};

// Runs `g` under `o` over rows [0, n) of `inputs` (one tensor per graph input, in the graph's
// order) in batches of o.max_batch.
inline FixtureOutputs run_fixture(const ir::Graph& g, const PlanOptions& o,
                                  std::span<const Tensor> inputs, int64_t n) {
  Executor ex(make_plan(g, o));
  FixtureOutputs r;
  std::vector<Tensor> batch(inputs.size());
  for (int64_t b = 0; b < n; b += o.max_batch) {
    const int64_t e = std::min(n, b + o.max_batch);
    for (size_t k = 0; k < inputs.size(); ++k) batch[k] = inputs[k].rows(b, e);
    const Tensor& y = ex.run(std::span<const Tensor>(batch));
    if (b == 0) r.first = y.rows(0, std::min<int64_t>(64, e - b)).clone();
    for (int64_t i = 0; i < e - b; ++i) {
      const float* row = y.data<float>() + i * y.dim(1);
      r.predictions.push_back(static_cast<int>(std::max_element(row, row + y.dim(1)) - row));
    }
  }
  return r;
}

// How many predictions differ.
inline int differences(const std::vector<int>& a, const std::vector<int>& b) {
  int n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

}  // namespace qsearch::runtime::testing
