// Gradient proxies for per-layer sensitivity: the sensitivity strategy's phase a (issue 9, item
// 3a) without probe trials. For every group of the search space (a layer key, as
// search::param_groups names them) and every option of it (every combination of its parameters'
// indices), a predicted increase of the model's cross-entropy loss when only that group is
// quantized at that option and everything else stays float — what a probe trial measures.
//
// Both methods start from the float model (train::Network's forward/backward over the IR, in
// training mode, which the proxies require to equal inference: no BatchNormalization, no
// Dropout) on the first num_samples samples of the data, loss L = mean cross-entropy, and the
// second-order Taylor model of the loss around the trained weights with the gradient term
// dropped (a trained model sits near a minimum):  dL ~= 0.5 * d^T H d.
//
// Quantization errors d use MASE's semantics exactly as the engines do (runtime::
// resolve_node_quant on eval::probe_assignment, quant::fake_quantize with the node's rounding):
// for each quantized node of the group, each constant input it quantizes (weight, bias)
// contributes a weight term and each activation it quantizes (data_in, and data_out for
// linear/conv2d) an activation term:
//
//   fisher   weight term      0.5 * sum_i F_i (Q(w)_i - w_i)^2,  F_i = b / M * sum_m g_{m,i}^2
//            (empirical Fisher diagonal: g_m the gradient of the mean loss of micro-batch m of b
//            samples, M = num_samples / b micro-batches; b = 1, the default, is the per-sample
//            Fisher exactly; b > 1 adds (b - 1) * (mean gradient)^2)
//   hessian  weight term      0.5 * Tr(H_ww) / n_w * ||Q(w) - w||^2  (HAWQ-v2): Tr(H_ww) of
//            the tensor's diagonal block by Hutchinson's estimator, the mean over `vectors`
//            Rademacher vectors v (on that tensor only: no cross-block noise) of v . H_ww v.
//            Every op the train module runs is piecewise linear in one tensor's weights, so
//            H_ww = J^T H_CE J exactly where differentiable (Gauss-Newton; J = dz/dw of the
//            logits z, H_CE = diag(s) - s s^T, s = softmax(z)) and v . H_ww v = mean_n
//            (J_n v)^T H_CE (J_n v) over the first hessian_samples samples, with J_n v by central
//            differences of the logits, (z(w + eps v) - z(w - eps v)) / (2 eps),
//            eps = fd_step * RMS(w). (Central differences of the gradient, the textbook
//            Hessian-vector product without a second-order backward, jump wherever a ReLU
//            switches inside +-eps and gave negative traces; the logits are continuous.)
//   both     activation term  0.5 / N * sum_n sum_j (dl_n/dx_{n,j})^2 (Q(x_{n,j}) - x_{n,j})^2
//            (the per-sample Fisher diagonal of the activation, exact per sample: a sample's
//            activation only reaches its own loss)
//
// A group's option's predicted delta is the sum of its nodes' terms. All passes are
// deterministic (fixed reduction orders, Rng(seed)), so every process computes the same table
// bit for bit for the same inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "eval/objective.h"
#include "eval/quant_config.h"
#include "ir/graph.h"
#include "search/sensitivity_sampler.h"

namespace qsearch::eval {

enum class ProxyMethod { kFisher, kHessian };
// "fisher" | "hessian"; throws Error naming the valid names otherwise.
ProxyMethod parse_proxy_method(const std::string& name);
std::string to_string(ProxyMethod m);

struct ProxyOptions {
  ProxyMethod method = ProxyMethod::kFisher;
  int64_t num_samples = 1024;     // the first samples of the data (at most its size)
  int64_t fisher_batch = 1;       // b above (fisher's weight terms)
  int64_t batch_size = 256;       // passes that need only sums (activations, hessian logits)
  int vectors = 8;                // hessian: Rademacher vectors per tensor
  double fd_step = 1e-2;          // hessian: eps relative to the RMS of the tensor's weights
  int64_t hessian_samples = 256;  // hessian: the gradients' samples (the first of num_samples)
  uint64_t seed = 0;              // hessian: the vectors come from Rng(seed)
};

struct ProxyOption {
  std::vector<int64_t> indices;  // one per parameter of the group
  double delta_loss = 0;         // weight_term + activation_term
  double weight_term = 0, activation_term = 0;
};

struct ProxyGroup {
  std::string name;
  std::vector<int> params;           // space indices
  std::vector<ProxyOption> options;  // mixed radix, parameter 0 fastest (SensitivityTable's)
};

struct ProxyTable {
  ProxyMethod method = ProxyMethod::kFisher;
  int64_t num_samples = 0;
  double base_loss = 0, base_accuracy = 0, base_macro_accuracy = 0;  // the float model's
  double seconds = 0;                                                // wall time of the computation
  int64_t passes = 0;              // forward passes (each over one batch)
  int64_t backward_passes = 0;     // of which followed by a backward pass
  std::vector<ProxyGroup> groups;  // search::param_groups order (one-option groups included)
};

// Throws Error (naming the fix: proxy = "probe") when the graph cannot be trained by the train
// module (an op without a backward pass, BatchNormalization or Dropout, more than one output),
// when a group has more than 2^16 options, or when the data set is empty.
ProxyTable compute_sensitivity_proxy(const ir::Graph& graph, const data::Dataset& data,
                                     const QuantSearchSpace& space, const ProxyOptions& options);

// The table in objective space for the sensitivity sampler: base = the float model (costs as a
// base probe counts them, software metrics from the proxy's pass), each option's delta = the
// option's probe costs (QuantObjective::cost_metrics of probe_assignment, exact) and its
// predicted software metrics: loss + dL, accuracy and macro_accuracy - dL (one nat of
// predicted loss taken as one unit of accuracy; the sampler's correction by measured
// configurations rescales it). Throws Error for a metric no proxy predicts (latency_ms).
search::SensitivityTable proxy_objective_table(const ProxyTable& table,
                                               const QuantObjective& objective,
                                               const QuantSearchSpace& space,
                                               const std::vector<search::Direction>& directions);

// The option's searched fields as {"field": value} (sensitivity.json's "option").
nlohmann::ordered_json proxy_option_json(const QuantSearchSpace& space, const ProxyGroup& g,
                                         const ProxyOption& o);
// {"method", "num_samples", "seconds", "passes", "backward_passes", "base": {loss, accuracy},
// "options": [{group, option, delta_loss, weight_term, activation_term}]} (every option of every
// group).
nlohmann::ordered_json proxy_json(const ProxyTable& table, const QuantSearchSpace& space);

// Spearman's rank correlation (average ranks for ties; Pearson's r of the ranks). NaN when
// fewer than 2 pairs or a constant side.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace qsearch::eval
