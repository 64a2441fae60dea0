// The sensitivity proxies (eval/sensitivity_proxy.h) against direct computations on tiny models:
// the Fisher proxy of one linear layer equals the closed form (per-sample gradients by hand), the
// Hessian proxy's trace matches the exact one, a fragile layer ranks above a robust one, and the
// table handed to the sensitivity sampler carries exact costs.
#include "eval/sensitivity_proxy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "eval/objective.h"
#include "search/multi_objective.h"

namespace qsearch::eval {
namespace {

using ir::OpKind;
using ir::ValueId;

ConfigValue num(int64_t v) { return ConfigValue::of(v); }
ConfigValue str(const std::string& s) { return ConfigValue::of(s); }

ConfigValue na() { return ConfigValue{}; }

std::vector<ConfigValue> nums(std::vector<int64_t> v) {
  std::vector<ConfigValue> out;
  for (int64_t x : v) out.push_back(num(x));
  return out;
}

// MASE's integer quantizer written out independently: round half to even, clamp, scale back.
double q(double v, int width, int frac) {
  const double s = std::ldexp(1.0, frac);
  const double lo = -std::ldexp(1.0, width - 1), hi = std::ldexp(1.0, width - 1) - 1;
  return std::clamp(std::nearbyint(v * s), lo, hi) / s;
}

// A graph of Gemm layers (trans_b, bias) with ReLU between; node config names as given.
struct Layer {
  std::string name;
  Tensor w, b;  // [out, in], [out]
};

ir::Graph gemm_graph(int64_t in, const std::vector<Layer>& layers) {
  ir::Graph g;
  ValueId cur = g.add_input("x", {kDynamic, in});
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    ValueId w = g.add_constant(l.name + ".weight", l.w);
    ValueId b = g.add_constant(l.name + ".bias", l.b);
    ValueId y = g.add_value(l.name + "_out");
    ir::Node n{OpKind::kGemm, "/" + l.name + "/Gemm",         {cur, w, b},
               {y},           ir::GemmAttrs{.trans_b = true}, ""};
    n.config_name = l.name;
    g.add_node(std::move(n));
    cur = y;
    if (i + 1 < layers.size()) {
      ValueId r = g.add_value(l.name + "_relu");
      ir::Node relu{OpKind::kRelu, "/" + l.name + "/Relu", {cur}, {r}, ir::NoAttrs{}, ""};
      relu.config_name = l.name + "_relu";
      g.add_node(std::move(relu));
      cur = r;
    }
  }
  g.mark_output(cur);
  g.finalize();
  return g;
}

Tensor tensor(Shape shape, const std::vector<float>& v) {
  Tensor t(std::move(shape), DType::kFloat32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

Tensor random_tensor(Shape shape, Rng& rng, double scale) {
  Tensor t(std::move(shape), DType::kFloat32);
  for (float& v : t.span<float>()) v = static_cast<float>(rng.uniform(-scale, scale));
  return t;
}

data::Dataset dataset(int64_t n, int64_t in, int classes, Rng& rng) {
  data::Dataset d;
  d.name = "test";
  d.num_classes = classes;
  d.x = random_tensor({n, in}, rng, 1.5);
  d.y = Tensor({n}, DType::kInt64);
  for (int64_t i = 0; i < n; ++i)
    d.y.data<int64_t>()[i] = static_cast<int64_t>(rng.uniform_int(classes));
  return d;
}

// A seed for node `key`: data_in {din} frac 2, weight {ww} frac wf, bias 8/4 (data_out absent).
SeedEntry layer_seed(const std::string& key, std::vector<int64_t> din, std::vector<int64_t> ww,
                     int64_t wf) {
  return {key,
          {"space.toml", 3, 1},
          {{"name", {str("integer")}},
           {"data_in_width", nums(din)},
           {"data_in_frac_width", nums({2})},
           {"weight_width", nums(ww)},
           {"weight_frac_width", nums({wf})},
           {"bias_width", nums({8})},
           {"bias_frac_width", nums({4})}}};
}

TEST(SensitivityProxy, FisherOfOneLinearLayerEqualsTheClosedForm) {
  Rng rng(5);
  const int64_t in = 3, out = 3, n = 12;
  const Layer fc{"fc", random_tensor({out, in}, rng, 1.0), random_tensor({out}, rng, 0.7)};
  const ir::Graph g = gemm_graph(in, {fc});
  const data::Dataset data = dataset(n, in, out, rng);
  const auto space =
      QuantSearchSpace::build(g, MatchBy::kName, {layer_seed("fc", {3, 8}, {2, 3, 5}, 2)});
  // Per-sample gradients of l_n = CE(W x_n + b, y_n): r = softmax - onehot, dW = r x^T,
  // db = r, dx = W^T r.
  const float* W = fc.w.data<float>();
  const float* B = fc.b.data<float>();
  std::vector<double> fw(out * in, 0.0), fb(out, 0.0);
  std::vector<std::vector<double>> x(n), dx(n);
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = data.x.data<float>() + s * in;
    std::vector<double> z(out), r(out);
    double mx = -1e300, sum = 0;
    for (int64_t o = 0; o < out; ++o) {
      z[o] = B[o];
      for (int64_t i = 0; i < in; ++i) z[o] += static_cast<double>(W[o * in + i]) * xs[i];
      mx = std::max(mx, z[o]);
    }
    for (int64_t o = 0; o < out; ++o) sum += std::exp(z[o] - mx);
    for (int64_t o = 0; o < out; ++o) {
      r[o] = std::exp(z[o] - mx) / sum - (o == data.y.data<int64_t>()[s] ? 1 : 0);
    }
    x[s].assign(xs, xs + in);
    dx[s].assign(in, 0.0);
    for (int64_t o = 0; o < out; ++o) {
      fb[o] += r[o] * r[o] / n;
      for (int64_t i = 0; i < in; ++i) {
        fw[o * in + i] += r[o] * xs[i] * r[o] * xs[i] / n;
        dx[s][i] += W[o * in + i] * r[o];
      }
    }
  }
  const ProxyTable t = compute_sensitivity_proxy(g, data, space, {.method = ProxyMethod::kFisher});
  EXPECT_EQ(t.num_samples, n);
  ASSERT_EQ(t.groups.size(), 1u);
  const ProxyGroup& grp = t.groups[0];
  EXPECT_EQ(grp.name, "fc");
  ASSERT_EQ(grp.options.size(), 6u);  // data_in 2 x weight 3
  int checked = 0;
  for (const ProxyOption& o : grp.options) {
    // Parameters in space order: name, data_in_width, data_in_frac, weight_width, ...
    const std::vector<int64_t> din = {3, 8}, ww = {2, 3, 5};
    int64_t di = -1, wi = -1;
    for (size_t p = 0; p < grp.params.size(); ++p) {
      const std::string& name = space.space()[grp.params[p]].name;
      if (name == "fc/config/data_in_width") di = o.indices[p];
      if (name == "fc/config/weight_width") wi = o.indices[p];
    }
    ASSERT_GE(di, 0);
    ASSERT_GE(wi, 0);
    double weight = 0, act = 0;
    for (int64_t k = 0; k < out * in; ++k) {
      const double e = q(W[k], static_cast<int>(ww[wi]), 2) - W[k];
      weight += 0.5 * fw[k] * e * e;
    }
    for (int64_t k = 0; k < out; ++k) {
      const double e = q(B[k], 8, 4) - B[k];
      weight += 0.5 * fb[k] * e * e;
    }
    for (int64_t s = 0; s < n; ++s) {
      for (int64_t i = 0; i < in; ++i) {
        const double e = q(x[s][i], static_cast<int>(din[di]), 2) - x[s][i];
        act += 0.5 / n * dx[s][i] * dx[s][i] * e * e;
      }
    }
    EXPECT_NEAR(o.weight_term, weight, 1e-5 * weight + 1e-9) << "option " << di << "," << wi;
    EXPECT_NEAR(o.activation_term, act, 1e-5 * act + 1e-9) << "option " << di << "," << wi;
    EXPECT_DOUBLE_EQ(o.delta_loss, o.weight_term + o.activation_term);
    EXPECT_GT(weight, 0);
    EXPECT_GT(act, 0);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  // A larger micro-batch estimates the same Fisher (here: close, not equal).
  const ProxyTable t4 = compute_sensitivity_proxy(
      g, data, space, {.method = ProxyMethod::kFisher, .fisher_batch = 4});
  EXPECT_EQ(t4.groups[0].options[0].activation_term, grp.options[0].activation_term);
}

TEST(SensitivityProxy, HessianTraceOfOneLinearLayerMatchesTheExactTrace) {
  Rng rng(11);
  const int64_t in = 3, out = 2, n = 16;
  // The bias on the 8/4 grid: no bias error, so the weight term is the weight's alone.
  const Layer fc{"fc", random_tensor({out, in}, rng, 1.0), tensor({out}, {0.25f, -0.5f})};
  const ir::Graph g = gemm_graph(in, {fc});
  const data::Dataset data = dataset(n, in, out, rng);
  const auto space = QuantSearchSpace::build(g, MatchBy::kName, {layer_seed("fc", {8}, {2, 3}, 2)});
  // Exact: H_WW = mean_n (diag(p) - p p^T) (x) x x^T, trace = mean_n sum_c p_c (1 - p_c) |x|^2.
  const float* W = fc.w.data<float>();
  double trace = 0;
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = data.x.data<float>() + s * in;
    double z[2], xx = 0;
    for (int64_t o = 0; o < out; ++o) {
      z[o] = fc.b.data<float>()[o];
      for (int64_t i = 0; i < in; ++i) z[o] += static_cast<double>(W[o * in + i]) * xs[i];
    }
    for (int64_t i = 0; i < in; ++i) xx += static_cast<double>(xs[i]) * xs[i];
    const double p0 = 1 / (1 + std::exp(z[1] - z[0]));
    trace += 2 * p0 * (1 - p0) * xx / n;
  }
  const ProxyTable t = compute_sensitivity_proxy(
      g, data, space, {.method = ProxyMethod::kHessian, .vectors = 3000, .hessian_samples = n});
  ASSERT_EQ(t.groups.size(), 1u);
  ASSERT_EQ(t.groups[0].options.size(), 2u);
  int wp = -1;  // the weight_width parameter's position in the group
  for (size_t p = 0; p < t.groups[0].params.size(); ++p) {
    if (space.space()[t.groups[0].params[p]].name == "fc/config/weight_width") wp = p;
  }
  ASSERT_GE(wp, 0);
  for (const ProxyOption& o : t.groups[0].options) {
    double err = 0;
    for (int64_t k = 0; k < out * in; ++k) {
      const double e = q(W[k], o.indices[wp] == 0 ? 2 : 3, 2) - W[k];
      err += e * e;
    }
    ASSERT_GT(err, 0);
    const double estimated = 2 * o.weight_term * (out * in) / err;
    EXPECT_NEAR(estimated, trace, 0.06 * trace);
  }
}

TEST(SensitivityProxy, AFragileLayerRanksAboveARobustOne) {
  // fragile: weights off the grid of every option; robust: weights on the frac-1 grid of every
  // option (-1, -0.5, 0, 0.5), so only its bias and input can cost anything.
  Rng rng(3);
  const int64_t in = 4, hidden = 4, out = 3;
  Tensor robust_w({out, hidden}, DType::kFloat32);
  for (float& v : robust_w.span<float>()) v = 0.5f * static_cast<float>(rng.uniform_int(4)) - 1;
  const Layer fragile{"fragile", random_tensor({hidden, in}, rng, 0.9),
                      tensor({hidden}, {0, 0, 0, 0})};
  const Layer robust{"robust", robust_w, tensor({out}, {0, 0, 0})};
  const ir::Graph g = gemm_graph(in, {fragile, robust});
  const data::Dataset data = dataset(64, in, out, rng);
  const auto space =
      QuantSearchSpace::build(g, MatchBy::kName,
                              {layer_seed("fragile", {16}, {2, 3, 4}, 1),
                               layer_seed("robust", {16}, {2, 3, 4}, 1),
                               {"default", {"space.toml", 2, 1}, {{"name", {na()}}}}});
  for (ProxyMethod m : {ProxyMethod::kFisher, ProxyMethod::kHessian}) {
    const ProxyTable t = compute_sensitivity_proxy(g, data, space, {.method = m});
    ASSERT_EQ(t.groups.size(), 3u);  // fragile, fragile_relu (one option), robust
    const ProxyGroup& fr = t.groups[0];
    const ProxyGroup& ro = t.groups[2];
    ASSERT_EQ(fr.name, "fragile");
    ASSERT_EQ(ro.name, "robust");
    ASSERT_EQ(t.groups[1].options.size(), 1u);
    ASSERT_EQ(fr.options.size(), 3u);
    ASSERT_EQ(ro.options.size(), 3u);
    for (size_t o = 0; o < fr.options.size(); ++o) {
      EXPECT_GT(fr.options[o].delta_loss, 10 * ro.options[o].delta_loss + 1e-6)
          << to_string(m) << " option " << o;
    }
    // Fewer weight bits never predict less damage for the fragile layer.
    EXPECT_GE(fr.options[0].delta_loss, fr.options[2].delta_loss);
  }
}

TEST(SensitivityProxy, ObjectiveTableHasExactCostsAndRefusesLatency) {
  Rng rng(8);
  const Layer fc{"fc", random_tensor({2, 3}, rng, 1.0), random_tensor({2}, rng, 0.5)};
  auto g = std::make_shared<const ir::Graph>(gemm_graph(3, {fc}));
  auto data = std::make_shared<const data::Dataset>(dataset(8, 3, 2, rng));
  auto space = std::make_shared<const QuantSearchSpace>(
      QuantSearchSpace::build(*g, MatchBy::kName, {layer_seed("fc", {4, 8}, {2, 4}, 2)}));
  ObjectiveOptions oo;
  oo.compare_to = 32;
  oo.batch_size = 8;
  oo.metrics = {{"accuracy", 1.0}, {"average_bitwidth", 0.5}};
  const QuantObjective objective(g, data, space, oo);
  const std::vector<search::Direction> dirs = {search::Direction::kMaximize,
                                               search::Direction::kMinimize};
  const ProxyTable t = compute_sensitivity_proxy(*g, *data, *space, {});
  const search::SensitivityTable st = proxy_objective_table(t, objective, *space, dirs);
  // Base: the float model's accuracy (negated: loss space) and 32 bits x 0.5.
  ASSERT_EQ(st.base.size(), 2u);
  EXPECT_DOUBLE_EQ(st.base[0], -t.base_accuracy);
  EXPECT_DOUBLE_EQ(st.base[1], 16.0);
  const auto& d = st.deltas.at("fc");
  ASSERT_EQ(d.size(), 4u);
  for (size_t o = 0; o < d.size(); ++o) {
    // Accuracy falls by dL (up to the rounding of base - dL - base).
    EXPECT_NEAR(d[o][0], t.groups[0].options[o].delta_loss, 1e-12);
    // The cost of the option as a probe measures it.
    search::FrozenTrial trial;
    trial.params = std::vector<double>(space->space().size(), 0.0);
    for (size_t p = 0; p < t.groups[0].params.size(); ++p) {
      trial.params[t.groups[0].params[p]] = static_cast<double>(t.groups[0].options[o].indices[p]);
    }
    trial.system_attrs[search::kAttrProbe] = "fc";
    const search::ObjectiveResult r = objective(trial);
    EXPECT_DOUBLE_EQ(st.base[1] + d[o][1], r.values[1]) << "option " << o;
  }
  ObjectiveOptions lat = oo;
  lat.latency = LatencyOptions{};
  lat.metrics = {{"accuracy", 1.0}, {"latency_ms", 1.0}};
  const QuantObjective with_latency(g, data, space, lat);
  try {
    proxy_objective_table(t, with_latency, *space, dirs);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("latency_ms"), std::string::npos) << e.what();
  }
}

TEST(SensitivityProxy, RefusesWhatTheTrainModuleCannotBackpropagate) {
  Rng rng(1);
  const Layer fc{"fc", random_tensor({2, 3}, rng, 1.0), random_tensor({2}, rng, 0.5)};
  ir::Graph g = gemm_graph(3, {fc});
  // A Dropout after the layer: training and inference differ.
  ir::Graph d;
  ValueId x = d.add_input("x", {kDynamic, 3});
  ValueId w = d.add_constant("w", fc.w), b = d.add_constant("b", fc.b);
  ValueId y = d.add_value("y"), z = d.add_value("z");
  ir::Node gemm{OpKind::kGemm, "/fc/Gemm", {x, w, b}, {y}, ir::GemmAttrs{.trans_b = true}, ""};
  gemm.config_name = "fc";
  d.add_node(std::move(gemm));
  d.add_node(ir::Node{OpKind::kDropout, "/drop", {y}, {z}, ir::DropoutAttrs{.ratio = 0.5f}, ""});
  d.mark_output(z);
  d.finalize();
  const data::Dataset data = dataset(4, 3, 2, rng);
  const auto space =
      QuantSearchSpace::build(d, MatchBy::kName, {layer_seed("fc", {4, 8}, {2, 4}, 2)});
  try {
    compute_sensitivity_proxy(d, data, space, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Dropout"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("proxy = \"probe\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_proxy_method("fishr"), Error);
  EXPECT_EQ(parse_proxy_method("hessian"), ProxyMethod::kHessian);
}

TEST(SensitivityProxy, EveryProcessComputesTheSameTableWhateverItsThreads) {
  // The sampler recomputes the table in every process of a study (docs/search.md): it must not
  // depend on the thread count.
  Rng rng(21);
  const Layer a{"a", random_tensor({48, 64}, rng, 0.3), random_tensor({48}, rng, 0.2)};
  const Layer b{"b", random_tensor({10, 48}, rng, 0.3), random_tensor({10}, rng, 0.2)};
  const ir::Graph g = gemm_graph(64, {a, b});
  const data::Dataset data = dataset(300, 64, 10, rng);
  const auto space =
      QuantSearchSpace::build(g, MatchBy::kName,
                              {layer_seed("a", {4, 8}, {2, 4}, 3),
                               layer_seed("b", {4, 8}, {2, 4}, 3),
                               {"default", {"space.toml", 2, 1}, {{"name", {na()}}}}});
  const int before = num_threads();
  for (ProxyMethod m : {ProxyMethod::kFisher, ProxyMethod::kHessian}) {
    const ProxyOptions o{.method = m, .fisher_batch = 7, .batch_size = 64, .vectors = 2};
    set_num_threads(1);
    const ProxyTable one = compute_sensitivity_proxy(g, data, space, o);
    set_num_threads(4);
    const ProxyTable four = compute_sensitivity_proxy(g, data, space, o);
    ASSERT_EQ(one.groups.size(), four.groups.size());
    for (size_t k = 0; k < one.groups.size(); ++k) {
      for (size_t i = 0; i < one.groups[k].options.size(); ++i) {
        EXPECT_EQ(one.groups[k].options[i].delta_loss, four.groups[k].options[i].delta_loss)
            << to_string(m) << " group " << k << " option " << i;
      }
    }
    EXPECT_EQ(one.base_loss, four.base_loss);
  }
  set_num_threads(before);
}

TEST(SensitivityProxy, SpearmanRanksWithTies) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // Ties get average ranks: ranks (1.5, 1.5, 3) vs (1, 2, 3): r = 0.8660...
  EXPECT_NEAR(spearman({1, 1, 2}, {1, 2, 3}), std::sqrt(3.0) / 2, 1e-12);
  EXPECT_TRUE(std::isnan(spearman({1}, {2})));
  EXPECT_TRUE(std::isnan(spearman({1, 1}, {2, 3})));
}

TEST(SensitivityProxy, IntegerInputsGiveTheTableOfTheirFloatValuesAndRegressionIsRefused) {
  // npz: data keeps integer inputs (uint8 pixels); the proxies read them as float values.
  Rng rng(5);
  const int64_t in = 4, out = 3;
  const Layer fc{"fc", random_tensor({out, in}, rng, 0.9), tensor({out}, {0, 0, 0})};
  const ir::Graph g = gemm_graph(in, {fc});
  data::Dataset f = dataset(32, in, out, rng);
  for (float& v : f.x.span<float>()) v = static_cast<float>(rng.uniform_int(5));
  data::Dataset u = f;
  u.x = f.x.to(DType::kUInt8);
  const auto space = QuantSearchSpace::build(
      g, MatchBy::kName,
      {layer_seed("fc", {16}, {2, 4}, 1), {"default", {"space.toml", 2, 1}, {{"name", {na()}}}}});
  const ProxyTable want = compute_sensitivity_proxy(g, f, space, {.method = ProxyMethod::kFisher});
  const ProxyTable got = compute_sensitivity_proxy(g, u, space, {.method = ProxyMethod::kFisher});
  EXPECT_EQ(got.base_loss, want.base_loss);
  ASSERT_EQ(got.groups.size(), want.groups.size());
  for (size_t k = 0; k < got.groups.size(); ++k) {
    ASSERT_EQ(got.groups[k].options.size(), want.groups[k].options.size());
    for (size_t o = 0; o < got.groups[k].options.size(); ++o) {
      EXPECT_EQ(got.groups[k].options[o].delta_loss, want.groups[k].options[o].delta_loss);
    }
  }
  data::Dataset r = f;
  r.regression = true;
  r.num_classes = 0;
  r.y = Tensor({32, 3}, DType::kFloat32);
  try {
    compute_sensitivity_proxy(g, r, space, {.method = ProxyMethod::kFisher});
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("regression targets"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("probe"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qsearch::eval
