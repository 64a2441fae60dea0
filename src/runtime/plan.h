// Plan: everything needed to run a graph, decided once; Executor (executor.h) then runs it.
//
//   ir::Graph g = onnx::import_model("mlp.onnx");
//   auto plan = runtime::make_plan(g, {.mode = runtime::Mode::kFloat, .max_batch = 256});
//   runtime::Executor ex(plan);                 // one per thread
//   const Tensor& logits = ex.run(batch);       // batch [B, 1, 28, 28], B <= 256
//
// make_plan() validates the graph for the mode (an Error names the node and what is
// supported), infers every value's shape as a function of the batch size, lowers nodes to
// steps (choosing kernels, packing weights, fusing), and plans activation buffers. It never
// mutates the graph and copies the constants it needs, so the graph may change or die
// afterwards. A Plan is immutable: share one across threads; give each thread an Executor.
//
// Design (tflite-micro's Prepare/Eval; XNNPACK's create/reshape/setup folded into one step):
//
// * Slots and steps (step.h). Each materialized graph value is a Slot (dtype + batch-affine
//   shape + storage); each Step reads and writes slots through a RunContext. The executor loop
//   is `for (step : steps) step->run(ctx)`: one virtual call per step, no lookups, no locks.
//
// * Lowering is per mode. kFloat lowers each node with the float kernels: fast ones
//   (packed GEMM / conv with fused epilogues, vectorised elementwise and pooling) and the
//   reference ones where no fast kernel applies (or everywhere with use_reference_kernels).
//   Float fusions: Conv <- BatchNormalization (folded into the packed weights and bias),
//   Conv/Gemm/MatMul <- Add of a same-shape residual computed earlier, <- Relu/Clip. A value is
//   fused away only when its sole consumer is the fused node and it is not a graph output.
//
// * The quantized modes (PlanOptions::quant: per-node formats by config name; what each
//   quantized op computes is MASE's, runtime/node_quant.h; docs/numerics.md "Execution modes"):
//   - kFake (fake_lowering.cc): MASE's fake quantization on the float kernels. Quantized
//     constants are fake-quantized once into a shallow copy of the graph; activations pass a
//     fake-quantize step before each quantized node, which runs unfused (float accumulation).
//   - kInt (int_lowering.cc): bit-accurate integer execution. Weights are quantized and packed
//     at their width (bit-packed below the panel element; kernels/fixed unpacks a panel at a
//     time), activations flow as integer codes with a binary point (Slot::format / Slot::frac),
//     each integer GEMM / conv accumulates exactly in the int32 or int64 its exact bound allows
//     (a bound beyond int64 is an Error naming the node and formats), the bias is aligned to the
//     accumulator's binary point, and a result is rounded once: requantized to what its
//     consumers read, or to float32. Unquantized nodes run the float lowering; views, max pools
//     and relus between integer nodes run on codes. It equals an exact rational evaluation of
//     kFake's math (tests/runtime/quant_exact_test.cc), so the two differ only where float
//     accumulation rounds.
//   Both reuse lower_float for what runs in float, with fusion barriers so that nothing is fused
//   across a quantized node (lowering.h).
//
// * Micro-batches: when every value holds whole samples along dim 0 (shape [c * B, ...], no op
//   mixing samples: no Softmax or Concat along dim 0) the plan is row-independent, and run()
//   may process a batch in slices of micro_batch() samples so that one slice's activations stay
//   in cache (micro_batch() is chosen from the activation bytes per sample), but never so small
//   that streaming the weights again for every slice costs more than the activations saved
//   (at least weight bytes / activation bytes per sample samples, when the weights exceed a
//   core's L2 cache: the 784-4096-4096-10 MLP runs whole batches). A slice's results
//   are the same bits as the whole batch's (each output element is computed by the same
//   arithmetic whatever the batch), so this is purely a speed decision.
//
// * Buffers: liveness over the step order. A step's outputs take free buffers (best fit, grown
//   to the largest size assigned) before the buffers of values whose last reader is that step
//   are released, so a step never writes a buffer it reads. Views alias their source (the
//   source stays live while any view is read). Graph outputs are never reused. Buffers are
//   sized for max_batch; run() with a smaller batch uses a prefix.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/assignment.h"
#include "runtime/step.h"

namespace qsearch::runtime {

// kFloat: float32 everywhere (PlanOptions::quant ignored). kFake: MASE's fake quantization.
// kInt: bit-accurate integer execution of the same math.
enum class Mode { kFloat, kFake, kInt };

const char* mode_name(Mode mode);

// Mode::kFloat's kernel for stride-1 3x3 convs (docs/numerics.md "Float Winograd"): kAuto runs
// Winograd F(4x4, 3x3) where its cost model prefers it at the plan's max_batch, kDirect never,
// kWinograd wherever it applies. Chosen once per conv at plan time: every run() of the plan, at
// any batch, uses the same kernel (so a sample's outputs do not depend on its batch).
enum class ConvAlgorithm { kAuto, kDirect, kWinograd };

const char* conv_algorithm_name(ConvAlgorithm a);
// "auto", "direct" or "winograd"; an Error naming `what` (e.g. the CLI flag) and the choices
// otherwise.
ConvAlgorithm parse_conv_algorithm(const std::string& s, const std::string& what);

// Packed integer weights shared by the kInt plans of one graph. A search builds a plan per trial;
// trials that give a GEMM or convolution the same formats (weight, bias, activation, rounding)
// reuse its packing instead of quantizing and packing the weights again: the packing is a pure
// function of those and the graph's constants. Thread-safe. It keeps at most max_bytes() of
// packed weights (the current trial's among them: shared, not copied), dropping the least
// recently used packings for new ones; by default that is half the graph's float32 constant
// bytes (one whole-model packing at 16 bits, two at 8), at least kMinBytes / 4 (16 MB), so that
// with the float weights in a weight file (runtime/weight_file.h) a search trial stays within
// 1.5x the weights at float32 (docs/architecture.md "Memory"). All plans sharing one cache must
// come from the same graph, unchanged (checked).
//
//   auto cache = std::make_shared<runtime::PackCache>();
//   popts.pack_cache = cache;                    // for every make_plan(graph, popts) of a search
class PackCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 20;

  // max_bytes 0: from the graph, as above.
  explicit PackCache(size_t max_bytes = 0) : max_bytes_(max_bytes) {}

  // The entry under `key` for `graph`, or null.
  std::shared_ptr<const void> find(const ir::Graph& graph, const std::string& key);
  // Keeps `value` (of `bytes` bytes) under `key`, dropping the least recently found or kept
  // entries as needed; a value larger than max_bytes() is not kept.
  void put(const ir::Graph& graph, const std::string& key, std::shared_ptr<const void> value,
           size_t bytes);

  size_t hits() const;       // finds that returned an entry
  size_t bytes() const;      // packed bytes kept now
  size_t max_bytes() const;  // the bound (0 until the first find or put sees the graph)

 private:
  struct Entry {
    std::shared_ptr<const void> value;
    size_t bytes;
    std::list<std::string>::iterator lru;  // position in lru_
  };
  void check_graph(const ir::Graph& graph);
  mutable std::mutex m_;
  const ir::Graph* graph_ = nullptr;
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> lru_;  // keys, most recently used first
  size_t max_bytes_, bytes_ = 0, hits_ = 0;
};

struct PlanOptions {
  Mode mode = Mode::kFloat;
  int64_t max_batch = 256;                              // largest batch run() will get
  ConvAlgorithm conv_algorithm = ConvAlgorithm::kAuto;  // kFloat only (fake / int: direct)
  // Every node on its reference kernel (kernels/ref/), no fusion: the oracle for tests and for
  // debugging a suspected fast-kernel bug. kInt keeps batch norm's folded fma, its specification
  // there (docs/numerics.md), so both int plans compute the same bits.
  bool use_reference_kernels = false;
  // Per-node number formats for kFake / kInt, keyed by node config name (nodes absent or with
  // quantized == false run unquantized). kFloat ignores it: the unquantized baseline.
  quant::QuantAssignment quant;
  // kInt: reuse packed weights across plans of this graph (see PackCache). Not used with
  // use_reference_kernels (whose steps keep the unpacked codes).
  std::shared_ptr<PackCache> pack_cache;
};

class Plan {
 public:
  const PlanOptions& options() const { return options_; }
  int64_t max_batch() const { return options_.max_batch; }
  const std::vector<Slot>& slots() const { return slots_; }
  const std::vector<std::unique_ptr<Step>>& steps() const { return steps_; }
  // Bytes of each activation buffer (at max_batch). Their sum is the executor's activation
  // memory.
  const std::vector<size_t>& buffer_bytes() const { return buffer_bytes_; }
  const std::vector<Tensor>& constants() const { return constants_; }
  // The graph inputs in the graph's order (one for most models; a BERT exported by
  // transformers has input_ids, attention_mask, token_type_ids). i defaults to the first.
  size_t num_inputs() const { return inputs_.size(); }
  const std::vector<SlotId>& input_slots() const { return inputs_; }
  SlotId input_slot(size_t i = 0) const { return inputs_[i]; }
  const std::vector<SlotId>& output_slots() const { return outputs_; }
  // Graph input i's shape with kDynamic for the batch dim, e.g. [?, 1, 28, 28].
  const Shape& input_shape(size_t i = 0) const { return input_shapes_[i]; }
  // Graph input i's element type: float32, or int64 / int32 (token ids, masks).
  DType input_dtype(size_t i = 0) const { return slots_[inputs_[i]].dtype; }
  // Graph input i's name (the ONNX graph input's).
  const std::string& input_name(size_t i = 0) const { return slots_[inputs_[i]].name; }
  // Bytes of the model's parameters as this plan's mode stores them. kFloat and kFake: 4 bytes
  // per element of every float32 constant the graph's nodes read (each constant once), whatever
  // fusion did to them. kInt: the packed weight panels of every integer GEMM / conv as stored
  // (bit-packed at the weight width, including the tile padding), 8 bytes per bias element (kept
  // pre-aligned to the accumulator as int64), the codes of quantized constant operands, and 4
  // bytes per element of the float32 constants the float ops read.
  int64_t parameter_bytes() const { return parameter_bytes_; }
  // parameter_bytes() by node config name (nodes storing nothing are absent). A constant read
  // by several nodes counts for the first; fused nodes' constants count for their own node.
  const std::map<std::string, int64_t>& node_parameter_bytes() const {
    return node_parameter_bytes_;
  }

  // Samples per slice of run() (see "Micro-batches" above); 0 when the graph mixes samples.
  int64_t micro_batch() const { return micro_batch_; }
  // Multiply-accumulates of one sample over the graph's nodes (ir::macs_per_sample), and the
  // activation bytes of one sample (the input row and the planned buffers, after reuse): with
  // parameter_bytes() what the evaluation's schedule is chosen from (runtime/schedule.h).
  int64_t macs_per_sample() const { return macs_per_sample_; }
  int64_t activation_bytes_per_sample() const { return activation_bytes_per_sample_; }
  // Bytes of the slot per sample (for slicing): dtype size * elements per row of dim 0.
  int64_t sample_bytes(SlotId s) const { return sample_bytes_[s]; }

  // One line per step: kernel, fusions, input and output slots with shapes at batch 1.
  std::string to_string() const;

 private:
  friend std::shared_ptr<const Plan> make_plan(const ir::Graph& graph, const PlanOptions& options);
  friend class PlanBuilder;
  PlanOptions options_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<size_t> buffer_bytes_;
  std::vector<Tensor> constants_;
  std::vector<SlotId> inputs_;
  std::vector<SlotId> outputs_;
  std::vector<Shape> input_shapes_;
  int64_t parameter_bytes_ = 0;
  std::map<std::string, int64_t> node_parameter_bytes_;
  int64_t micro_batch_ = 0;
  int64_t macs_per_sample_ = 0;
  int64_t activation_bytes_per_sample_ = 0;
  std::vector<int64_t> sample_bytes_;
};

// Validates and prepares `graph` (finalized) for running batches of up to options.max_batch.
// Throws Error naming the node for anything it cannot run: unsupported op or attribute for the
// mode, integer data where an op computes in float32, a rank above 8, no graph input, a graph
// input whose first dim is not the (dynamic) batch, shapes that do not scale with the batch.
std::shared_ptr<const Plan> make_plan(const ir::Graph& graph, const PlanOptions& options);
// The same plan from a graph the caller gives up (`qsearch eval`): kFloat and kInt may pack large
// weights in place or drop the graph's copy of a weight once packed, so that the weights are not
// held twice at the peak (docs/architecture.md "Memory"). The graph is left empty.
std::shared_ptr<const Plan> make_plan(ir::Graph&& graph, const PlanOptions& options);

}  // namespace qsearch::runtime
