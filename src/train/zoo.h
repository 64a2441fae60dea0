// The model zoo: builders that return a finalized ir::Graph of a known architecture with
// PyTorch's default initialisation, ready to train (train/trainer.h) or to export.
//
//   ir::Graph g = train::build_model("jsc-tiny", {.seed = 0});          // 16 features, 5 classes
//   ir::Graph m = train::build_model("lenet5", {.input_shape = {1, 28, 28}, .num_classes = 10});
//   for (const ModelInfo& info : train::zoo()) ...                      // `qsearch train --list`
//
// Architectures (mase.md §7.1 for MASE's, anchors.md §3.3 for hls4ml's):
//   jsc-tiny    BN1d(F), ReLU, Linear(F,C), ReLU                                  (MASE JSC_Tiny)
//   jsc-toy     BN1d(F), ReLU, Linear(F,8), BN1d(8), ReLU, Linear(8,8), BN1d(8), ReLU,
//               Linear(8,C), BN1d(C), ReLU                                         (MASE JSC_Toy)
//   jsc-s       BN1d(F), ReLU, Linear(F,64), BN1d(64), ReLU, Linear(64,32), ReLU, Linear(32,32),
//               ReLU, Linear(32,32), ReLU, Linear(32,C), BN1d(C), ReLU   (MASE JSC_S, ModuleList)
//   jsc-trt     BN1d(F), ReLU, Linear(F,32), BN1d(32), ReLU, Linear(32,48), BN1d(48), ReLU,
//               Dropout(0.5), Linear(48,16), BN1d(16), ReLU, Linear(16,C), BN1d(C), ReLU
//   jsc-hls4ml  Linear(F,64), ReLU, Linear(64,32), ReLU, Linear(32,32), ReLU, Linear(32,C)
//   toy         flatten, Linear(D,8), ReLU, Linear(8,8), ReLU, Linear(8,C)          (MASE ToyNet)
//   mlp         flatten, Linear(D,256), ReLU, Linear(256,128), ReLU, Linear(128,C)
//   lenet5      Conv(6,5x5,pad 2), ReLU, MaxPool 2, Conv(16,5x5), ReLU, MaxPool 2, flatten,
//               Linear(120), ReLU, Linear(84), ReLU, Linear(C)
//   resnet-s    Conv(16,3x3) BN ReLU, BasicBlock(16->16), BasicBlock(16->32, stride 2, 1x1
//               conv+BN shortcut), GlobalAveragePool, flatten, Linear(32,C)
// F = features of a [F] input, D = elements per sample, C = classes. MASE's JSC models end in
// ReLU, so their logits are >= 0 (kept: that is the architecture MASE searches).
//
// Names are what torch.onnx.export (opset 13) gives the equivalent nn.Module, so that MASE TOML
// configs address the same nodes: node "/seq_blocks/seq_blocks.2/Gemm" (config name
// "seq_blocks_2"), "/fc1/Gemm" ("fc1"), "/layer1/conv1/Conv"; parameters "seq_blocks.2.weight",
// "seq_blocks.0.running_mean"; intermediate values "<node>_output_0"; graph input "input" with
// a dynamic batch dimension and output "output".
//
// Initialisation (PyTorch's defaults, drawn from one qsearch::Rng(seed) in module order, weight
// before bias): Linear and Conv weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in
// = in_features or C_in/group * kH * kW (kaiming_uniform_(a = sqrt(5)) and the bias rule);
// BatchNorm weight 1, bias 0, running mean 0, running var 1, epsilon 1e-5, PyTorch momentum 0.1
// (stored as ONNX momentum 0.9).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace qsearch::train {

struct ZooOptions {
  Shape input_shape;    // per sample, without the batch dim; empty = the model's default
  int num_classes = 0;  // 0 = the model's default
  uint64_t seed = 0;    // initialisation
};

struct ModelInfo {
  std::string name;         // "jsc-tiny"
  std::string description;  // one line
  Shape default_input;      // {16} or {1, 28, 28}
  int default_classes = 0;
};

// Every model of the zoo, in the order `qsearch train --list` prints them.
const std::vector<ModelInfo>& zoo();

// Throws Error for an unknown name (listing the zoo) or an input shape the model cannot take
// (e.g. lenet5 on a [16] input).
ir::Graph build_model(const std::string& name, const ZooOptions& options = {});

// Elements of the graph's trainable parameters: Gemm/MatMul/Conv weights and biases and
// BatchNorm scale and bias, not the running statistics (PyTorch's
// sum(p.numel() for p in model.parameters())).
int64_t trainable_param_count(const ir::Graph& graph);

}  // namespace qsearch::train
