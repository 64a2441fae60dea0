// bench-deps: onnx
// Time of onnx::import_model_bytes against the node count (issue 8 item 17: import must be
// linear; it was quadratic, 8,000 nodes in 10 s and 20,000 in 71 s).
//
//   build/bin/onnx_import_bench [--nodes 1000,2000,4000,8000,16000,20000] [--reps 3]
//
// For each count N, two models of N nodes on an input x [batch, 16]:
//   chain    x -> Relu -> Add(., x) -> Relu -> Add(., x) ... (N nodes alternating), unnamed nodes
//            (the importer labels them Relu_i / Add_i; config names are relu, relu_1, ... as
//            MASE's torch.fx gives, the case whose name search was quadratic);
//   named    the same chain, every node named "/block/Relu" or "/block/Add" (duplicate ONNX node
//            names: the importer's unique-name search) and config names in the model metadata
//            as qsearch's exporter writes them (one line per node).
// One line per (model, N): median milliseconds of `reps` imports and milliseconds per 1000
// nodes, which stays flat when the import is linear.
//
// The models are encoded here directly in protobuf wire format (a handful of fields of
// ModelProto), so the bench needs no ONNX headers.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/stopwatch.h"
#include "onnx/import.h"

namespace {

// ---- protobuf wire format: varints and length-delimited fields ------------------------------
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void field_varint(std::string& out, int field, uint64_t v) {
  varint(out, static_cast<uint64_t>(field) << 3);
  varint(out, v);
}
void field_bytes(std::string& out, int field, const std::string& bytes) {
  varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  varint(out, bytes.size());
  out += bytes;
}

// ValueInfoProto {name = 1, type = 2 {tensor_type = 1 {elem_type = 1, shape = 2 {dim = 1
// {dim_value = 1 | dim_param = 2}}}}}: float [batch, 16].
std::string value_info(const std::string& name) {
  std::string batch, width, shape, tensor, type, vi;
  field_bytes(batch, 2, "batch");
  field_varint(width, 1, 16);
  field_bytes(shape, 1, batch);
  field_bytes(shape, 1, width);
  field_varint(tensor, 1, 1);  // FLOAT
  field_bytes(tensor, 2, shape);
  field_bytes(type, 1, tensor);
  field_bytes(vi, 1, name);
  field_bytes(vi, 2, type);
  return vi;
}

// NodeProto {input = 1, output = 2, name = 3, op_type = 4}.
std::string node(const std::vector<std::string>& inputs, const std::string& output,
                 const std::string& name, const std::string& op) {
  std::string n;
  for (const auto& i : inputs) field_bytes(n, 1, i);
  field_bytes(n, 2, output);
  if (!name.empty()) field_bytes(n, 3, name);
  field_bytes(n, 4, op);
  return n;
}

std::string chain_model(int nodes, bool named) {
  std::string graph, metadata_lines;
  std::string prev = "x";
  for (int i = 0; i < nodes; ++i) {
    const bool relu = i % 2 == 0;
    const std::string out = fmt::format("v{}", i);
    const std::string name = named ? (relu ? "/block/Relu" : "/block/Add") : "";
    field_bytes(graph, 1,
                node(relu ? std::vector<std::string>{prev} : std::vector<std::string>{prev, "x"},
                     out, name, relu ? "Relu" : "Add"));
    if (named) {
      // The importer makes duplicate names unique as name, name_1, name_2, ... per name.
      const int k = i / 2;
      const std::string ir_name = k == 0 ? name : fmt::format("{}_{}", name, k);
      metadata_lines += fmt::format("{}\t{}{}\n", ir_name, relu ? "r" : "a", k);
    }
    prev = out;
  }
  field_bytes(graph, 2, "chain");
  field_bytes(graph, 11, value_info("x"));
  field_bytes(graph, 12, value_info(prev));
  std::string opset, model;
  field_varint(opset, 2, 13);  // OperatorSetIdProto {domain = 1 (default ""), version = 2}
  field_varint(model, 1, 8);   // ir_version
  field_bytes(model, 8, opset);
  field_bytes(model, 7, graph);
  if (named) {
    std::string prop;  // StringStringEntryProto {key = 1, value = 2}
    field_bytes(prop, 1, "qsearch.config_names");
    field_bytes(prop, 2, metadata_lines);
    field_bytes(model, 14, prop);
  }
  return model;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {1000, 2000, 4000, 8000, 16000, 20000};
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--nodes") {
      counts = parse_list(argv[i + 1]);
    } else if (a == "--reps") {
      reps = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: onnx_import_bench [--nodes N,N,...] [--reps R]\n");
      return 2;
    }
  }
  std::printf(
      "| model | nodes | import ms (median of %d) | ms per 1000 nodes |\n|---|---|---|---|\n",
      reps);
  for (bool named : {false, true}) {
    for (int n : counts) {
      const std::string bytes = chain_model(n, named);
      std::vector<double> ms;
      size_t got = 0;
      for (int r = 0; r < reps; ++r) {
        qsearch::Stopwatch w;
        const qsearch::ir::Graph g = qsearch::onnx::import_model_bytes(bytes, "chain.onnx");
        ms.push_back(w.seconds() * 1e3);
        got = g.nodes().size();
      }
      if (got != static_cast<size_t>(n)) {
        std::fprintf(stderr, "imported %zu nodes, expected %d\n", got, n);
        return 1;
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      std::printf("| %s | %d | %.1f | %.2f |\n", named ? "named" : "chain", n, med,
                  med * 1000.0 / n);
      std::fflush(stdout);
    }
  }
  return 0;
}
