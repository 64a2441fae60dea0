// The C export (export/c_export.h) computes exactly what the int engine computes: its generated
// C99, compiled with `cc -std=c99 -O2 -Wall -Wextra -pedantic -Werror`, gives the engine's logits
// bit for bit on every MNIST test image for the shipped MLP and LeNet-5 under several configs
// (uniform, mixed widths, float biases, narrow unsigned relu inputs, data_out, all three roundings)
// and on random integer-only graphs at random formats (widths 1..32, fracs below 0 and above the
// width).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "export/c_export.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"
#include "support/source_dir.h"

namespace qsearch::exporter {
namespace {

namespace fs = std::filesystem;
using ir::OpKind;
using quant::FixedFormat;
using quant::NodeQuantConfig;
using quant::Rounding;
using runtime::testing::GraphMaker;

std::string source_path(const std::string& rel) {
  return (fs::path(QSEARCH_SOURCE_DIR) / rel).string();
}

std::string c_compiler() {
  const char* cc = std::getenv("CC");
  return cc && *cc ? cc : QSEARCH_C_COMPILER;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d =
      fs::temp_directory_path() / fmt::format("qsearch_cexport_{}_{}", name, getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

// Writes the models and a harness (`run WHICH N IN OUT`: N samples of floats in, logits out) into
// dir and compiles them; returns the executable.
fs::path compile(const fs::path& dir, const std::vector<CExport>& models) {
  std::string inc, cases, srcs;
  for (size_t i = 0; i < models.size(); ++i) {
    write(dir / models[i].header_name, models[i].header);
    write(dir / models[i].source_name, models[i].source);
    const std::string name = models[i].header_name.substr(0, models[i].header_name.size() - 2);
    std::string up = name;
    for (char& c : up) c = static_cast<char>(std::toupper(c));
    inc += fmt::format("#include \"{}\"\n", models[i].header_name);
    cases += fmt::format(
        "    case {}: return run(n, in, out, {}_INPUT_SIZE, {}_OUTPUT_SIZE, {}_predict);\n", i, up,
        up, name);
    srcs += " " + (dir / models[i].source_name).string();
  }
  write(dir / "main.c", fmt::format(R"(#include <stdio.h>
#include <stdlib.h>
{}
static int run(long n, FILE *in, FILE *out, long is, long os,
               void (*f)(const float *, float *)) {{
  float *x = malloc(sizeof(float) * (size_t)is), *y = malloc(sizeof(float) * (size_t)os);
  long s;
  for (s = 0; s < n; ++s) {{
    if (fread(x, sizeof(float), (size_t)is, in) != (size_t)is) return 2;
    f(x, y);
    fwrite(y, sizeof(float), (size_t)os, out);
  }}
  free(x);
  free(y);
  return 0;
}}

int main(int argc, char **argv) {{
  FILE *in, *out;
  long n;
  int r = 1;
  if (argc != 5) return 1;
  n = atol(argv[2]);
  in = fopen(argv[3], "rb");
  out = fopen(argv[4], "wb");
  if (!in || !out) return 1;
  switch (atoi(argv[1])) {{
{}    default: break;
  }}
  fclose(in);
  fclose(out);
  return r;
}}
)",
                                    inc, cases));
  const fs::path exe = dir / "run";
  const std::string cmd = fmt::format(
      "{} -std=c99 -O2 -Wall -Wextra -pedantic -Werror -o {} {}{} > {} 2>&1", c_compiler(),
      exe.string(), (dir / "main.c").string(), srcs, (dir / "cc.log").string());
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(dir / "cc.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    ADD_FAILURE() << "compiling the export failed: " << cmd << "\n" << text.substr(0, 4000);
    return {};
  }
  return exe;
}

// Runs model `which` of the compiled harness on the rows of x; returns [N, outputs] floats.
std::vector<float> run_c(const fs::path& exe, size_t which, const Tensor& x, int64_t outputs) {
  const fs::path dir = exe.parent_path();
  {
    std::ofstream f(dir / "in.bin", std::ios::binary);
    f.write(static_cast<const char*>(x.raw()), static_cast<std::streamsize>(x.nbytes()));
  }
  const std::string cmd = fmt::format("{} {} {} {} {}", exe.string(), which, x.dim(0),
                                      (dir / "in.bin").string(), (dir / "out.bin").string());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<float> y(static_cast<size_t>(x.dim(0) * outputs));
  std::ifstream f(dir / "out.bin", std::ios::binary);
  f.read(reinterpret_cast<char*>(y.data()), static_cast<std::streamsize>(y.size() * 4));
  EXPECT_EQ(f.gcount(), static_cast<std::streamsize>(y.size() * 4)) << "short output";
  return y;
}

// The int engine's output on the rows of x, in batches.
std::vector<float> run_int(const ir::Graph& g, const quant::QuantAssignment& q, const Tensor& x) {
  const int64_t batch = std::min<int64_t>(x.dim(0), 1000);
  auto plan = runtime::make_plan(g, {.mode = runtime::Mode::kInt, .max_batch = batch, .quant = q});
  runtime::Executor ex(plan);
  std::vector<float> y;
  for (int64_t b = 0; b < x.dim(0); b += batch) {
    const Tensor out = ex.run(x.rows(b, std::min(x.dim(0), b + batch)));
    y.insert(y.end(), out.data<float>(), out.data<float>() + out.numel());
  }
  return y;
}

// Bit-for-bit equality, naming the first differing sample.
::testing::AssertionResult same_bits(const std::vector<float>& got, const std::vector<float>& want,
                                     int64_t outputs) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << got.size() << " vs " << want.size() << " values";
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "sample " << i / outputs << " logit " << i % outputs
                                           << ": C " << got[i] << ", int engine " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

NodeQuantConfig weighted(FixedFormat in, FixedFormat w, std::optional<FixedFormat> b,
                         std::optional<FixedFormat> out = std::nullopt,
                         Rounding r = Rounding::kHalfToEven) {
  return {.quantized = true, .data_in = in, .weight = w, .bias = b, .data_out = out, .rounding = r};
}
NodeQuantConfig relu(int w, int f, Rounding r = Rounding::kHalfToEven) {
  return {.quantized = true, .data_in = FixedFormat{w, f, false}, .rounding = r};
}
FixedFormat s(int w, int f) { return {w, f, true}; }

const data::Dataset& mnist_test() {
  static const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  return d;
}

struct NamedConfig {
  std::string name;
  quant::QuantAssignment q;
};

void expect_model_equal_on_mnist(const std::string& model, const std::vector<NamedConfig>& cfgs) {
  const ir::Graph g = onnx::import_model(source_path("models/" + model));
  const data::Dataset& ds = mnist_test();
  ASSERT_EQ(ds.size(), 10000);
  std::vector<CExport> exports;
  for (size_t i = 0; i < cfgs.size(); ++i) {
    exports.push_back(export_c(g, cfgs[i].q, {.name = fmt::format("m{}", i)}));
  }
  const fs::path exe = compile(fresh_dir(model.substr(0, model.find('.'))), exports);
  ASSERT_FALSE(exe.empty());
  for (size_t i = 0; i < cfgs.size(); ++i) {
    SCOPED_TRACE(model + " " + cfgs[i].name);
    const std::vector<float> want = run_int(g, cfgs[i].q, ds.x);
    const std::vector<float> got = run_c(exe, i, ds.x, exports[i].output_size);
    EXPECT_TRUE(same_bits(got, want, exports[i].output_size));
  }
  fs::remove_all(exe.parent_path());
}

TEST(CExport, ShippedMlpEqualsTheIntEngineOnEveryMnistTestImage) {
  std::vector<NamedConfig> cfgs = {
      {"uniform s8",
       {{"fc1", weighted(s(8, 4), s(8, 6), s(8, 6))},
        {"fc2", weighted(s(8, 4), s(8, 6), s(8, 6))},
        {"fc3", weighted(s(8, 4), s(8, 6), s(8, 6))}}},
      {"mixed widths, float bias, data_out, narrow relu, floor",
       {{"fc1", weighted(s(6, 3), s(4, 3), s(12, 8))},
        {"relu1", relu(5, 2)},
        {"fc2", weighted(s(12, 6), s(3, 2), std::nullopt, s(10, 4), Rounding::kFloor)},
        {"fc3",
         weighted(s(16, 10), s(16, 12), s(16, 12), std::nullopt, Rounding::kHalfAwayFromZero)}}},
      {"wide codes, frac above the width and below zero",
       {{"fc1", weighted(s(24, 12), s(13, 15), s(20, 10))},
        {"relu1", relu(31, 20)},
        {"fc2", weighted(s(2, -1), s(7, 9), s(5, 3), s(32, 16))},
        {"fc3", weighted(s(9, 4), s(1, 0), s(8, 6))}}},
  };
  expect_model_equal_on_mnist("mlp_mnist.onnx", cfgs);
}

TEST(CExport, ShippedLenetEqualsTheIntEngineOnEveryMnistTestImage) {
  std::vector<NamedConfig> cfgs = {
      {"uniform s8",
       {{"conv1", weighted(s(8, 6), s(8, 6), s(8, 6))},
        {"conv2", weighted(s(8, 4), s(8, 6), s(8, 6))},
        {"fc1", weighted(s(8, 4), s(8, 6), s(8, 6))},
        {"fc2", weighted(s(8, 4), s(8, 6), s(8, 6))},
        {"fc3", weighted(s(8, 4), s(8, 6), s(8, 6))}}},
      {"mixed widths, relus quantized, data_out, float bias, floor",
       {{"conv1", weighted(s(5, 4), s(4, 3), std::nullopt, std::nullopt, Rounding::kFloor)},
        {"relu1", relu(6, 3)},
        {"conv2", weighted(s(7, 3), s(6, 5), s(12, 8), s(9, 4))},
        {"relu2", relu(4, 1, Rounding::kHalfAwayFromZero)},
        {"fc1", weighted(s(3, 1), s(2, 2), s(6, 4))},
        {"fc2", weighted(s(12, 6), s(16, 12), std::nullopt)},
        {"relu4", relu(10, 5)},
        {"fc3", weighted(s(10, 5), s(8, 6), s(16, 11))}}},
  };
  expect_model_equal_on_mnist("lenet5_mnist.onnx", cfgs);
}

// ---- random integer-only graphs -------------------------------------------------------------

class RandomCase {
 public:
  explicit RandomCase(uint64_t seed) : rng_(seed) {}

  int uniform(int lo, int hi) { return lo + static_cast<int>(rng_.uniform_int(hi - lo + 1)); }
  bool chance(int percent) { return uniform(0, 99) < percent; }

  FixedFormat format(bool is_signed, bool wide_ok) {
    int w = uniform(1, 12);
    if (wide_ok && chance(15)) w = std::array{16, 20, 24, 31, 32}[uniform(0, 4)];
    if (!is_signed) w = std::min(w, 31);
    int f = uniform(-3, 14);
    if (chance(10)) f = w + uniform(1, 6);  // frac above the width
    return {w, f, is_signed};
  }
  Rounding rounding() {
    return std::array{Rounding::kHalfToEven, Rounding::kFloor,
                      Rounding::kHalfAwayFromZero}[uniform(0, 2)];
  }
  NodeQuantConfig weighted_config() {
    NodeQuantConfig c{.quantized = true,
                      .data_in = format(true, true),
                      .weight = format(true, true),
                      .rounding = rounding()};
    if (chance(70)) c.bias = format(true, true);
    if (chance(25)) c.data_out = format(true, false);
    return c;
  }
  NodeQuantConfig simple(bool is_signed) {
    return {.quantized = true, .data_in = format(is_signed, true), .rounding = rounding()};
  }
  Tensor input(Shape shape) {
    Tensor x(std::move(shape), DType::kFloat32);
    for (float& v : x.span<float>()) {
      v = static_cast<float>(rng_.uniform(-2.0, 2.0));
      if (chance(25)) v = std::ldexp(static_cast<float>(uniform(-40, 40)) + 0.5f, -uniform(0, 6));
    }
    return x;
  }
  ir::ValueId weight(GraphMaker& m, Shape sh, float r) {
    return m.constant(std::move(sh), rng_.uniform_int(1u << 30), -r, r);
  }
  void quantize_last(GraphMaker& m, NodeQuantConfig c) {
    pending_.emplace_back(m.graph().nodes().back().name, c);
  }
  quant::QuantAssignment assign(const ir::Graph& g) {
    quant::QuantAssignment q;
    for (const auto& [node, c] : pending_) q[g.find_node(node)->config_name] = c;
    return q;
  }

  // Gemm/MatMul (+relu, quantized or not) (+ residual layer and quantized add/sub) (+ quantized
  // mul by a constant or an activation) + Gemm.
  ir::ValueId mlp(GraphMaker& m, ir::ValueId x, int64_t k0) {
    const int64_t n1 = uniform(1, 24);
    const bool trans = chance(50);
    std::vector<ir::ValueId> ins = {x, weight(m, trans ? Shape{n1, k0} : Shape{k0, n1}, 1.0f)};
    if (chance(80)) ins.push_back(weight(m, {n1}, 0.5f));
    ir::ValueId h = m.op(OpKind::kGemm, ins, ir::GemmAttrs{.trans_b = trans});
    quantize_last(m, weighted_config());
    if (chance(70)) {
      h = m.op(OpKind::kRelu, {h});
      if (chance(60)) quantize_last(m, simple(false));
    }
    if (chance(50)) {
      ir::ValueId g = chance(50) ? m.op(OpKind::kGemm, {h, weight(m, {n1, n1}, 0.7f)},
                                        ir::GemmAttrs{.trans_b = true})
                                 : m.op(OpKind::kMatMul, {h, weight(m, {n1, n1}, 0.7f)});
      quantize_last(m, weighted_config());
      h = m.op(chance(70) ? OpKind::kAdd : OpKind::kSub, {h, g});
      quantize_last(m, simple(true));
    }
    if (chance(40)) {
      h = m.op(OpKind::kMul, {h, chance(50) ? weight(m, {n1}, 1.5f) : h});
      quantize_last(m, simple(true));
    }
    const int64_t n2 = uniform(1, 12);
    h = m.op(OpKind::kGemm, {h, weight(m, {n2, n1}, 1.0f), weight(m, {n2}, 0.5f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, weighted_config());
    return h;
  }

  // Conv + relu (+ max pool of random window) + conv and quantized residual add + flatten + gemm.
  ir::ValueId cnn(GraphMaker& m, ir::ValueId x, int64_t c) {
    const int64_t groups = chance(30) ? c : 1;
    const int64_t mch = groups * uniform(1, 3);
    const int64_t kh = uniform(1, 3), kw = uniform(1, 3);
    ir::ConvAttrs a{
        .kernel = {kh, kw},
        .strides = {uniform(1, 2), uniform(1, 2)},
        .dilations = {uniform(1, 2), 1},
        .pads = {uniform(0, kh - 1), uniform(0, kw - 1), uniform(0, kh - 1), uniform(0, kw - 1)},
        .group = groups};
    std::vector<ir::ValueId> ins = {x, weight(m, {mch, c / groups, kh, kw}, 0.8f)};
    if (chance(70)) ins.push_back(weight(m, {mch}, 0.5f));
    ir::ValueId h = m.op(OpKind::kConv, ins, a);
    quantize_last(m, weighted_config());
    if (chance(80)) {
      h = m.op(OpKind::kRelu, {h});
      if (chance(50)) quantize_last(m, simple(false));
    }
    Shape sh = m.graph().infer_shapes(1)[h];
    if (chance(60) && sh[2] >= 2 && sh[3] >= 2) {
      const int64_t k = uniform(2, 3);
      const int64_t p = std::min<int64_t>(uniform(0, 1), k / 2);
      if (k <= sh[2] + 2 * p && k <= sh[3] + 2 * p) {
        h = m.op(
            OpKind::kMaxPool, {h},
            ir::PoolAttrs{.kernel = {k, k}, .strides = {uniform(1, 2), 2}, .pads = {p, p, p, p}});
      }
    }
    ir::ValueId g =
        m.op(OpKind::kConv, {h, weight(m, {mch, mch, 3, 3}, 0.5f), weight(m, {mch}, 0.3f)},
             ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
    quantize_last(m, weighted_config());
    h = m.op(OpKind::kAdd, {g, h});
    quantize_last(m, simple(true));
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    sh = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 6), sh[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, weighted_config());
    return h;
  }

  // A 3-D Conv as the importer writes nn.Conv3d (Im2Col3d -> Conv (1, kW) -> 5-D view), random
  // kernel, strides, dilations, pads and groups (+ relu, quantized or not) + a second 3-D Conv +
  // flatten + gemm.
  ir::ValueId cnn3d(GraphMaker& m, ir::ValueId x, Shape in) {
    ir::ValueId h = x;
    int64_t c = in[1];
    for (int layer = 0; layer < 2; ++layer) {
      const int64_t groups = layer == 0 && chance(40) ? c : 1;
      const int64_t mch = groups * uniform(1, 3);
      std::array<int64_t, 3> k{}, st{}, dl{}, pb{}, pe{}, out{};
      for (int d = 0; d < 3; ++d) {
        k[d] = uniform(1, std::min<int64_t>(3, in[2 + d]));
        st[d] = uniform(1, 2);
        dl[d] = k[d] > 1 && in[2 + d] > 2 * (k[d] - 1) ? uniform(1, 2) : 1;
        pb[d] = uniform(0, k[d] - 1);
        pe[d] = uniform(0, k[d] - 1);
        out[d] = (in[2 + d] + pb[d] + pe[d] - dl[d] * (k[d] - 1) - 1) / st[d] + 1;
      }
      ir::Im2Col3dAttrs ia{.kernel = {k[0], k[1]},
                           .strides = {st[0], st[1]},
                           .dilations = {dl[0], dl[1]},
                           .pads = {pb[0], pb[1], pe[0], pe[1]}};
      h = m.op(OpKind::kIm2Col3d, {h}, ia);
      std::vector<ir::ValueId> ins = {h, weight(m, {mch, c / groups * k[0] * k[1], 1, k[2]}, 0.8f)};
      if (chance(70)) ins.push_back(weight(m, {mch}, 0.5f));
      h = m.op(OpKind::kConv, ins,
               ir::ConvAttrs{.kernel = {1, k[2]},
                             .strides = {1, st[2]},
                             .dilations = {1, dl[2]},
                             .pads = {0, pb[2], 0, pe[2]},
                             .group = groups});
      quantize_last(m, weighted_config());
      h = m.op(OpKind::kReshape, {h}, ir::ReshapeAttrs{.shape = {0, mch, out[0], out[1], out[2]}});
      if (layer == 0 && chance(70)) {
        h = m.op(OpKind::kRelu, {h});
        if (chance(50)) quantize_last(m, simple(false));
      }
      c = mch;
      in = {in[0], mch, out[0], out[1], out[2]};
    }
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    const Shape sh = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 5), sh[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, weighted_config());
    return h;
  }

  // Transposed convolutions: two layers of a 2-D ConvTranspose (x [N, C, H, W]) or of a 3-D one
  // as the importer writes nn.ConvTranspose3d (x [N, C, D, H, W]: transposed Im2Col3d ->
  // ConvTranspose (1, kW) -> 5-D view), random kernels, strides, dilations, pads up to dilation *
  // (kernel - 1), output_padding below max(stride, dilation), groups (+ relu, quantized or not),
  // then flatten + gemm.
  ir::ValueId cnnt(GraphMaker& m, ir::ValueId x, Shape in) {
    const bool three = in.size() == 5;
    const int dims = three ? 3 : 2;
    ir::ValueId h = x;
    int64_t c = in[1];
    for (int layer = 0; layer < 2; ++layer) {
      const int64_t groups = chance(40) ? c : 1;
      const int64_t mg = uniform(1, 3);
      std::array<int64_t, 3> k{}, st{}, dl{}, pb{}, pe{}, op{}, out{};
      for (int d = 0; d < dims; ++d) {
        k[d] = uniform(1, 3);
        st[d] = uniform(1, 2);
        dl[d] = k[d] > 1 ? uniform(1, 2) : 1;
        pb[d] = uniform(0, dl[d] * (k[d] - 1));
        pe[d] = uniform(0, dl[d] * (k[d] - 1));
        op[d] = uniform(0, std::max(st[d], dl[d]) - 1);
        out[d] = st[d] * (in[2 + d] - 1) + op[d] + dl[d] * (k[d] - 1) + 1 - pb[d] - pe[d];
        if (out[d] < 1) {  // keep the size: no pads
          pb[d] = pe[d] = 0;
          out[d] = st[d] * (in[2 + d] - 1) + op[d] + dl[d] * (k[d] - 1) + 1;
        }
      }
      std::vector<ir::ValueId> ins;
      if (three) {
        ir::Im2Col3dAttrs ia{.kernel = {k[0], k[1]},
                             .strides = {st[0], st[1]},
                             .dilations = {dl[0], dl[1]},
                             .pads = {pb[0], pb[1], pe[0], pe[1]},
                             .transposed = true,
                             .output_padding = {op[0], op[1]}};
        h = m.op(OpKind::kIm2Col3d, {h}, ia);
        ins = {h, weight(m, {c * k[0] * k[1], mg, 1, k[2]}, 0.8f)};
      } else {
        ins = {h, weight(m, {c, mg, k[0], k[1]}, 0.8f)};
      }
      if (chance(70)) ins.push_back(weight(m, {mg * groups}, 0.5f));
      const int w = three ? 2 : 1;  // the width's index into k, st, ...
      ir::ConvTransposeAttrs ca{.kernel = {three ? 1 : k[0], k[w]},
                                .strides = {three ? 1 : st[0], st[w]},
                                .dilations = {three ? 1 : dl[0], dl[w]},
                                .pads = {three ? 0 : pb[0], pb[w], three ? 0 : pe[0], pe[w]},
                                .output_padding = {three ? 0 : op[0], op[w]},
                                .group = groups};
      h = m.op(OpKind::kConvTranspose, ins, ca);
      quantize_last(m, weighted_config());
      if (three) {
        h = m.op(OpKind::kReshape, {h},
                 ir::ReshapeAttrs{.shape = {0, mg * groups, out[0], out[1], out[2]}});
        in = {in[0], mg * groups, out[0], out[1], out[2]};
      } else {
        in = {in[0], mg * groups, out[0], out[1]};
      }
      if (layer == 0 && chance(70)) {
        h = m.op(OpKind::kRelu, {h});
        if (chance(50)) quantize_last(m, simple(false));
      }
      c = mg * groups;
    }
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    const Shape sh = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 5), sh[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, weighted_config());
    return h;
  }

  // Attention-shaped: x [N, T, D] -> A = x Wa, B = x Wb, V = x Wv (linears), S = A @ B' and
  // O = S @ V (MatMuls of two activations, B' a reshaped B; 3-D, or 4-D heads with A and V
  // broadcast over them) (+ relu on S) + flatten + gemm.
  ir::ValueId attention(GraphMaker& m, ir::ValueId x, int64_t t, int64_t d) {
    const int64_t e = uniform(1, 6), f = uniform(1, 5), h = chance(50) ? uniform(2, 3) : 1;
    const bool four = h > 1 || chance(30);
    auto linear = [&](int64_t out) {
      ir::ValueId y = m.op(OpKind::kMatMul, {x, weight(m, {d, out}, 1.0f)});
      quantize_last(m, weighted_config());
      return y;
    };
    auto reshape = [&](ir::ValueId v, std::vector<int64_t> shape) {
      return m.op(OpKind::kReshape, {v}, ir::ReshapeAttrs{.shape = std::move(shape)});
    };
    auto matmul_config = [&] {
      return NodeQuantConfig{.quantized = true,
                             .data_in = format(true, true),
                             .weight = format(true, true),
                             .rounding = rounding()};
    };
    ir::ValueId a = linear(e), b = linear(h * e), v = linear(f);
    if (four) {
      a = reshape(a, {-1, 1, t, e});
      b = reshape(b, {-1, h, e, t});
      v = reshape(v, {-1, 1, t, f});
    } else {
      b = reshape(b, {-1, e, t});
    }
    ir::ValueId s = m.op(OpKind::kMatMul, {a, b});
    quantize_last(m, matmul_config());
    if (chance(50)) {
      s = m.op(OpKind::kRelu, {s});
      if (chance(50)) quantize_last(m, simple(false));
    }
    ir::ValueId o = m.op(OpKind::kMatMul, {s, v});
    quantize_last(m, matmul_config());
    o = m.op(OpKind::kFlatten, {o}, ir::AxisAttrs{1});
    const int64_t n2 = uniform(1, 8);
    o = m.op(OpKind::kGemm, {o, weight(m, {n2, h * t * f}, 0.5f), weight(m, {n2}, 0.3f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, weighted_config());
    return o;
  }

 private:
  Rng rng_;
  std::vector<std::pair<std::string, NodeQuantConfig>> pending_;
};

struct RandomModel {
  ir::Graph g;
  quant::QuantAssignment q;
  Tensor x;
};

// Exports `rm` as C named `name` and keeps both; a model the export refuses with `reason` in
// the message (an accumulator beyond int64) is counted in `refused` instead.
void keep_or_count_refused(RandomModel rm, const std::string& name, const std::string& reason,
                           std::vector<RandomModel>& models, std::vector<CExport>& exports,
                           int& refused) {
  try {
    exports.push_back(export_c(rm.g, rm.q, {.name = name}));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << name << ": " << e.what();
    ++refused;
    return;
  }
  models.push_back(std::move(rm));
}

// Compiles the exports into one program and checks each against the int engine bit for bit.
void expect_exports_equal_int_engine(const std::string& what,
                                     const std::vector<RandomModel>& models,
                                     const std::vector<CExport>& exports, int refused) {
  const fs::path exe = compile(fresh_dir(what), exports);
  ASSERT_FALSE(exe.empty());
  for (size_t i = 0; i < models.size(); ++i) {
    SCOPED_TRACE(exports[i].source_name);
    const std::vector<float> want = run_int(models[i].g, models[i].q, models[i].x);
    const std::vector<float> got = run_c(exe, i, models[i].x, exports[i].output_size);
    ASSERT_TRUE(same_bits(got, want, exports[i].output_size));
  }
  std::cout << fmt::format("[ export ] {} random {} graphs equal the int engine, {} refused\n",
                           models.size(), what, refused);
  fs::remove_all(exe.parent_path());
}

TEST(CExport, RandomIntegerGraphsEqualTheIntEngine) {
  std::vector<RandomModel> models;
  std::vector<CExport> exports;
  int refused = 0;
  for (uint64_t seed = 1; models.size() < 100 && seed < 400; ++seed) {
    RandomCase rc(seed);
    RandomModel rm;
    Shape in_shape;
    if (seed % 2 == 0) {
      const int64_t c = rc.uniform(1, 3), hw = rc.uniform(5, 9), w2 = hw + rc.uniform(0, 1);
      GraphMaker m({kDynamic, c, hw, w2});
      rm.g = m.finish(rc.cnn(m, m.input(), c));
      in_shape = {rc.uniform(3, 20), c, hw, w2};
    } else {
      const int64_t k0 = rc.uniform(1, 40);
      GraphMaker m({kDynamic, k0});
      rm.g = m.finish(rc.mlp(m, m.input(), k0));
      in_shape = {rc.uniform(3, 20), k0};
    }
    rm.q = rc.assign(rm.g);
    rm.x = rc.input(in_shape);
    keep_or_count_refused(std::move(rm), fmt::format("r{}", seed), "beyond int64", models, exports,
                          refused);
  }
  ASSERT_GE(models.size(), 100u) << refused << " refused";
  expect_exports_equal_int_engine("integer", models, exports, refused);
}

// 3-D convolutions (nn.Conv3d as imported: Im2Col3d -> Conv -> view), written as one loop nest
// over the NCDHW codes: random geometries, groups and formats equal the int engine bit for bit.
TEST(CExport, RandomConv3dGraphsEqualTheIntEngine) {
  std::vector<RandomModel> models;
  std::vector<CExport> exports;
  int refused = 0;
  for (uint64_t seed = 1; models.size() < 40 && seed < 200; ++seed) {
    RandomCase rc(seed + 5000);
    RandomModel rm;
    const int64_t c = rc.uniform(1, 3);
    const Shape in = {kDynamic, c, rc.uniform(2, 5), rc.uniform(2, 5), rc.uniform(2, 6)};
    GraphMaker m(in);
    rm.g = m.finish(rc.cnn3d(m, m.input(), in));
    rm.q = rc.assign(rm.g);
    rm.x = rc.input({rc.uniform(2, 6), in[1], in[2], in[3], in[4]});
    keep_or_count_refused(std::move(rm), fmt::format("c3d{}", seed), "beyond int64", models,
                          exports, refused);
  }
  ASSERT_GE(models.size(), 40u) << refused << " refused";
  expect_exports_equal_int_engine("conv3d", models, exports, refused);
}

// Transposed convolutions, 2-D and 3-D (nn.ConvTranspose3d as imported: transposed Im2Col3d ->
// ConvTranspose -> view), written as one loop nest over the input codes: random geometries
// (output_padding, dilation, pads), groups and formats equal the int engine bit for bit.
TEST(CExport, RandomConvTransposeGraphsEqualTheIntEngine) {
  for (const int dims : {2, 3}) {
    SCOPED_TRACE(dims);
    std::vector<RandomModel> models;
    std::vector<CExport> exports;
    int refused = 0;
    for (uint64_t seed = 1; models.size() < 30 && seed < 200; ++seed) {
      RandomCase rc(seed + 7000 + 1000 * dims);
      RandomModel rm;
      const int64_t c = rc.uniform(1, 3);
      Shape in = {kDynamic, c, rc.uniform(1, 4), rc.uniform(1, 4)};
      if (dims == 3) in.push_back(rc.uniform(1, 4));
      GraphMaker m(in);
      rm.g = m.finish(rc.cnnt(m, m.input(), in));
      rm.q = rc.assign(rm.g);
      in[0] = rc.uniform(2, 5);
      rm.x = rc.input(in);
      keep_or_count_refused(std::move(rm), fmt::format("ct{}d{}", dims, seed), "beyond int64",
                            models, exports, refused);
    }
    ASSERT_GE(models.size(), 30u) << refused << " refused";
    expect_exports_equal_int_engine(fmt::format("convt{}d", dims), models, exports, refused);
  }
}

// The MatMul of two activations (attention's Q K^T and S V): random attention-shaped graphs,
// 3-D and 4-D with broadcast leading dims, at random formats and roundings.
TEST(CExport, RandomAttentionMatMulsEqualTheIntEngine) {
  std::vector<RandomModel> models;
  std::vector<CExport> exports;
  int refused = 0;
  for (uint64_t seed = 1000; models.size() < 60 && seed < 1300; ++seed) {
    RandomCase rc(seed);
    RandomModel rm;
    const int64_t t = rc.uniform(1, 6), d = rc.uniform(1, 12);
    GraphMaker m({kDynamic, t, d});
    rm.g = m.finish(rc.attention(m, m.input(), t, d));
    rm.q = rc.assign(rm.g);
    rm.x = rc.input({rc.uniform(2, 8), t, d});
    keep_or_count_refused(std::move(rm), fmt::format("a{}", seed), "int64", models, exports,
                          refused);
  }
  ASSERT_GE(models.size(), 60u) << refused << " refused";
  expect_exports_equal_int_engine("attention", models, exports, refused);
}

// torch's nn.Linear on 3-D inputs: MatMul(x, W^T) + Add(b), one linear whose bias_* format
// quantizes the Add's constant (ir::linear_bias_add); random shapes, formats and roundings, the
// bias operand on either side of the Add, optionally a relu after.
TEST(CExport, RandomMatMulBiasLinearsEqualTheIntEngine) {
  std::vector<RandomModel> models;
  std::vector<CExport> exports;
  int refused = 0;
  for (uint64_t seed = 2000; models.size() < 40 && seed < 2300; ++seed) {
    RandomCase rc(seed);
    RandomModel rm;
    const int64_t t = rc.uniform(1, 5), k = rc.uniform(1, 16), n = rc.uniform(1, 12);
    GraphMaker m({kDynamic, t, k});
    const ir::ValueId h = m.op(OpKind::kMatMul, {m.input(), rc.weight(m, {k, n}, 1.0f)});
    const ir::ValueId b = rc.weight(m, rc.chance(50) ? Shape{n} : Shape{1, 1, n}, 2.0f);
    ir::ValueId y = rc.chance(50) ? m.op(OpKind::kAdd, {h, b}) : m.op(OpKind::kAdd, {b, h});
    if (rc.chance(30)) y = m.op(OpKind::kRelu, {y});
    rm.g = m.finish(y);
    EXPECT_EQ(ir::mase_op(rm.g, rm.g.nodes()[1]), "linear_bias");
    NodeQuantConfig c = rc.weighted_config();
    if (!c.bias) c.bias = rc.format(true, true);
    rm.q = {{rm.g.nodes()[0].config_name, c}};
    rm.x = rc.input({rc.uniform(2, 8), t, k});
    keep_or_count_refused(std::move(rm), fmt::format("b{}", seed), "int64", models, exports,
                          refused);
  }
  ASSERT_GE(models.size(), 40u) << refused << " refused";
  expect_exports_equal_int_engine("matmul_bias", models, exports, refused);
}

// ---- what the C export refuses ----------------------------------------------------------------

TEST(CExport, FloatBoundaryAndUnsupportedOpsAreOneLineErrorsNamingTheNode) {
  auto expect_error = [](const ir::Graph& g, const quant::QuantAssignment& q,
                         const std::string& part) {
    try {
      export_c(g, q);
      ADD_FAILURE() << "no error; wanted one containing '" << part << "'";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(part), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  };
  {  // An unquantized Gemm runs in float.
    GraphMaker m({kDynamic, 4});
    ir::ValueId h = m.op(OpKind::kGemm, {m.input(), m.constant({4, 3}, 1)}, ir::GemmAttrs{});
    const ir::Graph g = m.finish(h);
    expect_error(g, {}, "runs in float in int mode");
    expect_error(g, {}, g.nodes()[0].config_name);
  }
  {  // A sigmoid after a quantized layer: not an integer op.
    GraphMaker m({kDynamic, 4});
    ir::ValueId h = m.op(OpKind::kGemm, {m.input(), m.constant({4, 3}, 1)}, ir::GemmAttrs{});
    h = m.op(OpKind::kSigmoid, {h});
    const ir::Graph g = m.finish(h);
    quant::QuantAssignment q = {
        {g.nodes()[0].config_name, weighted(s(8, 4), s(8, 4), std::nullopt)}};
    expect_error(g, q, "not supported by the C export");
    expect_error(g, q, g.nodes()[1].config_name);
  }
  {  // An unquantized add of two layers' outputs adds dequantized floats.
    GraphMaker m({kDynamic, 4});
    ir::ValueId a = m.op(OpKind::kGemm, {m.input(), m.constant({4, 3}, 1)}, ir::GemmAttrs{});
    ir::ValueId b = m.op(OpKind::kGemm, {m.input(), m.constant({4, 3}, 2)}, ir::GemmAttrs{});
    const ir::Graph g = m.finish(m.op(OpKind::kAdd, {a, b}));
    quant::QuantAssignment q = {
        {g.nodes()[0].config_name, weighted(s(8, 4), s(8, 4), std::nullopt)},
        {g.nodes()[1].config_name, weighted(s(8, 4), s(8, 4), std::nullopt)}};
    expect_error(g, q, "runs in float in int mode");
  }
  {  // A MatMul + Add linear without bias_* keys: the int engine adds its bias in float.
    GraphMaker m({kDynamic, 2, 4});
    ir::ValueId h = m.op(OpKind::kMatMul, {m.input(), m.constant({4, 3}, 1)});
    const ir::Graph g = m.finish(m.op(OpKind::kAdd, {h, m.constant({3}, 2)}));
    quant::QuantAssignment q = {
        {g.nodes()[0].config_name, weighted(s(8, 4), s(8, 4), std::nullopt)}};
    expect_error(g, q, "bias_width");
  }
  EXPECT_THROW(check_c_name("9lives", "--name"), Error);
  EXPECT_THROW(check_c_name("a-b", "--name"), Error);
  EXPECT_NO_THROW(check_c_name("lenet_5", "--name"));
}

TEST(CExport, NameChangesFilesAndEverySymbol) {
  const ir::Graph g = onnx::import_model(source_path("models/mlp_mnist.onnx"));
  const quant::QuantAssignment q = {{"fc1", weighted(s(8, 4), s(4, 2), s(8, 4))},
                                    {"fc2", weighted(s(8, 4), s(4, 2), s(8, 4))},
                                    {"fc3", weighted(s(8, 4), s(4, 2), s(8, 4))}};
  const CExport c = export_c(g, q, {.name = "digits"});
  EXPECT_EQ(c.header_name, "digits.h");
  EXPECT_EQ(c.source_name, "digits.c");
  EXPECT_NE(c.header.find("#define DIGITS_INPUT_SIZE 784"), std::string::npos);
  EXPECT_NE(c.header.find("#define DIGITS_OUTPUT_SIZE 10"), std::string::npos);
  EXPECT_NE(c.header.find("void digits_predict(const float *input, float *output);"),
            std::string::npos);
  EXPECT_EQ(c.header.find("MODEL_"), std::string::npos);
  // 4-bit weights are stored one per int8_t (not bit-packed), 8-bit data as int8_t.
  EXPECT_NE(c.source.find("static const int8_t"), std::string::npos);
  EXPECT_EQ(c.source.find("int16_t"), std::string::npos);
}

}  // namespace
}  // namespace qsearch::exporter
