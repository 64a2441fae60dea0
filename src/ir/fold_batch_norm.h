// Folding inference BatchNormalization into the conv / linear before it: what a deployment does
// (and what torch.onnx.export does in eval mode), as opposed to MASE's semantics, where the conv's
// weights are quantized and the BatchNorm after it stays a float op (docs/numerics.md,
// "BatchNorm: kept or folded"). A graph transform: it runs once after import, before any
// quantization is resolved, so formats, model size and BitOPs all see the folded graph.
//
// For a BatchNormalization B (epsilon e; scale g, bias beta, mean m, var v, all constants) whose
// input is produced by P, with B P's only reader and P's output no graph output, and P one of
//   Conv (2-D or 1-D, any group):  weight [M, C/group, ...], optional bias [M]
//   ConvTranspose (any group):     weight [C, M/group, kH, kW], optional bias [M]
//   Gemm with a constant 2-D B:    y = alpha * A * op(B) + beta * C, C absent or constant [N]
//   MatMul [N, K] x constant [K, M] (output rank 2, so B's channel dim 1 is the weight's columns)
//   the bias Add of such a MatMul (ir::linear_bias_add: torch's x @ W + b), bias [M] or [1, M]
// per output channel o (in double, then rounded once to float32):
//   a[o] = g[o] / sqrt(v[o] + e)
//   W'[o, ...] = W[o, ...] * a[o]           (Gemm: row o of B if trans_b, else column o; MatMul:
//                                            column o; ConvTranspose: W[ci, j, ...] for the
//                                            channel o = (ci / (C/group)) * (M/group) + j)
//   b'[o]      = (b[o] - m[o]) * a[o] + beta[o]    (Gemm: b = beta_attr * C, then beta_attr = 1;
//                                                   an absent bias is 0 and becomes present)
// A Reshape R between P and B is looked through when it keeps dims 0 and 1 of its input and
// regroups only the (static) dims after them, with P a Conv or ConvTranspose read by R alone: the
// importer's view after a 3-D Conv (Im2Col3d -> Conv -> R) or a 1-D ConvTranspose. P's weight
// and bias are scaled as above and R then writes B's output.
// P (or the bias Add) then writes B's output and B is removed. A MatMul without a bias Add
// becomes the equivalent Gemm (alpha = beta = 1, no transposes) with C = b'. Every other
// BatchNormalization is kept as it is.
// Folded weights and biases are new constants; the input graph is not changed.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace qsearch::ir {

struct BatchNormFold {
  Graph graph;                      // finalized
  std::vector<std::string> folded;  // config names of the BatchNorm nodes folded away
  std::vector<std::string> kept;    // config names of the BatchNorm nodes left in the graph
};

// `g` must be finalized. Throws nothing beyond what Graph::finalize throws.
BatchNormFold fold_batch_norm(const Graph& g);

}  // namespace qsearch::ir
