#include "runtime/plan.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <fmt/format.h>
#include <sys/mman.h>

#include "core/error.h"
#include "runtime/lowering.h"

namespace qsearch::runtime {

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kFloat:
      return "float";
    case Mode::kFake:
      return "fake";
    case Mode::kInt:
      return "int";
  }
  return "?";
}

const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::kAuto:
      return "auto";
    case ConvAlgorithm::kDirect:
      return "direct";
    case ConvAlgorithm::kWinograd:
      return "winograd";
  }
  return "?";
}

ConvAlgorithm parse_conv_algorithm(const std::string& s, const std::string& what) {
  for (auto a : {ConvAlgorithm::kAuto, ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd}) {
    if (s == conv_algorithm_name(a)) return a;
  }
  fail("{} '{}': use auto, direct or winograd", what, s);
}

void PackCache::check_graph(const ir::Graph& graph) {
  if (graph_ == nullptr) {
    graph_ = &graph;
    if (max_bytes_ == 0) {
      size_t weights = 0;
      for (const ir::Value& v : graph.values()) {
        if (v.is_constant()) weights += v.data.nbytes();
      }
      max_bytes_ = std::max(kMinBytes / 4, weights / 2);
    }
  }
  QSEARCH_CHECK(graph_ == &graph);  // one cache per graph
}

std::shared_ptr<const void> PackCache::find(const ir::Graph& graph, const std::string& key) {
  std::lock_guard<std::mutex> lock(m_);
  check_graph(graph);
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.value;
}

void PackCache::put(const ir::Graph& graph, const std::string& key,
                    std::shared_ptr<const void> value, size_t bytes) {
  std::lock_guard<std::mutex> lock(m_);
  check_graph(graph);
  if (bytes > max_bytes_ || map_.count(key)) return;
  while (bytes_ + bytes > max_bytes_) {
    auto old = map_.find(lru_.back());
    bytes_ -= old->second.bytes;
    map_.erase(old);
    lru_.pop_back();
  }
  lru_.push_front(key);
  map_.emplace(key, Entry{std::move(value), bytes, lru_.begin()});
  bytes_ += bytes;
}

size_t PackCache::hits() const {
  std::lock_guard<std::mutex> lock(m_);
  return hits_;
}

size_t PackCache::bytes() const {
  std::lock_guard<std::mutex> lock(m_);
  return bytes_;
}

size_t PackCache::max_bytes() const {
  std::lock_guard<std::mutex> lock(m_);
  return max_bytes_;
}

namespace {

// Copies a slot into a buffer slot: used when a graph output would otherwise alias the
// caller's input or a constant (outputs are always executor buffers).
class CopyStep : public Step {
 public:
  void run(const RunContext& ctx) const override {
    const float* x = ctx.data<float>(inputs[0]);
    float* y = ctx.data<float>(outputs[0]);
    const int64_t n = ctx.numel(outputs[0]);
    std::copy(x, x + n, y);
  }
  std::string describe() const override { return "copy_f32"; }
};

// Inputs that may hold integers or bools (token ids, masks): the ops of seq_steps.h, the index
// input of Gather, and the ops that only move elements (views, Slice, Gather's data). The rest
// read float32 (ir::infer_node_dtype enforces the same when the graph is finalized).
bool reads_any_dtype(const ir::Node& n, size_t k) {
  switch (n.kind) {
    case ir::OpKind::kCast:
    case ir::OpKind::kEqual:
    case ir::OpKind::kNot:
    case ir::OpKind::kAnd:
    case ir::OpKind::kWhere:
    case ir::OpKind::kExpand:
    case ir::OpKind::kGather:
    case ir::OpKind::kSlice:
    case ir::OpKind::kReshape:
    case ir::OpKind::kFlatten:
    case ir::OpKind::kIdentity:
    case ir::OpKind::kDropout:
      return true;
    default:
      (void)k;
      return false;
  }
}

}  // namespace

PlanBuilder::PlanBuilder(const ir::Graph& graph, const PlanOptions& options)
    : graph_(graph), options_(options), plan_(std::shared_ptr<Plan>(new Plan())) {
  plan_->options_ = options;
}

const ir::Node* PlanBuilder::sole_consumer(ir::ValueId v) const {
  if (uses_[v] != 1 || is_output_[v]) return nullptr;
  const int producer = graph_.value(v).producer;
  if (producer >= 0 && barrier_[producer]) return nullptr;
  for (const ir::Node& n : graph_.nodes()) {
    for (ir::ValueId in : n.inputs) {
      if (in == v) return barrier_[node_index(n)] ? nullptr : &n;
    }
  }
  return nullptr;
}

void PlanBuilder::clear_overrides() {
  for (ir::ValueId v : overridden_) override_[v] = kNoSlot;
  overridden_.clear();
}

SlotId PlanBuilder::new_slot(std::string name, DType dtype, const SymShape& shape,
                             std::optional<quant::FixedFormat> format, int frac) {
  Slot s;
  s.name = std::move(name);
  s.dtype = dtype;
  s.shape = shape;
  s.kind = SlotKind::kBuffer;
  s.format = format;
  s.frac = format ? format->frac : frac;
  const auto id = static_cast<SlotId>(plan_->slots_.size());
  plan_->slots_.push_back(std::move(s));
  root_.push_back(id);
  return id;
}

SlotId PlanBuilder::view_slot(SlotId source, std::string name, const SymShape& shape) {
  Slot s = plan_->slots_[source];
  s.name = std::move(name);
  s.shape = shape;
  const auto id = static_cast<SlotId>(plan_->slots_.size());
  plan_->slots_.push_back(std::move(s));
  root_.push_back(root_[source]);
  return id;
}

SlotId PlanBuilder::constant_slot(std::string name, Tensor data,
                                  std::optional<quant::FixedFormat> format) {
  Slot s;
  s.name = std::move(name);
  s.dtype = data.dtype();
  s.format = format;
  s.frac = format ? format->frac : 0;
  s.kind = SlotKind::kConstant;
  s.shape.rank = data.rank();
  for (int d = 0; d < data.rank(); ++d) s.shape.base[d] = data.dim(d);
  s.constant = static_cast<int32_t>(plan_->constants_.size());
  plan_->constants_.push_back(std::move(data));
  const auto id = static_cast<SlotId>(plan_->slots_.size());
  plan_->slots_.push_back(std::move(s));
  root_.push_back(id);
  return id;
}

void PlanBuilder::add_parameter_bytes(const ir::Node& n, int64_t bytes) {
  counted_bytes_ = true;
  plan_->parameter_bytes_ += bytes;
  plan_->node_parameter_bytes_[n.config_name] += bytes;
}

void PlanBuilder::check_graph() {
  if (options_.max_batch < 1) {
    fail("max_batch must be >= 1, got {}", options_.max_batch);
  }
  if (graph_.inputs().empty()) fail("the graph has no inputs");
  for (ir::ValueId v : graph_.inputs()) {
    const ir::Value& in = graph_.value(v);
    if (in.dtype != DType::kFloat32 && in.dtype != DType::kInt64 && in.dtype != DType::kInt32) {
      fail("graph input '{}' is {}; float32, int64 (token ids) and int32 inputs are supported",
           in.name, dtype_name(in.dtype));
    }
    if (in.shape.empty() || in.shape[0] != kDynamic) {
      fail(
          "graph input '{}' has shape {}; its first dim must be the dynamic batch dimension "
          "(export the model with a dynamic batch axis)",
          in.name, shape_str(in.shape));
    }
    for (size_t d = 1; d < in.shape.size(); ++d) {
      if (in.shape[d] == kDynamic) {
        fail("graph input '{}' has shape {}; only the first dim may be dynamic", in.name,
             shape_str(in.shape));
      }
    }
  }
  if (graph_.outputs().empty()) fail("the graph has no outputs");
}

void PlanBuilder::compute_shapes() {
  const int64_t m = options_.max_batch;
  std::vector<Shape> s1, s2, sm;
  try {
    s1 = graph_.infer_shapes(1);
    s2 = graph_.infer_shapes(2);
    sm = graph_.infer_shapes(m);
  } catch (Error& e) {
    e.add_context(fmt::format("while inferring shapes for batch sizes 1, 2 and {}", m));
    throw;
  }
  const auto nv = graph_.values().size();
  shapes_.assign(nv, SymShape{});
  for (size_t v = 0; v < nv; ++v) {
    const ir::Value& val = graph_.value(static_cast<ir::ValueId>(v));
    if (val.is_constant()) s1[v] = s2[v] = sm[v] = val.data.shape();
    const int rank = static_cast<int>(s1[v].size());
    auto where = [&] {
      return val.producer >= 0
                 ? fmt::format("output '{}' of node '{}'", val.name, graph_.node(val.producer).name)
                 : fmt::format("value '{}'", val.name);
    };
    if (rank > kernels::kMaxRank) {
      fail("{} has rank {}; at most {} dims are supported", where(), rank, kernels::kMaxRank);
    }
    if (s2[v].size() != s1[v].size() || sm[v].size() != s1[v].size()) {
      fail("the rank of {} changes with the batch size", where());
    }
    SymShape& s = shapes_[v];
    s.rank = rank;
    for (int d = 0; d < rank; ++d) {
      s.per_batch[d] = s2[v][d] - s1[v][d];
      s.base[d] = s1[v][d] - s.per_batch[d];
      if (s.per_batch[d] < 0 || s.base[d] < 0 || sm[v][d] != s.dim(d, m)) {
        fail(
            "{} has shape {} at batch 1 and {} at batch 2: its dims must be constants or "
            "multiples of the batch size",
            where(), shape_str(s1[v]), shape_str(s2[v]));
      }
    }
  }
}

SlotId PlanBuilder::slot(ir::ValueId v) {
  if (override_[v] != kNoSlot) return override_[v];
  if (slot_of_[v] != kNoSlot) return slot_of_[v];
  const ir::Value& val = graph_.value(v);
  Slot s;
  s.name = val.name;
  s.dtype = val.is_constant() ? val.data.dtype() : val.dtype;
  s.shape = shapes_[v];
  if (val.is_constant()) {
    s.kind = SlotKind::kConstant;
    s.constant = static_cast<int32_t>(plan_->constants_.size());
    plan_->constants_.push_back(val.data.clone());
  } else if (auto it = std::find(graph_.inputs().begin(), graph_.inputs().end(), v);
             it != graph_.inputs().end()) {
    s.kind = SlotKind::kInput;
    s.input = static_cast<int32_t>(it - graph_.inputs().begin());
  } else {
    s.kind = SlotKind::kBuffer;
  }
  const auto id = static_cast<SlotId>(plan_->slots_.size());
  plan_->slots_.push_back(std::move(s));
  root_.push_back(id);
  slot_of_[v] = id;
  return id;
}

void PlanBuilder::alias(ir::ValueId view, ir::ValueId source) {
  const SlotId src = slot(source);
  QSEARCH_CHECK(slot_of_[view] == kNoSlot);
  Slot s = plan_->slots_[src];
  s.name = graph_.value(view).name;
  s.shape = shapes_[view];
  const auto id = static_cast<SlotId>(plan_->slots_.size());
  plan_->slots_.push_back(std::move(s));
  root_.push_back(root_[src]);
  slot_of_[view] = id;
}

void PlanBuilder::add_step(std::unique_ptr<Step> step) {
  for (SlotId out : step->outputs) {
    QSEARCH_CHECK(root_[out] == out && plan_->slots_[out].kind == SlotKind::kBuffer);
  }
  plan_->steps_.push_back(std::move(step));
}

void PlanBuilder::materialize_outputs() {
  for (ir::ValueId v : graph_.outputs()) {
    const SlotId s = slot(v);
    const Slot& sl = plan_->slots_[s];
    if (sl.dtype != DType::kFloat32) {
      fail("graph output '{}' is {}; outputs must be float32", sl.name, dtype_name(sl.dtype));
    }
    if (plan_->slots_[root_[s]].kind == SlotKind::kBuffer) {
      plan_->outputs_.push_back(s);
      continue;
    }
    Slot copy = sl;
    copy.kind = SlotKind::kBuffer;
    copy.constant = -1;
    const auto id = static_cast<SlotId>(plan_->slots_.size());
    plan_->slots_.push_back(std::move(copy));
    root_.push_back(id);
    auto step = std::make_unique<CopyStep>();
    // `sl` may dangle: the push_back above can move the slots.
    step->node = fmt::format("output '{}'", plan_->slots_[s].name);
    step->inputs = {s};
    step->outputs = {id};
    add_step(std::move(step));
    plan_->outputs_.push_back(id);
  }
}

void PlanBuilder::plan_buffers() {
  const auto& steps = plan_->steps_;
  const size_t ns = plan_->slots_.size();
  constexpr int kForever = std::numeric_limits<int>::max();
  std::vector<int> last_use(ns, -1);
  for (size_t i = 0; i < steps.size(); ++i) {
    for (SlotId in : steps[i]->inputs) last_use[root_[in]] = static_cast<int>(i);
    for (SlotId out : steps[i]->outputs) {
      last_use[out] = std::max(last_use[out], static_cast<int>(i));
    }
  }
  for (SlotId o : plan_->outputs_) last_use[root_[o]] = kForever;

  std::vector<size_t>& bytes = plan_->buffer_bytes_;
  std::vector<int32_t> free_list;
  std::vector<int32_t> buffer_of_root(ns, -1);
  std::vector<bool> released(ns, false);
  for (size_t i = 0; i < steps.size(); ++i) {
    for (SlotId out : steps[i]->outputs) {
      Slot& s = plan_->slots_[out];
      const size_t need =
          dtype_size(s.dtype) * static_cast<size_t>(s.shape.numel(options_.max_batch));
      // Best fit: the smallest free buffer that is large enough, else the largest one (grown).
      // A graph output gets a buffer of its own: run() fills it slice by slice (micro-batches)
      // while other values reuse their buffers for every slice.
      int best = -1;
      for (size_t f = 0; f < free_list.size() && last_use[out] != kForever; ++f) {
        const size_t have = bytes[free_list[f]];
        if (best < 0) {
          best = static_cast<int>(f);
          continue;
        }
        const size_t cur = bytes[free_list[best]];
        const bool fits = have >= need, cur_fits = cur >= need;
        if ((fits && (!cur_fits || have < cur)) || (!fits && !cur_fits && have > cur)) {
          best = static_cast<int>(f);
        }
      }
      int32_t buf;
      if (best >= 0) {
        buf = free_list[best];
        free_list.erase(free_list.begin() + best);
        bytes[buf] = std::max(bytes[buf], need);
      } else {
        buf = static_cast<int32_t>(bytes.size());
        bytes.push_back(need);
      }
      buffer_of_root[out] = buf;
    }
    for (SlotId out : steps[i]->outputs) {
      if (last_use[out] == static_cast<int>(i)) free_list.push_back(buffer_of_root[out]);
    }
    for (SlotId in : steps[i]->inputs) {
      const SlotId r = root_[in];
      if (last_use[r] == static_cast<int>(i) && !released[r]) {
        QSEARCH_CHECK(buffer_of_root[r] >= 0 || plan_->slots_[r].kind != SlotKind::kBuffer);
        if (buffer_of_root[r] >= 0) free_list.push_back(buffer_of_root[r]);
        released[r] = true;  // a step may read the same value twice
      }
    }
  }
  for (size_t s = 0; s < ns; ++s) {
    Slot& sl = plan_->slots_[s];
    if (sl.kind == SlotKind::kBuffer) sl.buffer = buffer_of_root[root_[s]];
  }
}

void PlanBuilder::plan_micro_batch() {
  const auto& slots = plan_->slots_;
  plan_->sample_bytes_.assign(slots.size(), 0);
  for (size_t s = 0; s < slots.size(); ++s) {
    const Slot& sl = slots[s];
    if (sl.kind == SlotKind::kConstant) continue;
    const SymShape& sh = sl.shape;
    bool rows = sh.rank >= 1 && sh.base[0] == 0 && sh.per_batch[0] >= 1;
    int64_t elems = rows ? sh.per_batch[0] : 0;
    for (int d = 1; d < sh.rank && rows; ++d) {
      rows = sh.per_batch[d] == 0;
      elems *= sh.base[d];
    }
    if (!rows) {
      row_independent_ = false;
      continue;
    }
    plan_->sample_bytes_[s] = elems * static_cast<int64_t>(dtype_size(sl.dtype));
  }
  for (const ir::Node& n : graph_.nodes())
    plan_->macs_per_sample_ += ir::macs_per_sample(graph_, n);
  // Activation bytes of one sample: the planned buffers (after reuse) and the inputs.
  int64_t per_sample = 0;
  for (SlotId s : plan_->inputs_) {
    const Slot& in = slots[s];
    per_sample +=
        static_cast<int64_t>(dtype_size(in.dtype)) * std::max<int64_t>(0, in.shape.numel(1));
  }
  for (size_t b : plan_->buffer_bytes_) per_sample += static_cast<int64_t>(b) / options_.max_batch;
  plan_->activation_bytes_per_sample_ = per_sample;
  if (!row_independent_) return;
  // A slice's activations should stay in the L2 cache (>= 512 KB on the x86 servers we run on)
  // next to the weights they stream: half of that for activations. Multiples of 8 samples keep
  // the GEMM's row tiles full. Measured on the MNIST MLP and CNN (BENCHMARKS.md).
  constexpr int64_t kSliceBytes = 256 * 1024;
  int64_t mb = std::max<int64_t>(1, kSliceBytes / std::max<int64_t>(1, per_sample));
  if (mb >= 8) mb -= mb % 8;
  // Every slice streams all the weights again; beyond what stays in L2 next to the slice, a
  // slice must be large enough that the weights moved per sample are at most its activation
  // bytes. Otherwise wide layers stream their weights every few samples (the 784-4096-4096-10
  // MLP: 80 MB of weights per 7-sample slice, half the speed of whole batches).
  constexpr int64_t kWeightCacheBytes = 1024 * 1024;
  const int64_t weights = plan_->parameter_bytes_;
  if (weights > kWeightCacheBytes) {
    int64_t mw = (weights + per_sample - 1) / std::max<int64_t>(1, per_sample);
    mw = (mw + 7) / 8 * 8;
    mb = std::max(mb, mw);
  }
  plan_->micro_batch_ = std::min(mb, options_.max_batch);
}

std::shared_ptr<const Plan> PlanBuilder::build() {
  check_graph();
  compute_shapes();
  const auto nv = graph_.values().size();
  uses_.assign(nv, 0);
  is_output_.assign(nv, false);
  slot_of_.assign(nv, kNoSlot);
  override_.assign(nv, kNoSlot);
  fused_.assign(graph_.nodes().size(), false);
  barrier_.assign(graph_.nodes().size(), false);
  for (const ir::Node& n : graph_.nodes()) {
    for (ir::ValueId in : n.inputs) {
      if (in >= 0) ++uses_[in];
    }
  }
  for (ir::ValueId o : graph_.outputs()) is_output_[o] = true;
  if (consume_) plan_constant_drops();

  for (ir::ValueId in : graph_.inputs()) {
    plan_->inputs_.push_back(slot(in));
    plan_->input_shapes_.push_back(graph_.value(in).shape);
  }

  for (const ir::Node& n : graph_.nodes()) {
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::ValueId v = n.inputs[k];
      if (v < 0) continue;
      const ir::Value& val = graph_.value(v);
      const DType t = val.is_constant() ? val.data.dtype() : val.dtype;
      if (t != DType::kFloat32 && !reads_any_dtype(n, k)) {
        fail_node(n, fmt::format("input {} ('{}') is {}; the engines compute this op in float32 "
                                 "only (Cast it to float first)",
                                 k, val.name, dtype_name(t)));
      }
    }
  }
  switch (options_.mode) {
    case Mode::kFloat:
      for (const ir::Node& n : graph_.nodes()) {
        if (!fused_[node_index(n)]) lower_float(*this, n);
        drop_consumed_constants(n);
      }
      break;
    case Mode::kFake:
      lower_fake(*this);
      break;
    case Mode::kInt:
      lower_int(*this);
      break;
  }
  if (!counted_bytes_) {
    std::vector<bool> counted(nv, false);  // a constant read by two nodes is stored once
    for (const ir::Node& n : graph_.nodes()) {
      for (ir::ValueId v : n.inputs) {
        if (v < 0 || counted[v] || !graph_.value(v).is_constant()) continue;
        if (graph_.value(v).data.dtype() != DType::kFloat32) continue;
        counted[v] = true;
        add_parameter_bytes(n, 4 * graph_.value(v).data.numel());
      }
    }
  }
  materialize_outputs();
  plan_buffers();
  plan_micro_batch();
  return plan_;
}

std::string Plan::to_string() const {
  auto slot_str = [&](SlotId s) {
    const Slot& sl = slots_[s];
    const std::string shape = shape_str(sl.shape.shape(1));
    if (sl.dtype == DType::kFloat32) return fmt::format("{}{}", sl.name, shape);
    if (sl.format) {
      return fmt::format("{}{}:{} {}", sl.name, shape, dtype_name(sl.dtype),
                         quant::format_name(*sl.format));
    }
    return fmt::format("{}{}:{} .{}", sl.name, shape, dtype_name(sl.dtype), sl.frac);
  };
  std::string out;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& st = *steps_[i];
    std::string ins, outs;
    for (SlotId s : st.inputs) ins += (ins.empty() ? "" : ", ") + slot_str(s);
    for (SlotId s : st.outputs) {
      outs += fmt::format("{}{} @buf{}", outs.empty() ? "" : ", ", slot_str(s), slots_[s].buffer);
    }
    out += fmt::format("{:>3} {:<40} {:<24} ({}) -> {}\n", i, st.describe(), st.node, ins, outs);
  }
  size_t total = 0;
  for (size_t b : buffer_bytes_) total += b;
  out += fmt::format("{} steps, {} activation buffers, {} bytes at batch {}, micro-batch {}\n",
                     steps_.size(), buffer_bytes_.size(), total, options_.max_batch, micro_batch_);
  return out;
}

std::shared_ptr<const Plan> make_plan(const ir::Graph& graph, const PlanOptions& options) {
  if (options.mode == Mode::kFake) {
    // The fake-quantized weights live in a shallow copy of the graph (a trial never mutates
    // the graph it is given); the builder copies what the plan keeps.
    const ir::Graph fq = fake_quantized_graph(graph, options.quant);
    PlanBuilder builder(fq, options);
    return builder.build();
  }
  PlanBuilder builder(graph, options);
  return builder.build();
}

std::shared_ptr<const Plan> make_plan(ir::Graph&& graph, const PlanOptions& options) {
  std::shared_ptr<const Plan> plan;
  if (options.mode == Mode::kFake) {
    plan = make_plan(static_cast<const ir::Graph&>(graph), options);
  } else {
    PlanBuilder builder(graph, options);
    builder.consume_ = true;
    plan = builder.build();
  }
  graph = ir::Graph();
  return plan;
}

bool PlanBuilder::owns_constant(ir::ValueId v) const {
  if (!consume_ || v < 0 || uses_[v] != 1 || is_output_[v]) return false;
  const ir::Value& val = graph_.value(v);
  return val.is_constant() && val.data.use_count() == 1;
}

void PlanBuilder::plan_constant_drops() {
  // The node index after whose lowering a packed op's constant v may be dropped: that of its
  // reader m or, if later, of the last node reading m's outputs (a lowering may emit m's step
  // while lowering a consumer: the int lowering puts a linear into its bias Add's step), so that
  // no lowering can still be about to read it.
  const auto& nodes = graph_.nodes();
  std::vector<int> last_reader(graph_.values().size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (ir::ValueId v : nodes[i].inputs) {
      if (v >= 0) last_reader[v] = static_cast<int>(i);
    }
  }
  drop_after_.assign(nodes.size(), {});
  for (size_t i = 0; i < nodes.size(); ++i) {
    // Only the weights of the ops whose lowerings pack them: nothing reads those through a view.
    const ir::OpKind k = nodes[i].kind;
    if (k != ir::OpKind::kGemm && k != ir::OpKind::kMatMul && k != ir::OpKind::kConv &&
        k != ir::OpKind::kConvTranspose) {
      continue;
    }
    int last = static_cast<int>(i);
    for (ir::ValueId o : nodes[i].outputs) last = std::max(last, last_reader[o]);
    for (ir::ValueId v : nodes[i].inputs) {
      if (v >= 0 && uses_[v] == 1 && graph_.value(v).is_constant()) drop_after_[last].push_back(v);
    }
  }
}

void PlanBuilder::drop_consumed_constants(const ir::Node& n) {
  if (!consume_) return;
  for (ir::ValueId v : drop_after_[node_index(n)]) {
    if (!owns_constant(v)) continue;
    // Whole pages inside the buffer only: its allocator's bookkeeping around it stays intact.
    const auto begin = reinterpret_cast<uintptr_t>(graph_.value(v).data.raw());
    const uintptr_t page = 4096;
    const uintptr_t first = (begin + page - 1) / page * page;
    const uintptr_t last = (begin + graph_.value(v).data.nbytes()) / page * page;
    if (last > first) {
      madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    }
  }
}

}  // namespace qsearch::runtime
