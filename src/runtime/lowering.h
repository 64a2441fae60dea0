// Internal: the state make_plan() shares with the per-mode lowerings (float_lowering.cc,
// fake_lowering.cc, int_lowering.cc).
//
// make_plan() computes the batch-affine shape of every value, then walks the nodes in
// topological order and calls the mode's lowering for each node not already fused into an
// earlier step. A lowering turns a node (and possibly some of its sole consumers) into steps,
// asking the builder for the slots of the values it reads and writes; views alias slots. After
// lowering, the builder plans buffers by liveness over the steps (see plan.h).
//
// The quantized lowerings walk the graph themselves (lower_fake, lower_int) and reuse
// lower_float for what runs in float. Three hooks make that safe: fusion barriers (a node the
// float lowering must neither fuse into another step nor extend with its consumers), slot
// overrides (lower_float then reads a quantized copy of an input, or writes an output somewhere
// else), and slots that belong to no graph value (codes, accumulators).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "ir/graph.h"
#include "runtime/plan.h"

namespace qsearch::runtime {

class PlanBuilder {
 public:
  PlanBuilder(const ir::Graph& graph, const PlanOptions& options);
  std::shared_ptr<const Plan> build();

  // ---- for lowerings ----
  const ir::Graph& graph() const { return graph_; }
  const PlanOptions& options() const { return options_; }
  const SymShape& shape(ir::ValueId v) const { return shapes_[v]; }
  // Number of node inputs reading v (a node reading it twice counts twice).
  int uses(ir::ValueId v) const { return uses_[v]; }
  bool is_graph_output(ir::ValueId v) const { return is_output_[v]; }
  // The node reading v when it is read exactly once and is not a graph output (v may then be
  // fused away), else nullptr.
  const ir::Node* sole_consumer(ir::ValueId v) const;
  // Index of the node producing v in the graph's (topological) order; -1 for inputs and
  // constants.
  int producer_index(ir::ValueId v) const { return graph_.value(v).producer; }
  int node_index(const ir::Node& n) const { return static_cast<int>(&n - &graph_.nodes()[0]); }

  // The slot holding v: its constant (copied into the plan), the graph input, or a new buffer
  // slot for a computed value (created on first request).
  SlotId slot(ir::ValueId v);
  // Makes `view` share the storage of `source` with view's own shape (no step).
  void alias(ir::ValueId view, ir::ValueId source);
  void add_step(std::unique_ptr<Step> step);
  // Marks a node as computed by an earlier step (skipped by the node walk).
  void mark_fused(const ir::Node& n) { fused_[node_index(n)] = true; }
  bool is_fused(const ir::Node& n) const { return fused_[node_index(n)]; }

  // ---- for the quantized lowerings ----
  // A fusion barrier is neither fused into the step of its producer nor extended with its
  // consumers: sole_consumer() returns nullptr across it.
  void set_fusion_barrier(const ir::Node& n) { barrier_[node_index(n)] = true; }
  // slot(v) returns `s` until clear_overrides(): lower_float then reads or writes `s` for v.
  void override_slot(ir::ValueId v, SlotId s) {
    override_[v] = s;
    overridden_.push_back(v);
  }
  void clear_overrides();
  // A new buffer slot that holds no graph value as such (e.g. the int8 codes of one). `format`
  // and `frac` describe integer contents (for to_string()).
  SlotId new_slot(std::string name, DType dtype, const SymShape& shape,
                  std::optional<quant::FixedFormat> format = std::nullopt, int frac = 0);
  // A slot sharing the storage of `source` with another shape (a view; no step).
  SlotId view_slot(SlotId source, std::string name, const SymShape& shape);
  // A plan-owned constant slot (integer data: the codes of `format`).
  SlotId constant_slot(std::string name, Tensor data,
                       std::optional<quant::FixedFormat> format = std::nullopt);
  const Slot& slot_info(SlotId s) const { return plan_->slots_[s]; }
  // Counts bytes a lowering stores for node n's parameters in Plan::parameter_bytes(). Without
  // any call (kFloat, kFake), build() counts 4 bytes per element of each float32 constant read.
  void add_parameter_bytes(const ir::Node& n, int64_t bytes);
  // make_plan(ir::Graph&&) only (the graph is consumed; false otherwise): true when the plan may
  // take constant v's buffer over and rewrite it (pack it in place): v is read by exactly one
  // node input, is not a graph output, and no other handle shares its buffer.
  bool owns_constant(ir::ValueId v) const;
  // make_plan(ir::Graph&&) only: called after node n is lowered (or fused), returns to the OS the
  // pages of the constants read by one node input whose lowering is surely over by now (after
  // their reader and the readers of its outputs, plan_constant_drops) and
  // whose buffer nothing but the graph holds any more (the plan keeps a packed copy), so that a
  // model's weights and their packed copies do not all coexist while planning. The graph's copy
  // then reads as zeros; make_plan empties the graph.
  void drop_consumed_constants(const ir::Node& n);
  // Records that a node mixes the samples of a batch (e.g. a Softmax along dim 0): run() must
  // then process the batch whole.
  void mixes_samples() { row_independent_ = false; }

  [[noreturn]] static void fail_node(const ir::Node& n, const std::string& message) {
    fail("node '{}' ({}): {}", n.name, ir::op_name(n.kind), message);
  }

 private:
  void compute_shapes();
  void check_graph();
  void materialize_outputs();
  void plan_buffers();
  void plan_micro_batch();
  void plan_constant_drops();

  friend std::shared_ptr<const Plan> make_plan(ir::Graph&& graph, const PlanOptions& options);

  const ir::Graph& graph_;
  bool consume_ = false;  // make_plan(ir::Graph&&)
  // consume_: per node, the constants drop_consumed_constants may drop after it.
  std::vector<std::vector<ir::ValueId>> drop_after_;
  PlanOptions options_;
  std::shared_ptr<Plan> plan_;
  std::vector<SymShape> shapes_;
  std::vector<int> uses_;
  std::vector<bool> is_output_;
  std::vector<bool> fused_;
  std::vector<SlotId> slot_of_;  // per value
  std::vector<SlotId> root_;     // per slot: the slot owning the storage (itself unless a view)
  bool row_independent_ = true;
  bool counted_bytes_ = false;
  std::vector<bool> barrier_;     // per node
  std::vector<SlotId> override_;  // per value
  std::vector<ir::ValueId> overridden_;
};

// Lowers one node for Mode::kFloat (float_lowering.cc).
void lower_float(PlanBuilder& b, const ir::Node& node);

// Lowers the whole graph for Mode::kFake (fake_lowering.cc): `b.graph()` is the graph returned
// by fake_quantized_graph(), whose quantized nodes read fake-quantized constants.
void lower_fake(PlanBuilder& b);
ir::Graph fake_quantized_graph(const ir::Graph& graph, const quant::QuantAssignment& q);

// Lowers the whole graph for Mode::kInt (int_lowering.cc).
void lower_int(PlanBuilder& b);

}  // namespace qsearch::runtime
