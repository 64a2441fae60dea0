#include "eval/sensitivity_proxy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/rng.h"
#include "core/stopwatch.h"
#include "quant/quantize.h"
#include "runtime/node_quant.h"
#include "search/multi_objective.h"
#include "train/grad_kernels.h"
#include "train/network.h"

namespace qsearch::eval {

ProxyMethod parse_proxy_method(const std::string& name) {
  if (name == "fisher") return ProxyMethod::kFisher;
  if (name == "hessian") return ProxyMethod::kHessian;
  fail("unknown sensitivity proxy '{}' (valid: fisher, hessian)", name);
}

std::string to_string(ProxyMethod m) { return m == ProxyMethod::kFisher ? "fisher" : "hessian"; }

namespace {

constexpr int64_t kMaxGroupOptions = int64_t{1} << 16;

// What a term quantizes: a value of the graph at a format.
struct TermKey {
  ir::ValueId value;
  int width, frac;
  bool is_signed;
  quant::Rounding rounding;
  auto tie() const { return std::tie(value, width, frac, is_signed, rounding); }
  bool operator<(const TermKey& o) const { return tie() < o.tie(); }
  quant::FixedFormat format() const { return {width, frac, is_signed}; }
};

// The terms of one option: (key, is a constant).
using OptionTerms = std::vector<std::pair<TermKey, bool>>;

OptionTerms option_terms(const ir::Graph& graph, const QuantSearchSpace& space,
                         const std::vector<double>& params, const std::string& group) {
  const quant::QuantAssignment q = probe_assignment(space, params, group);
  const std::vector<runtime::NodeQuant> nq = runtime::resolve_node_quant(graph, q);
  OptionTerms terms;
  for (size_t i = 0; i < nq.size(); ++i) {
    if (!nq[i].quantized()) continue;
    const ir::Node& n = graph.nodes()[i];
    auto add = [&](ir::ValueId v, const quant::FixedFormat& f) {
      terms.push_back(
          {TermKey{v, f.width, f.frac, f.is_signed, nq[i].rounding}, graph.value(v).is_constant()});
    };
    for (size_t k = 0; k < nq[i].inputs.size() && k < n.inputs.size(); ++k) {
      if (nq[i].inputs[k] && n.inputs[k] >= 0) add(n.inputs[k], *nq[i].inputs[k]);
    }
    if (nq[i].data_out) add(n.outputs[0], *nq[i].data_out);
  }
  return terms;
}

std::vector<int64_t> option_indices(int64_t o, const std::vector<int64_t>& card) {
  std::vector<int64_t> idx(card.size());
  for (size_t p = 0; p < card.size(); ++p) {
    idx[p] = o % card[p];
    o /= card[p];
  }
  return idx;
}

std::vector<double> first_values(const search::SearchSpace& space) {
  std::vector<double> v(space.size());
  for (size_t i = 0; i < space.size(); ++i) v[i] = space[i].dist.value_at(0);
  return v;
}

std::vector<double> option_params(const search::SearchSpace& space, const ProxyGroup& g,
                                  const std::vector<int64_t>& idx) {
  std::vector<double> params = first_values(space);
  for (size_t p = 0; p < g.params.size(); ++p) {
    params[g.params[p]] = space[g.params[p]].dist.value_at(idx[p]);
  }
  return params;
}

// sum (Q(w) - w)^2 weighted per element by f (nullptr: unweighted).
double weighted_error(const float* w, int64_t n, const TermKey& k, const double* f,
                      std::vector<float>& buf) {
  buf.resize(static_cast<size_t>(n));
  quant::fake_quantize(std::span<const float>(w, static_cast<size_t>(n)), k.format(), k.rounding,
                       std::span<float>(buf));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(buf[i]) - static_cast<double>(w[i]);
    s += (f ? f[i] : 1.0) * e * e;
  }
  return s;
}

}  // namespace

ProxyTable compute_sensitivity_proxy(const ir::Graph& graph, const data::Dataset& data,
                                     const QuantSearchSpace& space, const ProxyOptions& options) {
  const Stopwatch clock;
  const std::string fix = "use proxy = \"probe\" (measured probes) instead";
  if (data.regression) {
    fail("the {} proxy needs class labels, but data set '{}' holds regression targets; {}",
         to_string(options.method), data.name, fix);
  }
  ProxyTable table;
  table.method = options.method;
  const search::SearchSpace& sp = space.space();

  // Groups, options and the terms each option needs.
  std::vector<std::vector<OptionTerms>> terms;
  std::map<TermKey, size_t> act_index, const_index;
  for (const search::ParamGroup& pg : search::param_groups(sp)) {
    ProxyGroup g{pg.name, pg.params, {}};
    std::vector<int64_t> card;
    int64_t n = 1;
    for (int i : pg.params) {
      card.push_back(sp[i].dist.cardinality());
      n = card.back() > kMaxGroupOptions ? kMaxGroupOptions + 1 : n * card.back();
      if (n > kMaxGroupOptions) {
        fail("sensitivity proxy: group '{}' has more than {} options; {}", pg.name,
             kMaxGroupOptions, fix);
      }
    }
    std::vector<OptionTerms> gt;
    for (int64_t o = 0; o < n; ++o) {
      ProxyOption opt;
      opt.indices = option_indices(o, card);
      OptionTerms t = option_terms(graph, space, option_params(sp, g, opt.indices), g.name);
      for (const auto& [key, is_const] : t) {
        auto& index = is_const ? const_index : act_index;
        index.emplace(key, index.size());
      }
      gt.push_back(std::move(t));
      g.options.push_back(std::move(opt));
    }
    terms.push_back(std::move(gt));
    table.groups.push_back(std::move(g));
  }

  // A private copy of the graph whose weights the passes may perturb (hessian).
  ir::Graph g = graph;
  for (const ir::Node& n : g.nodes()) {
    if (n.kind == ir::OpKind::kBatchNorm || n.kind == ir::OpKind::kDropout) {
      fail(
          "sensitivity proxy: node '{}' ({}) behaves differently in training and inference and "
          "the train module backpropagates only the training form; {}",
          n.name, n.kind == ir::OpKind::kBatchNorm ? "BatchNormalization" : "Dropout", fix);
    }
  }
  for (size_t v = 0; v < g.values().size(); ++v) {
    ir::Value& val = g.value(static_cast<ir::ValueId>(v));
    if (val.is_constant()) val.data = val.data.clone();
  }
  const int64_t total = std::min<int64_t>(options.num_samples, data.size());
  if (total < 1) fail("sensitivity proxy: no samples to compute it on (the data set is empty)");
  table.num_samples = total;
  const int64_t fisher_batch = std::max<int64_t>(1, options.fisher_batch);
  const int64_t sum_batch = std::max<int64_t>(1, options.batch_size);
  const int64_t max_batch = std::min(total, std::max(fisher_batch, sum_batch));
  std::unique_ptr<train::Network> net;
  try {
    if (g.inputs().size() != 1) {
      fail("the proxy's gradients need a model with one input, this one has {}", g.inputs().size());
    }
    net = std::make_unique<train::Network>(g, train::NetworkOptions{max_batch, true});
  } catch (Error& e) {
    e.add_context(fmt::format("while preparing the sensitivity proxy ({})", fix));
    throw;
  }
  const int64_t sample = net->sample_size();
  const int64_t classes = net->classes();
  if (data.x.numel() != data.size() * sample) {
    fail("sensitivity proxy: the data's samples have {} values, the model's input {}",
         data.x.numel() / std::max<int64_t>(1, data.size()), sample);
  }
  const std::vector<Shape> shapes1 = g.infer_shapes(1);
  std::map<ir::ValueId, size_t> param_of;
  for (size_t p = 0; p < net->params().size(); ++p) param_of[net->params()[p].value] = p;

  // The gradient net computes in float32: integer inputs (uint8 pixels) are converted as values.
  const Tensor xf = data.x.dtype() == DType::kFloat32 ? data.x : data.x.to(DType::kFloat32);
  const float* xs = xf.data<float>();
  const int64_t* ys = data.y.data<int64_t>();
  std::vector<float> dlogits(static_cast<size_t>(max_batch * classes));
  std::vector<float> buf;

  // Pass 1: base metrics, activation terms, and (fisher) the weights' Fisher diagonal.
  const bool fisher = options.method == ProxyMethod::kFisher;
  std::vector<double> act_sum(act_index.size(), 0.0);
  std::vector<std::vector<double>> fisher_diag;
  if (fisher) {
    for (const auto& p : net->params()) fisher_diag.emplace_back(static_cast<size_t>(p.size), 0.0);
  }
  double loss_sum = 0;
  int64_t correct = 0;
  std::vector<int64_t> tp(static_cast<size_t>(classes), 0), fp = tp, fn = tp;
  const int64_t pass_batch = fisher ? fisher_batch : sum_batch;
  for (int64_t r = 0; r < total; r += pass_batch) {
    const int64_t nb = std::min(pass_batch, total - r);
    const Tensor& logits = net->forward(xs + r * sample, nb, {.training = true});
    const float* z = logits.data<float>();
    const train::LossSums ls =
        train::softmax_cross_entropy(z, ys + r, nb, classes, nb, dlogits.data());
    loss_sum += ls.loss_sum;
    correct += ls.correct;
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t pred =
          std::max_element(z + i * classes, z + (i + 1) * classes) - (z + i * classes);
      const int64_t label = ys[r + i];
      if (label < 0 || label >= classes) continue;
      if (pred == label) {
        ++tp[label];
      } else {
        ++fp[pred];
        ++fn[label];
      }
    }
    net->backward(dlogits.data());
    ++table.passes;
    ++table.backward_passes;
    if (fisher) {
      // Per-batch gradients of the mean loss, weighted by the batch size (F = 1/N sum b_m g_m^2).
      for (size_t p = 0; p < net->params().size(); ++p) {
        const auto& prm = net->params()[p];
        double* f = fisher_diag[p].data();
        for (int64_t i = 0; i < prm.size; ++i) {
          f[i] += static_cast<double>(nb) * prm.grad[i] * static_cast<double>(prm.grad[i]);
        }
      }
    }
    for (const auto& [key, k] : act_index) {
      const float* x = net->activation(key.value);
      const float* gx = net->value_grad(key.value);
      if (!x || !gx) continue;  // nothing reaches it (no gradient): no effect on the loss
      const int64_t n = nb * shape_numel(shapes1[key.value]);
      buf.resize(static_cast<size_t>(n));
      quant::fake_quantize(std::span<const float>(x, static_cast<size_t>(n)), key.format(),
                           key.rounding, std::span<float>(buf));
      double s = 0;
      const double scale = static_cast<double>(nb);  // dl_n/dx = nb * dL/dx
      for (int64_t i = 0; i < n; ++i) {
        const double gi = scale * gx[i], e = static_cast<double>(buf[i]) - x[i];
        s += gi * gi * e * e;
      }
      act_sum[k] += s;
    }
  }
  const double N = static_cast<double>(total);
  table.base_loss = loss_sum / N;
  table.base_accuracy = static_cast<double>(correct) / N;
  {
    double recall = 0;
    int counted = 0;
    for (int64_t c = 0; c < classes; ++c) {
      if (tp[c] + fp[c] + fn[c] == 0) continue;
      ++counted;
      if (tp[c] + fn[c] > 0) recall += static_cast<double>(tp[c]) / (tp[c] + fn[c]);
    }
    table.base_macro_accuracy = counted ? recall / counted : 0;
  }

  // Weight terms.
  std::vector<double> const_term(const_index.size(), 0.0);
  auto constant_of = [&](const TermKey& key) -> std::pair<const float*, int64_t> {
    const ir::Value& v = g.value(key.value);
    if (v.data.dtype() != DType::kFloat32) return {nullptr, 0};
    return {v.data.data<float>(), v.data.numel()};
  };
  if (fisher) {
    for (auto& f : fisher_diag) {
      for (double& x : f) x /= N;
    }
    for (const auto& [key, k] : const_index) {
      auto it = param_of.find(key.value);
      auto [w, n] = constant_of(key);
      if (it == param_of.end() || !w) continue;  // not trainable: no gradient, no estimate
      const_term[k] = 0.5 * weighted_error(w, n, key, fisher_diag[it->second].data(), buf);
    }
  } else {
    // Hutchinson per tensor: Tr(H_pp) ~ mean over Rademacher v (on tensor p only, so no
    // cross-block term adds noise) of v . H_pp v. Every op the train module runs is piecewise
    // linear in one tensor's weights (ReLU, pooling, Gemm, Conv, Add), so the logits z are too
    // and H_pp = J^T H_CE J exactly (almost everywhere): v . H_pp v = mean_n u_n^T H_CE,n u_n with
    // u_n = J_n v, H_CE = diag(s) - s s^T (s = softmax(z_n)). u_n by central differences of the
    // logits, (z(w + eps v) - z(w - eps v)) / (2 eps): continuous in w, so a ReLU that switches
    // inside +-eps costs O(eps), where differences of gradients would jump.
    const auto& params = net->params();
    const int64_t hn = std::min(total, std::max<int64_t>(1, options.hessian_samples));
    std::set<size_t> needed;  // tensors some option quantizes
    for (const auto& [key, k] : const_index) {
      if (auto it = param_of.find(key.value); it != param_of.end()) needed.insert(it->second);
    }
    auto logits_of = [&](std::vector<float>* out) {
      out->resize(static_cast<size_t>(hn * classes));
      for (int64_t r = 0; r < hn; r += sum_batch) {
        const int64_t nb = std::min(sum_batch, hn - r);
        const Tensor& z = net->forward(xs + r * sample, nb, {.training = true});
        std::copy(z.data<float>(), z.data<float>() + nb * classes, out->data() + r * classes);
        ++table.passes;
      }
    };
    std::vector<float> z0, zplus, zminus, saved, v;
    logits_of(&z0);
    std::vector<double> soft(static_cast<size_t>(hn * classes));
    for (int64_t n = 0; n < hn; ++n) {
      const float* z = z0.data() + n * classes;
      const double mx = *std::max_element(z, z + classes);
      double sum = 0;
      for (int64_t c = 0; c < classes; ++c) sum += std::exp(z[c] - mx);
      for (int64_t c = 0; c < classes; ++c) soft[n * classes + c] = std::exp(z[c] - mx) / sum;
    }
    std::vector<double> trace(params.size(), 0.0);
    const int vectors = std::max(1, options.vectors);
    for (size_t p : needed) {
      float* w = params[p].data;
      const int64_t n = params[p].size;
      saved.assign(w, w + n);
      double sq = 0;
      for (float x : saved) sq += static_cast<double>(x) * x;
      const double eps = options.fd_step * std::max(std::sqrt(sq / n), 1e-3);
      for (int t = 0; t < vectors; ++t) {
        Rng rng = Rng(options.seed).fork(static_cast<uint64_t>(p) * 1000003u + t);
        v.resize(static_cast<size_t>(n));
        for (float& x : v) x = (rng.next_u64() >> 63) ? 1.0f : -1.0f;
        for (int64_t i = 0; i < n; ++i) w[i] = static_cast<float>(saved[i] + eps * v[i]);
        logits_of(&zplus);
        for (int64_t i = 0; i < n; ++i) w[i] = static_cast<float>(saved[i] - eps * v[i]);
        logits_of(&zminus);
        std::copy(saved.begin(), saved.end(), w);
        double quad = 0;
        for (int64_t s = 0; s < hn; ++s) {
          double su2 = 0, su = 0;
          for (int64_t c = 0; c < classes; ++c) {
            const size_t k = static_cast<size_t>(s * classes + c);
            const double u = (static_cast<double>(zplus[k]) - zminus[k]) / (2 * eps);
            su2 += soft[k] * u * u;
            su += soft[k] * u;
          }
          quad += su2 - su * su;
        }
        trace[p] += quad / static_cast<double>(hn) / vectors;
      }
    }
    for (const auto& [key, k] : const_index) {
      auto it = param_of.find(key.value);
      auto [w, n] = constant_of(key);
      if (it == param_of.end() || !w) continue;
      const double avg = std::max(0.0, trace[it->second] / static_cast<double>(n));
      const_term[k] = 0.5 * avg * weighted_error(w, n, key, nullptr, buf);
    }
  }

  for (size_t gi = 0; gi < table.groups.size(); ++gi) {
    for (size_t o = 0; o < table.groups[gi].options.size(); ++o) {
      ProxyOption& opt = table.groups[gi].options[o];
      for (const auto& [key, is_const] : terms[gi][o]) {
        if (is_const) {
          opt.weight_term += const_term[const_index.at(key)];
        } else {
          opt.activation_term += 0.5 * act_sum[act_index.at(key)] / N;
        }
      }
      opt.delta_loss = opt.weight_term + opt.activation_term;
    }
  }
  table.seconds = clock.seconds();
  return table;
}

search::SensitivityTable proxy_objective_table(const ProxyTable& table,
                                               const QuantObjective& objective,
                                               const QuantSearchSpace& space,
                                               const std::vector<search::Direction>& directions) {
  const ObjectiveOptions& o = objective.options();
  const search::SearchSpace& sp = space.space();
  auto values = [&](const quant::QuantAssignment& q, const quant::QuantAssignment& bw,
                    double dloss) {
    const nlohmann::ordered_json cost = objective.cost_metrics(q, &bw);
    std::vector<double> v;
    double sum = 0;
    for (const MetricSpec& m : o.metrics) {
      double x = 0;
      if (m.name == "loss") {
        x = table.base_loss + dloss;
      } else if (m.name == "accuracy") {
        x = table.base_accuracy - dloss;
      } else if (m.name == "macro_accuracy") {
        x = table.base_macro_accuracy - dloss;
      } else if (cost.contains(m.name)) {
        x = cost[m.name].get<double>();
      } else {
        fail(
            "the {} proxy cannot predict metric '{}' (it predicts loss, accuracy, "
            "macro_accuracy and the cost metrics); use proxy = \"probe\"",
            to_string(table.method), m.name);
      }
      v.push_back(m.scale * x);
      sum += m.scale * x;
    }
    if (o.sum_scaled_metrics) v = {sum};
    return search::to_loss(v, directions);
  };
  search::SensitivityTable out;
  out.method = to_string(table.method);
  {
    quant::QuantAssignment bw;
    const quant::QuantAssignment q =
        probe_assignment(space, first_values(sp), search::kProbeBase, &bw);
    out.base = values(q, bw, 0.0);
  }
  for (const ProxyGroup& g : table.groups) {
    if (g.options.size() < 2) continue;
    auto& deltas = out.deltas[g.name];
    for (const ProxyOption& opt : g.options) {
      quant::QuantAssignment bw;
      const quant::QuantAssignment q =
          probe_assignment(space, option_params(sp, g, opt.indices), g.name, &bw);
      std::vector<double> d = values(q, bw, opt.delta_loss);
      for (size_t k = 0; k < d.size(); ++k) d[k] -= out.base[k];
      deltas.push_back(std::move(d));
    }
  }
  return out;
}

nlohmann::ordered_json proxy_option_json(const QuantSearchSpace& space, const ProxyGroup& g,
                                         const ProxyOption& o) {
  const nlohmann::ordered_json choices = space.param_choices();
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t p = 0; p < g.params.size(); ++p) {
    const std::string& name = space.space()[g.params[p]].name;
    if (space.space()[g.params[p]].dist.cardinality() < 2) continue;
    const size_t slash = name.rfind('/');
    const std::string field = slash == std::string::npos ? name : name.substr(slash + 1);
    j[field] = choices.contains(name) ? choices[name].at(o.indices[p])
                                      : nlohmann::ordered_json(o.indices[p]);
  }
  return j;
}

nlohmann::ordered_json proxy_json(const ProxyTable& table, const QuantSearchSpace& space) {
  nlohmann::ordered_json j;
  j["method"] = to_string(table.method);
  j["num_samples"] = table.num_samples;
  j["seconds"] = table.seconds;
  j["passes"] = table.passes;
  j["backward_passes"] = table.backward_passes;
  j["base"] = {{"loss", table.base_loss},
               {"accuracy", table.base_accuracy},
               {"macro_accuracy", table.base_macro_accuracy}};
  nlohmann::ordered_json opts = nlohmann::ordered_json::array();
  for (const ProxyGroup& g : table.groups) {
    if (g.options.size() < 2) continue;
    for (const ProxyOption& o : g.options) {
      opts.push_back({{"group", g.name},
                      {"option", proxy_option_json(space, g, o)},
                      {"delta_loss", o.delta_loss},
                      {"weight_term", o.weight_term},
                      {"activation_term", o.activation_term}});
    }
  }
  j["options"] = std::move(opts);
  return j;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  auto ranks = [n](const std::vector<double>& v) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> r(n);
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j + 1 < n && v[order[j + 1]] == v[order[i]]) ++j;
      for (size_t k = i; k <= j; ++k) r[order[k]] = 0.5 * static_cast<double>(i + j);
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double m = 0.5 * static_cast<double>(n - 1);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (ra[i] - m) * (rb[i] - m);
    saa += (ra[i] - m) * (ra[i] - m);
    sbb += (rb[i] - m) * (rb[i] - m);
  }
  if (saa == 0 || sbb == 0) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

}  // namespace qsearch::eval
