// Helpers of the runtime tests: graph building, seeded tensors, running a plan, comparing.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace qsearch::runtime::testing {

inline Tensor random_tensor(Shape shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(std::move(shape), DType::kFloat32);
  Rng rng(seed);
  for (float& v : t.span<float>()) v = static_cast<float>(rng.uniform(lo, hi));
  return t;
}

// Small builder over ir::Graph: values get unique names, nodes are added in order.
class GraphMaker {
 public:
  explicit GraphMaker(Shape input_shape) { x_ = g_.add_input("x", std::move(input_shape)); }
  ir::ValueId input() const { return x_; }
  ir::ValueId constant(Shape shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    return g_.add_constant(fmt::format("c{}", ++counter_), random_tensor(shape, seed, lo, hi));
  }
  ir::ValueId constant(Tensor t) {
    return g_.add_constant(fmt::format("c{}", ++counter_), std::move(t));
  }
  ir::ValueId op(ir::OpKind kind, std::vector<ir::ValueId> inputs, ir::Attrs attrs = {},
                 int outputs = 1) {
    std::vector<ir::ValueId> outs;
    for (int i = 0; i < outputs; ++i) outs.push_back(g_.add_value(fmt::format("v{}", ++counter_)));
    ir::Node n{kind,
               fmt::format("{}_{}", ir::op_name(kind), counter_),
               std::move(inputs),
               outs,
               std::move(attrs),
               ""};
    g_.add_node(std::move(n));
    return outs[0];
  }
  ir::Graph finish(ir::ValueId out) {
    g_.mark_output(out);
    g_.finalize();
    return std::move(g_);
  }
  ir::Graph& graph() { return g_; }

 private:
  ir::Graph g_;
  ir::ValueId x_;
  int counter_ = 0;
};

// Runs `graph` on x through a fresh plan and executor; returns a deep copy of output 0.
inline Tensor run_graph(const ir::Graph& graph, const Tensor& x, bool reference,
                        int64_t max_batch = 16) {
  auto plan = make_plan(graph, {.max_batch = max_batch, .use_reference_kernels = reference});
  Executor ex(plan);
  return ex.run(x).clone();
}

// |got - want| <= atol + rtol * |want| elementwise, reporting the first few failures.
inline void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol,
                         const std::string& what = "") {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int failures = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data<float>()[i], w = want.data<float>()[i];
    const bool both_nan = std::isnan(g) && std::isnan(w);
    if (!both_nan && !(std::fabs(g - w) <= atol + rtol * std::fabs(w)) && ++failures <= 5) {
      ADD_FAILURE() << what << " element " << i << ": got " << g << ", want " << w;
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

inline bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

inline double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.span<float>()) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

}  // namespace qsearch::runtime::testing
