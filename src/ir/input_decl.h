// A graph input as a model file declares it, before import: its name and, per dim, a fixed size or
// the name of a symbolic dim (ONNX's dim_param, e.g. "batch", "seq"). Dim 0 is always the batch;
// the other symbolic dims (a Hugging Face export's sequence length) are bound to sizes before the
// model is imported (onnx::ImportOptions::dims, found from the data set by
// eval::bind_input_dims), and the imported graph has those sizes.
//
//   std::vector<ir::InputDecl> in = onnx::read_graph_inputs("bert.onnx");
//   in[0].name == "input_ids", in[0].dims == {kDynamic, kDynamic},
//   in[0].dim_names == {"batch", "seq"}
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace qsearch::ir {

struct InputDecl {
  std::string name;
  std::vector<int64_t> dims;           // kDynamic where symbolic
  std::vector<std::string> dim_names;  // the dim_param of a symbolic dim, else ""

  // Symbolic dims other than dim 0 (the ones a binding gives sizes).
  bool has_symbolic_dims() const {
    for (size_t d = 1; d < dims.size(); ++d) {
      if (dims[d] == kDynamic) return true;
    }
    return false;
  }
  // "[batch, seq]": sizes, or the names of symbolic dims ("?" when unnamed).
  std::string str() const {
    std::string s = "[";
    for (size_t d = 0; d < dims.size(); ++d) {
      if (d) s += ", ";
      s += dims[d] != kDynamic    ? std::to_string(dims[d])
           : dim_names[d].empty() ? std::string("?")
                                  : dim_names[d];
    }
    return s + "]";
  }
};

inline bool any_symbolic_dims(const std::vector<InputDecl>& inputs) {
  for (const InputDecl& in : inputs) {
    if (in.has_symbolic_dims()) return true;
  }
  return false;
}

// Sizes of symbolic dims by name ({"seq", 128}).
using DimBinding = std::map<std::string, int64_t>;

}  // namespace qsearch::ir
