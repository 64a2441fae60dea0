// Conv with three spatial dims (PyTorch's nn.Conv3d; issue 14): an Im2Col3d (ir/ops.h: the depth
// and height taps of each output position gathered into channels), a Conv of kernel (1, kW) by
// the weight viewed as [M, C/group * kD * kH, 1, kW], and a view of its output
// [N, M, D' * H', W'] as [N, M, D', H', W']. The Conv computes exactly the 3-D convolution's sums
// (the same products), so each engine runs it on its 2-D convolution (the int engine exactly);
// ir::mase_op calls it `conv3d` and it keeps the module's config name (the two helper nodes are
// named outside any module).
#include <algorithm>

#include "ir/window.h"
#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {
constexpr int64_t kMaxWindow = int64_t{1} << 24;  // as in import_ops.cc
}  // namespace

void Importer::op_conv3d() {
  const Tensor& w = const_float(1, "weight");
  if (present(2)) const_float(2, "bias");
  if (in(0).kind != Entry::Kind::kActivation)
    bad("the input is a constant; qsearch does not fold Conv");
  if (in(0).zero_pad) bad("a Pad before a 3-D Conv is not folded");
  const ir::ValueId x = ir_input(0);
  const Shape xs = shape1(x);  // a copy: adding nodes grows the shape tables
  if (xs.size() != 5) {
    bad("input has shape {}; a 3-D Conv (weight {}) needs an NCDHW input", shape_str(xs),
        shape_str(w.shape()));
  }
  auto ints = [&](const char* name, int64_t def, int64_t lo, size_t count) {
    std::vector<int64_t> v = attr_ints(name);
    if (v.empty() && !has_attr(name)) v.assign(count, def);
    if (v.size() != count)
      bad("attribute '{}' has {} values; a 3-D Conv needs {}", name, v.size(), count);
    for (int64_t e : v) {
      if (e < lo || e > kMaxWindow)
        bad("attribute '{}' = {} is out of range {}..{}", name, e, lo, kMaxWindow);
    }
    return v;
  };
  if (has_attr("kernel_shape") &&
      ints("kernel_shape", 1, 1, 3) != std::vector<int64_t>{w.dim(2), w.dim(3), w.dim(4)}) {
    bad("kernel_shape does not match the weight {}", shape_str(w.shape()));
  }
  const std::vector<int64_t> strides = ints("strides", 1, 1, 3);
  const std::vector<int64_t> dilations = ints("dilations", 1, 1, 3);
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads(6, 0);
  if (auto_pad == "NOTSET") {
    pads = ints("pads", 0, 0, 6);
  } else if (auto_pad != "VALID") {
    bad("auto_pad '{}' is not supported for a 3-D Conv (NOTSET with pads, or VALID)", auto_pad);
  }
  const int64_t group = attr_int("group", 1);
  if (group < 1 || group > kMaxWindow) bad("group {} is out of range", group);
  if (xs[1] != w.dim(1) * group) {
    bad("input has {} channels, weight {} expects {} x group {}", xs[1], shape_str(w.shape()),
        w.dim(1), group);
  }

  ir::Im2Col3dAttrs ia;
  ia.kernel = {w.dim(2), w.dim(3)};
  ia.strides = {strides[0], strides[1]};
  ia.dilations = {dilations[0], dilations[1]};
  ia.pads = {pads[0], pads[1], pads[3], pads[4]};
  ir::ConvAttrs ca;
  ca.kernel = {1, w.dim(4)};
  ca.strides = {1, strides[2]};
  ca.dilations = {1, dilations[2]};
  ca.pads = {0, pads[2], 0, pads[5]};
  ca.group = group;

  // The helpers' names have no '/', so they belong to no module and the Conv alone names it.
  const std::string conv_name = node_name_;
  std::string helper = conv_name;
  std::replace(helper.begin(), helper.end(), '/', '|');
  node_name_ = helper + "~im2col";
  const ir::ValueId cols = add_ir_node(ir::OpKind::kIm2Col3d, ia, {x}, 0, "im2col");
  const int64_t od =
      window_rows(xs[2], ia.kernel[0], ia.strides[0], ia.dilations[0], ia.pads[0], ia.pads[2]);
  const int64_t oh = shape1(cols)[2] / od;

  Tensor w4 = w.clone().reshaped({w.dim(0), w.dim(1) * w.dim(2) * w.dim(3), 1, w.dim(4)});
  const ir::ValueId wv = g_.add_constant(node_->input(1) + "~2d", std::move(w4));
  for (auto& s : shapes_) s.push_back(g_.value(wv).data.shape());
  std::vector<ir::ValueId> ins = {cols, wv};
  if (present(2)) ins.push_back(ir_input(2));
  node_name_ = conv_name;
  const ir::ValueId y = add_ir_node(ir::OpKind::kConv, ca, ins, 0, "conv");
  node_name_ = helper + "~view";
  add_ir_node(ir::OpKind::kReshape, ir::ReshapeAttrs{{0, w.dim(0), od, oh, shape1(y)[3]}, false},
              {y});
  node_name_ = conv_name;
}

int64_t Importer::window_rows(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb,
                              int64_t pe) const {
  const int64_t rows = ir::window_out(in, k, s, d, pb, pe);
  if (rows < 1) bad("the kernel does not fit the input ({} with pads {} + {})", in, pb, pe);
  return rows;
}

}  // namespace qsearch::onnx::detail
