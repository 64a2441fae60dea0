#include "train/zoo.h"

#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/rng.h"
#include "ir/window.h"
#include "train/params.h"

namespace qsearch::train {

namespace {

using ir::ValueId;

// Where a torch module sits: the node-name scope torch.onnx gives its ops and the prefix of its
// parameters ("/seq_blocks/seq_blocks.2" and "seq_blocks.2").
struct Module {
  std::string scope;
  std::string param;
  Module child(const std::string& name) const {
    return {scope + "/" + name, param.empty() ? name : param + "." + name};
  }
  // Element i of an nn.Sequential attribute: torch.onnx scopes it "<seq>/<seq>.<i>".
  Module seq(int i) const {
    std::string leaf = param.substr(param.rfind('.') + 1);
    return {scope + "/" + leaf + "." + std::to_string(i), param + "." + std::to_string(i)};
  }
};

Module top(const std::string& name) { return {"/" + name, name}; }
Module root() { return {"", ""}; }
// Element i of an nn.ModuleList iterated in forward(): the list itself has no scope.
Module module_list(const std::string& name, int i) {
  std::string q = name + "." + std::to_string(i);
  return {"/" + q, q};
}

// Builds a graph op by op, tracking the per-sample shape of the current value.
class Builder {
 public:
  Builder(uint64_t seed, Shape sample) : rng_(seed), shape_(std::move(sample)) {
    Shape in = {kDynamic};
    in.insert(in.end(), shape_.begin(), shape_.end());
    x_ = g_.add_input("input", in);
  }

  const Shape& shape() const { return shape_; }
  ValueId current() const { return x_; }
  void set_current(ValueId v, Shape shape) {
    x_ = v;
    shape_ = std::move(shape);
  }

  void linear(const Module& m, int64_t out) {
    if (shape_.size() != 1) {
      fail("Linear '{}' needs a flat input, got {}", m.param, shape_str(shape_));
    }
    const int64_t in = shape_[0];
    ValueId w = param(m.param + ".weight", {out, in}, in);
    ValueId b = param(m.param + ".bias", {out}, in);
    emit(ir::OpKind::kGemm, m.scope + "/Gemm", {x_, w, b}, ir::GemmAttrs{.trans_b = true});
    shape_ = {out};
  }

  void conv(const Module& m, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias,
            int64_t groups = 1) {
    if (shape_.size() != 3) {
      fail("Conv2d '{}' needs a [C, H, W] input, got {}", m.param, shape_str(shape_));
    }
    const int64_t c = shape_[0];
    const int64_t fan_in = c / groups * k * k;
    std::vector<ValueId> ins = {x_, param(m.param + ".weight", {out, c / groups, k, k}, fan_in)};
    if (bias) ins.push_back(param(m.param + ".bias", {out}, fan_in));
    ir::ConvAttrs a;
    a.kernel = {k, k};
    a.strides = {stride, stride};
    a.pads = {pad, pad, pad, pad};
    a.group = groups;
    emit(ir::OpKind::kConv, m.scope + "/Conv", ins, a);
    auto out_dim = [&](int64_t d) { return ir::window_out(d, k, stride, 1, pad, pad); };
    shape_ = {out, out_dim(shape_[1]), out_dim(shape_[2])};
    if (shape_[1] < 1 || shape_[2] < 1) {
      fail("Conv2d '{}': input too small for a {}x{} kernel", m.param, k, k);
    }
  }

  void batchnorm(const Module& m) {
    const int64_t c = shape_[0];
    auto filled = [&](const std::string& name, float v) {
      Tensor t({c}, DType::kFloat32);
      for (float& e : t.span<float>()) e = v;
      return g_.add_constant(m.param + "." + name, t);
    };
    ValueId scale = filled("weight", 1.0f), bias = filled("bias", 0.0f);
    ValueId mean = filled("running_mean", 0.0f), var = filled("running_var", 1.0f);
    emit(ir::OpKind::kBatchNorm, m.scope + "/BatchNormalization", {x_, scale, bias, mean, var},
         ir::BatchNormAttrs{.epsilon = 1e-5f, .momentum = 0.9f});
  }

  void relu(const Module& m) { emit(ir::OpKind::kRelu, m.scope + "/Relu", {x_}, ir::NoAttrs{}); }

  void dropout(const Module& m, float p) {
    emit(ir::OpKind::kDropout, m.scope + "/Dropout", {x_}, ir::DropoutAttrs{.ratio = p});
  }

  void maxpool(const Module& m, int64_t k) {
    ir::PoolAttrs a;
    a.kernel = {k, k};
    a.strides = {k, k};
    emit(ir::OpKind::kMaxPool, m.scope + "/MaxPool", {x_}, a);
    shape_ = {shape_[0], shape_[1] / k, shape_[2] / k};
    if (shape_[1] < 1 || shape_[2] < 1) fail("MaxPool2d '{}': input too small", m.param);
  }

  void global_avgpool(const Module& m) {
    emit(ir::OpKind::kGlobalAveragePool, m.scope + "/GlobalAveragePool", {x_}, ir::NoAttrs{});
    shape_ = {shape_[0], 1, 1};
  }

  void flatten(const Module& m) {
    if (shape_.size() == 1) return;
    emit(ir::OpKind::kFlatten, m.scope + "/Flatten", {x_}, ir::AxisAttrs{.axis = 1});
    shape_ = {shape_numel(shape_)};
  }

  void add(const Module& m, ValueId other) {
    emit(ir::OpKind::kAdd, m.scope + "/Add", {x_, other}, ir::NoAttrs{});
  }

  // nn.Linear on tokens [T, in]: torch.onnx writes MatMul with the transposed weight, then Add
  // of the bias. The weight is stored [in, out] under "<module>.weight"; the MatMul's config name
  // is the module's (MASE's fx name of the Linear), the bias Add's "<module>_add".
  void token_linear(const Module& m, int64_t out) {
    const int64_t in = shape_.back();
    ValueId w = param(m.param + ".weight", {in, out}, in);
    ValueId b = param(m.param + ".bias", {out}, in);
    std::string cfg = m.param;
    for (char& ch : cfg) ch = ch == '.' ? '_' : ch;
    emit(ir::OpKind::kMatMul, m.scope + "/MatMul", {x_, w}, ir::NoAttrs{}, cfg);
    emit(ir::OpKind::kAdd, m.scope + "/Add", {x_, b}, ir::NoAttrs{});
    shape_.back() = out;
  }

  // nn.LayerNorm(last dim): weight 1, bias 0, eps 1e-5.
  void layernorm(const Module& m) {
    const int64_t d = shape_.back();
    auto filled = [&](const std::string& name, float v) {
      Tensor t({d}, DType::kFloat32);
      for (float& e : t.span<float>()) e = v;
      return g_.add_constant(m.param + "." + name, t);
    };
    ValueId scale = filled("weight", 1.0f), bias = filled("bias", 0.0f);
    emit(ir::OpKind::kLayerNorm, m.scope + "/LayerNormalization", {x_, scale, bias},
         ir::LayerNormAttrs{.axis = -1, .epsilon = 1e-5f});
  }

  void gelu(const Module& m) { emit(ir::OpKind::kGelu, m.scope + "/Gelu", {x_}, ir::GeluAttrs{}); }

  // Ops in a module's own forward; `name` is the torch.onnx node name ("/blocks/blocks.0/attn/
  // MatMul_1"). Shapes are per sample (the batch dim is kept).
  void reshape(const std::string& name, Shape sample) {
    std::vector<int64_t> target = {-1};
    target.insert(target.end(), sample.begin(), sample.end());
    emit(ir::OpKind::kReshape, name, {x_}, ir::ReshapeAttrs{.shape = target});
    shape_ = std::move(sample);
  }
  void transpose(const std::string& name, const std::vector<int64_t>& perm) {
    Shape s(perm.size() - 1);
    for (size_t d = 1; d < perm.size(); ++d) s[d - 1] = shape_[perm[d] - 1];
    emit(ir::OpKind::kTranspose, name, {x_}, ir::TransposeAttrs{.perm = perm});
    shape_ = std::move(s);
  }
  void matmul(const std::string& name, ValueId b, const Shape& b_shape) {
    emit(ir::OpKind::kMatMul, name, {x_, b}, ir::NoAttrs{});
    shape_.back() = b_shape.back();
  }
  void mul_scalar(const std::string& name, float c) {
    ValueId k = g_.add_constant(name + "_constant", Tensor::from<float>({}, {c}));
    emit(ir::OpKind::kMul, name, {x_, k}, ir::NoAttrs{});
  }
  void softmax(const std::string& name) {
    emit(ir::OpKind::kSoftmax, name, {x_}, ir::AxisAttrs{.axis = -1});
  }
  // x + a learned [1, shape] parameter (zeros).
  void add_param(const std::string& name, const std::string& param_name) {
    Shape s = {1};
    s.insert(s.end(), shape_.begin(), shape_.end());
    Tensor t(s, DType::kFloat32);
    for (float& e : t.span<float>()) e = 0.0f;
    emit(ir::OpKind::kAdd, name, {x_, g_.add_constant(param_name, t)}, ir::NoAttrs{});
  }
  void add_value(const std::string& name, ValueId other) {
    emit(ir::OpKind::kAdd, name, {x_, other}, ir::NoAttrs{});
  }
  // Mean over sample dim `dim` (x.mean(dim)), the dim dropped.
  void mean(const std::string& name, int64_t dim) {
    emit(ir::OpKind::kReduceMean, name, {x_},
         ir::ReduceAttrs{.axes = {dim + 1}, .keepdims = false});
    shape_.erase(shape_.begin() + dim);
  }

  ir::Graph finish() {
    // torch.onnx names the graph output after output_names=["output"].
    g_.value(x_).name = "output";
    g_.mark_output(x_);
    g_.finalize();
    return std::move(g_);
  }

 private:
  ValueId param(const std::string& name, Shape shape, int64_t fan_in) {
    Tensor t(std::move(shape), DType::kFloat32);
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (float& e : t.span<float>()) e = static_cast<float>(rng_.uniform(-bound, bound));
    return g_.add_constant(name, t);
  }

  void emit(ir::OpKind kind, const std::string& name, std::vector<ValueId> inputs, ir::Attrs attrs,
            const std::string& config_name = "") {
    ValueId y = g_.add_value(name + "_output_0");
    g_.add_node(ir::Node{kind, name, std::move(inputs), {y}, std::move(attrs), config_name});
    x_ = y;
  }

  ir::Graph g_;
  Rng rng_;
  Shape shape_;
  ValueId x_;
};

void need_flat(const std::string& model, const Shape& s) {
  if (s.size() != 1) {
    fail(
        "model '{}' takes feature vectors [F], not samples of shape {}; use an image model "
        "(mlp, lenet5, resnet-s, toy) for image data",
        model, shape_str(s));
  }
}

void need_image(const std::string& model, const Shape& s) {
  if (s.size() != 3) {
    fail(
        "model '{}' takes images [C, H, W], not samples of shape {}; use mlp, toy or a jsc-* "
        "model for feature vectors",
        model, shape_str(s));
  }
}

ir::Graph jsc_tiny(Builder& b, int c) {
  need_flat("jsc-tiny", b.shape());
  Module s = top("seq_blocks");
  b.batchnorm(s.seq(0));
  b.relu(s.seq(1));
  b.linear(s.seq(2), c);
  b.relu(s.seq(3));
  return b.finish();
}

ir::Graph jsc_toy(Builder& b, int c) {
  need_flat("jsc-toy", b.shape());
  Module s = top("seq_blocks");
  b.batchnorm(s.seq(0));
  b.relu(s.seq(1));
  b.linear(s.seq(2), 8);
  b.batchnorm(s.seq(3));
  b.relu(s.seq(4));
  b.linear(s.seq(5), 8);
  b.batchnorm(s.seq(6));
  b.relu(s.seq(7));
  b.linear(s.seq(8), c);
  b.batchnorm(s.seq(9));
  b.relu(s.seq(10));
  return b.finish();
}

ir::Graph jsc_s(Builder& b, int c) {
  need_flat("jsc-s", b.shape());
  int i = 0;
  auto m = [&] { return module_list("module_list", i++); };
  b.batchnorm(m());
  b.relu(m());
  b.linear(m(), 64);
  b.batchnorm(m());
  b.relu(m());
  for (int64_t width : {32, 32, 32}) {
    b.linear(m(), width);
    b.relu(m());
  }
  b.linear(m(), c);
  b.batchnorm(m());
  b.relu(m());
  return b.finish();
}

ir::Graph jsc_trt(Builder& b, int c) {
  need_flat("jsc-trt", b.shape());
  Module s = top("seq_blocks");
  b.batchnorm(s.seq(0));
  b.relu(s.seq(1));
  b.linear(s.seq(2), 32);
  b.batchnorm(s.seq(3));
  b.relu(s.seq(4));
  b.linear(s.seq(5), 48);
  b.batchnorm(s.seq(6));
  b.relu(s.seq(7));
  b.dropout(s.seq(8), 0.5f);
  b.linear(s.seq(9), 16);
  b.batchnorm(s.seq(10));
  b.relu(s.seq(11));
  b.linear(s.seq(12), c);
  b.batchnorm(s.seq(13));
  b.relu(s.seq(14));
  return b.finish();
}

ir::Graph jsc_hls4ml(Builder& b, int c) {
  need_flat("jsc-hls4ml", b.shape());
  b.linear(top("fc1"), 64);
  b.relu(top("relu1"));
  b.linear(top("fc2"), 32);
  b.relu(top("relu2"));
  b.linear(top("fc3"), 32);
  b.relu(top("relu3"));
  b.linear(top("fc4"), c);
  return b.finish();
}

ir::Graph toy(Builder& b, int c) {
  b.flatten(root());
  Module s = top("seq_blocks");
  b.linear(s.seq(0), 8);
  b.relu(s.seq(1));
  b.linear(s.seq(2), 8);
  b.relu(s.seq(3));
  b.linear(s.seq(4), c);
  return b.finish();
}

ir::Graph mlp(Builder& b, int c) {
  b.flatten(root());
  b.linear(top("fc1"), 256);
  b.relu(top("relu1"));
  b.linear(top("fc2"), 128);
  b.relu(top("relu2"));
  b.linear(top("fc3"), c);
  return b.finish();
}

ir::Graph lenet5(Builder& b, int c) {
  need_image("lenet5", b.shape());
  b.conv(top("conv1"), 6, 5, 1, 2, true);
  b.relu(top("relu1"));
  b.maxpool(top("pool1"), 2);
  b.conv(top("conv2"), 16, 5, 1, 0, true);
  b.relu(top("relu2"));
  b.maxpool(top("pool2"), 2);
  b.flatten(root());
  b.linear(top("fc1"), 120);
  b.relu(top("relu3"));
  b.linear(top("fc2"), 84);
  b.relu(top("relu4"));
  b.linear(top("fc3"), c);
  return b.finish();
}

// torchvision-style BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, + identity or 1x1 conv-BN
// shortcut, ReLU.
void basic_block(Builder& b, const Module& m, int64_t out, int64_t stride) {
  const ValueId x = b.current();
  const Shape in_shape = b.shape();
  ValueId shortcut = x;
  if (stride != 1 || in_shape[0] != out) {
    Module ds = m.child("downsample");
    b.conv(ds.seq(0), out, 1, stride, 0, false);
    b.batchnorm(ds.seq(1));
    shortcut = b.current();
    b.set_current(x, in_shape);
  }
  b.conv(m.child("conv1"), out, 3, stride, 1, false);
  b.batchnorm(m.child("bn1"));
  b.relu(m.child("relu1"));
  b.conv(m.child("conv2"), out, 3, 1, 1, false);
  b.batchnorm(m.child("bn2"));
  b.add(m, shortcut);
  b.relu(m.child("relu2"));
}

ir::Graph resnet_s(Builder& b, int c) {
  need_image("resnet-s", b.shape());
  b.conv(top("conv1"), 16, 3, 1, 1, false);
  b.batchnorm(top("bn1"));
  b.relu(top("relu"));
  basic_block(b, top("layer1"), 16, 1);
  basic_block(b, top("layer2"), 32, 2);
  b.global_avgpool(top("avgpool"));
  b.flatten(root());
  b.linear(top("fc"), c);
  return b.finish();
}

// Pre-norm transformer encoder block (timm-style names): x + attn(norm1(x)), then
// x + mlp(norm2(x)); attention with separate q/k/v/out projections, heads batched in the
// MatMuls, scores scaled by Mul(1/sqrt(dh)), softmax over keys; MLP Linear-GELU-Linear.
void encoder_block(Builder& b, const Module& m, int64_t heads, int64_t mlp) {
  const ValueId x = b.current();
  const Shape s = b.shape();  // [T, D]
  const int64_t t = s[0], d = s[1], dh = d / heads;
  const std::string a = m.scope + "/attn";
  const Module attn = m.child("attn");
  b.layernorm(m.child("norm1"));
  const ValueId y = b.current();
  // q: [T, D] -> [T, H, dh] -> [H, T, dh]; k -> [H, dh, T]; v -> [H, T, dh].
  b.token_linear(attn.child("q_proj"), d);
  b.reshape(a + "/Reshape", {t, heads, dh});
  b.transpose(a + "/Transpose", {0, 2, 1, 3});
  const ValueId q = b.current();
  b.set_current(y, s);
  b.token_linear(attn.child("k_proj"), d);
  b.reshape(a + "/Reshape_1", {t, heads, dh});
  b.transpose(a + "/Transpose_1", {0, 2, 3, 1});
  const ValueId k = b.current();
  const Shape k_shape = b.shape();
  b.set_current(y, s);
  b.token_linear(attn.child("v_proj"), d);
  b.reshape(a + "/Reshape_2", {t, heads, dh});
  b.transpose(a + "/Transpose_2", {0, 2, 1, 3});
  const ValueId v = b.current();
  const Shape v_shape = b.shape();
  b.set_current(q, {heads, t, dh});
  b.matmul(a + "/MatMul", k, k_shape);
  b.mul_scalar(a + "/Mul", static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh))));
  b.softmax(a + "/Softmax");
  b.matmul(a + "/MatMul_1", v, v_shape);
  b.transpose(a + "/Transpose_3", {0, 2, 1, 3});
  b.reshape(a + "/Reshape_3", {t, d});
  b.token_linear(attn.child("out_proj"), d);
  b.add_value(m.scope + "/Add", x);
  const ValueId x2 = b.current();
  b.layernorm(m.child("norm2"));
  const Module mm = m.child("mlp");
  b.token_linear(mm.child("fc1"), mlp);
  b.gelu(mm.child("act"));
  b.token_linear(mm.child("fc2"), d);
  b.add_value(m.scope + "/Add_1", x2);
}

// vit-tiny: patch-embedding Conv(D, 7x7, stride 7) -> 16 tokens of D = 64, + learned position
// embedding, 2 pre-norm encoder blocks (4 heads, MLP 128), LayerNorm, mean over tokens, Linear.
ir::Graph vit_tiny(Builder& b, int c) {
  need_image("vit-tiny", b.shape());
  constexpr int64_t kDim = 64, kPatch = 7, kHeads = 4, kMlp = 128, kDepth = 2;
  const Shape in = b.shape();
  if (in[1] % kPatch != 0 || in[2] % kPatch != 0) {
    fail("model 'vit-tiny' needs an image side that is a multiple of {}, got {}", kPatch,
         shape_str(in));
  }
  b.conv(top("patch_embed"), kDim, kPatch, kPatch, 0, true);
  const int64_t tokens = b.shape()[1] * b.shape()[2];
  b.reshape("/Reshape", {kDim, tokens});  // x.flatten(2)
  b.transpose("/Transpose", {0, 2, 1});   // .transpose(1, 2)
  b.add_param("/Add", "pos_embed");
  const Module blocks = top("blocks");
  for (int i = 0; i < kDepth; ++i) encoder_block(b, blocks.seq(i), kHeads, kMlp);
  b.layernorm(top("norm"));
  b.mean("/ReduceMean", 0);
  b.linear(top("head"), c);
  return b.finish();
}

// Depthwise-separable block: depthwise 3x3 conv (groups = C) + BN + ReLU, pointwise 1x1 conv
// + BN + ReLU.
void dw_separable(Builder& b, const Module& m, int64_t out, int64_t stride) {
  const int64_t c = b.shape()[0];
  b.conv(m.child("dw"), c, 3, stride, 1, false, c);
  b.batchnorm(m.child("bn1"));
  b.relu(m.child("relu1"));
  b.conv(m.child("pw"), out, 1, 1, 0, false);
  b.batchnorm(m.child("bn2"));
  b.relu(m.child("relu2"));
}

// mobilenet-s: Conv(16, 3x3, stride 2) BN ReLU, depthwise-separable blocks 16->32, 32->64
// (stride 2), 64->64, GlobalAveragePool, Linear(64, C).
ir::Graph mobilenet_s(Builder& b, int c) {
  need_image("mobilenet-s", b.shape());
  const Module f = top("features");
  b.conv(f.seq(0), 16, 3, 2, 1, false);
  b.batchnorm(f.seq(1));
  b.relu(f.seq(2));
  dw_separable(b, f.seq(3), 32, 1);
  dw_separable(b, f.seq(4), 64, 2);
  dw_separable(b, f.seq(5), 64, 1);
  b.global_avgpool(top("pool"));
  b.flatten(root());
  b.linear(top("fc"), c);
  return b.finish();
}

struct Entry {
  ModelInfo info;
  std::function<ir::Graph(Builder&, int)> build;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = {
      {{"jsc-tiny", "MASE JSC_Tiny: BN, ReLU, Linear(16,5), ReLU", {16}, 5}, jsc_tiny},
      {{"jsc-toy", "MASE JSC_Toy: 3 Linear layers (8, 8, 5) with BN and ReLU", {16}, 5}, jsc_toy},
      {{"jsc-s", "MASE JSC_S (LogicNets JSC-S): 64-32-32-32-5 with BN and ReLU", {16}, 5}, jsc_s},
      {{"jsc-trt", "MASE jsc-trt: 32-48-16-5 with BN, ReLU, Dropout(0.5)", {16}, 5}, jsc_trt},
      {{"jsc-hls4ml", "hls4ml three-layer jet tagger 16-64-32-32-5, ReLU", {16}, 5}, jsc_hls4ml},
      {{"toy",
        "MASE ToyNet: flatten, Linear(D,8), ReLU, Linear(8,8), ReLU, Linear(8,C)",
        {1, 28, 28},
        10},
       toy},
      {{"mlp", "MLP 784-256-128-10, ReLU", {1, 28, 28}, 10}, mlp},
      {{"lenet5",
        "LeNet-5: conv 6 5x5 pad 2, pool, conv 16 5x5, pool, fc 120-84-10",
        {1, 28, 28},
        10},
       lenet5},
      {{"resnet-s",
        "small residual CNN: conv-BN-ReLU 16, 2 basic blocks (16, 32/2), GAP, fc",
        {1, 28, 28},
        10},
       resnet_s},
      {{"vit-tiny",
        "ViT: 7x7 patch conv to 16 tokens of 64, position embedding, 2 pre-norm encoder blocks "
        "(4 heads, GELU MLP 128), LayerNorm, token mean, fc",
        {1, 28, 28},
        10},
       vit_tiny},
      {{"mobilenet-s",
        "MobileNet-style CNN: conv 16/2, depthwise-separable blocks 32, 64/2, 64, GAP, fc",
        {1, 28, 28},
        10},
       mobilenet_s},
  };
  return e;
}

}  // namespace

const std::vector<ModelInfo>& zoo() {
  static const std::vector<ModelInfo> infos = [] {
    std::vector<ModelInfo> v;
    for (const Entry& e : entries()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

ir::Graph build_model(const std::string& name, const ZooOptions& options) {
  for (const Entry& e : entries()) {
    if (e.info.name != name) continue;
    Shape input = options.input_shape.empty() ? e.info.default_input : options.input_shape;
    for (int64_t d : input) {
      if (d < 1) fail("model '{}': bad input shape {}", name, shape_str(input));
    }
    const int classes = options.num_classes > 0 ? options.num_classes : e.info.default_classes;
    Builder b(options.seed, input);
    try {
      return e.build(b, classes);
    } catch (Error& err) {
      err.add_context(fmt::format("while building model '{}' for input {} and {} classes", name,
                                  shape_str(input), classes));
      throw;
    }
  }
  std::string names;
  for (const Entry& e : entries()) names += (names.empty() ? "" : ", ") + e.info.name;
  fail("unknown model '{}'; the zoo has: {} (see `qsearch train --list`)", name, names);
}

int64_t trainable_param_count(const ir::Graph& graph) {
  int64_t total = 0;
  for (ir::ValueId v : trainable_values(graph)) total += graph.value(v).data.numel();
  return total;
}

}  // namespace qsearch::train
