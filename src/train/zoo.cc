#include "train/zoo.h"

#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/rng.h"
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

  void conv(const Module& m, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias) {
    if (shape_.size() != 3) {
      fail("Conv2d '{}' needs a [C, H, W] input, got {}", m.param, shape_str(shape_));
    }
    const int64_t c = shape_[0];
    const int64_t fan_in = c * k * k;
    std::vector<ValueId> ins = {x_, param(m.param + ".weight", {out, c, k, k}, fan_in)};
    if (bias) ins.push_back(param(m.param + ".bias", {out}, fan_in));
    ir::ConvAttrs a;
    a.kernel = {k, k};
    a.strides = {stride, stride};
    a.pads = {pad, pad, pad, pad};
    emit(ir::OpKind::kConv, m.scope + "/Conv", ins, a);
    auto out_dim = [&](int64_t d) { return (d + 2 * pad - k) / stride + 1; };
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

  void emit(ir::OpKind kind, const std::string& name, std::vector<ValueId> inputs,
            ir::Attrs attrs) {
    ValueId y = g_.add_value(name + "_output_0");
    g_.add_node(ir::Node{kind, name, std::move(inputs), {y}, std::move(attrs), ""});
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
