#include "runtime/rnn_lowering.h"

#include <memory>
#include <string>

#include <fmt/format.h>

#include "kernels/ref/rnn.h"
#include "kernels/rnn.h"
#include "quant/quantize.h"

namespace qsearch::runtime {

namespace {

// inputs = {X, initial_h?, initial_c?}; outputs = {the selected output, scratch}.
class RnnStep : public Step {
 public:
  void run(const RunContext& ctx) const override {
    kernels::RnnParams p = params;
    p.seq = ctx.dim(inputs[0], 0);
    p.batch = ctx.dim(inputs[0], 1);
    kernels::RnnTensors t;
    t.x = ctx.data<float>(inputs[0]);
    size_t k = 1;
    if (has_h0) t.h0 = ctx.data<float>(inputs[k++]);
    if (has_c0) t.c0 = ctx.data<float>(inputs[k++]);
    float* out = ctx.data<float>(outputs[0]);
    (output == 0 ? t.y : output == 1 ? t.y_h : t.y_c) = out;
    float* scratch = ctx.data<float>(outputs[1]);
    if (fast) {
      kernels::rnn_f32_packed(p, packed, t, scratch);
    } else {
      t.w = w.data<float>();
      t.r = r.data<float>();
      t.bias = bias.empty() ? nullptr : bias.data<float>();
      kernels::ref::rnn_f32(p, t, scratch);
    }
  }
  std::string describe() const override {
    return fmt::format("{}_f32{}{} [{}]", params.lstm ? "lstm" : "gru", fast ? "" : " ref",
                       params.directions == 2 ? " bidirectional" : "",
                       output == 0   ? "Y"
                       : output == 1 ? "Y_h"
                                     : "Y_c");
  }

  kernels::RnnParams params;  // seq and batch set per run
  int output = 0;
  bool has_h0 = false, has_c0 = false;
  bool fast = true;
  kernels::RnnWeights packed;  // fast
  Tensor w, r, bias;           // reference
};

}  // namespace

void lower_rnn(PlanBuilder& b, const ir::Node& n, const NodeQuant* nq) {
  const auto& a = std::get<ir::RnnAttrs>(n.attrs);
  const ir::Graph& g = b.graph();
  auto constant = [&](size_t k, const char* role) -> Tensor {
    if (k >= n.inputs.size() || n.inputs[k] < 0) return Tensor();
    const ir::Value& v = g.value(n.inputs[k]);
    if (!v.is_constant()) {
      PlanBuilder::fail_node(n, fmt::format("{} '{}' must be a constant", role, v.name));
    }
    Tensor t = v.data.clone();
    if (nq != nullptr && nq->inputs[k]) {
      t = quant::fake_quantize(t, *nq->inputs[k], nq->rounding);
    }
    return t;
  };
  const SymShape& xs = b.shape(n.inputs[0]);
  auto s = std::make_unique<RnnStep>();
  s->node = n.name;
  s->params.lstm = n.kind == ir::OpKind::kLstm;
  s->params.input = xs.base[2];
  s->params.hidden = a.hidden_size;
  s->params.directions = static_cast<int>(a.directions);
  s->params.reverse = a.reverse;
  s->output = a.output;
  s->fast = !b.options().use_reference_kernels;
  const Tensor w = constant(1, "W"), r = constant(2, "R"), bias = constant(3, "B");
  if (s->fast) {
    s->packed = kernels::pack_rnn(s->params, w.data<float>(), r.data<float>(),
                                  bias.empty() ? nullptr : bias.data<float>());
  } else {
    s->w = w;
    s->r = r;
    s->bias = bias;
  }
  s->inputs = {b.slot(n.inputs[0])};
  for (size_t k = 4; k < n.inputs.size(); ++k) {
    if (n.inputs[k] < 0) continue;
    (k == 4 ? s->has_h0 : s->has_c0) = true;
    s->inputs.push_back(b.slot(n.inputs[k]));
  }
  // Scratch: per row of X's batch dim, the input projections of every step, the recurrent
  // projection and the states (kernels::RnnParams::scratch_floats() for a batch of 1 or more).
  const int64_t gh = s->params.gates() * a.hidden_size;
  SymShape scratch;
  scratch.rank = 2;
  scratch.base[0] = xs.base[1];
  scratch.per_batch[0] = xs.per_batch[1];
  scratch.base[1] = (xs.base[0] + 1) * gh + 4 * a.hidden_size;
  if (xs.per_batch[0] != 0) PlanBuilder::fail_node(n, "the sequence length depends on the batch");
  const SlotId scratch_slot =
      b.new_slot(g.value(n.outputs[0]).name + "~scratch", DType::kFloat32, scratch);
  s->outputs = {b.slot(n.outputs[0]), scratch_slot};
  b.add_step(std::move(s));
}

}  // namespace qsearch::runtime
