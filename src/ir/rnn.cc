#include "ir/rnn.h"

#include <fmt/format.h>

#include "core/error.h"

namespace qsearch::ir {

namespace {
[[noreturn]] void rnn_fail(const Node& n, const std::string& msg) {
  fail("node '{}' ({}): {}", n.name, op_name(n.kind), msg);
}
}  // namespace

Shape rnn_output_shape(const Node& n, const std::vector<const Shape*>& inputs) {
  const RnnAttrs* a = std::get_if<RnnAttrs>(&n.attrs);
  if (a == nullptr) rnn_fail(n, "attributes of the wrong kind for this op");
  const bool lstm = n.kind == OpKind::kLstm;
  const int64_t g = rnn_gates(n.kind), h = a->hidden_size, d = a->directions;
  if (h < 1 || h > (int64_t{1} << 20)) rnn_fail(n, fmt::format("hidden_size {} is invalid", h));
  if (d != 1 && d != 2) rnn_fail(n, fmt::format("{} directions (expected 1 or 2)", d));
  if (a->output < 0 || a->output > (lstm ? 2 : 1)) {
    rnn_fail(n, fmt::format("has no output {}", a->output));
  }
  auto in = [&](size_t k) -> const Shape* { return k < inputs.size() ? inputs[k] : nullptr; };
  if (in(0) == nullptr || in(1) == nullptr || in(2) == nullptr) rnn_fail(n, "needs X, W and R");
  const Shape &x = *in(0), &w = *in(1), &r = *in(2);
  if (x.size() != 3) rnn_fail(n, fmt::format("X has shape {}, expected [T, B, I]", shape_str(x)));
  const int64_t t = x[0], b = x[1], i = x[2];
  auto expect = [&](const Shape* s, const Shape& want, const char* what) {
    if (s != nullptr && *s != want) {
      rnn_fail(n,
               fmt::format("{} has shape {}, expected {}", what, shape_str(*s), shape_str(want)));
    }
  };
  expect(&w, {d, g * h, i}, "W");
  expect(&r, {d, g * h, h}, "R");
  expect(in(3), {d, 2 * g * h}, "B");
  expect(in(4), {d, b, h}, "initial_h");
  if (in(5) != nullptr && !lstm) rnn_fail(n, "a GRU has no initial_c");
  expect(in(5), {d, b, h}, "initial_c");
  if (inputs.size() > 6)
    rnn_fail(n, fmt::format("has {} inputs, expected at most 6", inputs.size()));
  if (t < 1) rnn_fail(n, "the sequence is empty");
  if (a->output == 0) return {t, d, b, h};
  return {d, b, h};
}

int64_t rnn_macs_per_sample(const Graph& g, const Node& n) {
  const auto& a = std::get<RnnAttrs>(n.attrs);
  // Two outputs of one ONNX node (two ir nodes on the same X and W) count as one layer.
  for (const Node& m : g.nodes()) {
    if (&m == &n) break;
    if (m.kind == n.kind && m.inputs[0] == n.inputs[0] && m.inputs[1] == n.inputs[1]) return 0;
  }
  Shape x = g.value(n.inputs[0]).shape;
  const Shape& w = g.value(n.inputs[1]).shape;
  // X [T, B, I]: the batch dim counts as one sample; a constant T is the number of steps.
  const int64_t t = x[0] == kDynamic ? 1 : x[0];
  return t * a.directions * w[1] * (w[2] + a.hidden_size);
}

}  // namespace qsearch::ir
