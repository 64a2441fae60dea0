// ConvTranspose with one spatial dim (PyTorch's nn.ConvTranspose1d; issue 14), imported as the
// ir's 2-D ConvTranspose between views, so that every engine runs it on its 2-D transposed
// convolution exactly as a 2-D one (the int engine exactly):
//
//   [N, C, L] -> [N, C, 1, L] -> ConvTranspose (1, k) by the weight [C, M/group, 1, k]
//             -> [N, M, 1, L'] -> [N, M, L']
//
// L' = stride * (L - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin - pad_end, as for
// each dim of the 2-D op. The ConvTranspose keeps the module's config name (MASE's
// `convtranspose2d` key, conv2d's entries); the two views are named outside any module, as
// import_conv3d.cc's helpers.
//
// ConvTranspose with three spatial dims (nn.ConvTranspose3d) is, like a 3-D Conv
// (import_conv3d.cc), a transposed Im2Col3d that gathers for every output depth and height the
// input rows each (kD, kH) tap reads (zeros where a tap falls between input rows or outside), the
// 2-D ConvTranspose of kernel (1, kW) over the width (strides, dilations, pads, output_padding of
// W; the group) by the weight rearranged as [C * kD * kH, M/group, 1, kW], and a view:
//
//   [N, C, D, H, W] -> [N, C*kD*kH, D'*H', W] -> [N, M, D'*H', W'] -> [N, M, D', H', W']
//
// Every output element sums exactly the 3-D transposed convolution's products (plus zeros), so
// each engine runs it on its 2-D transposed convolution, the int engine exactly. MASE op
// `convtranspose3d` (qsearch's, conv2d's entries), the module's config name on the ConvTranspose.
#include <algorithm>

#include "ir/window.h"
#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {
constexpr int64_t kMaxWindow = int64_t{1} << 24;  // as in import_ops.cc
}  // namespace

void Importer::op_conv_transpose_1d() {
  const Tensor& w = const_float(1, "weight");
  if (present(2)) const_float(2, "bias");
  if (in(0).zero_pad) bad("a Pad before a 1-D ConvTranspose is not folded");
  const ir::ValueId x = ir_input(0);
  const Shape xs = shape1(x);  // a copy: adding nodes grows the shape tables
  if (xs.size() != 3) {
    bad("input has shape {}; a 1-D ConvTranspose (weight {}) needs an NCL input", shape_str(xs),
        shape_str(w.shape()));
  }
  auto ints = [&](const char* name, int64_t def, int64_t lo, size_t count) {
    std::vector<int64_t> v = attr_ints(name);
    if (v.empty() && !has_attr(name)) v.assign(count, def);
    if (v.size() != count)
      bad("attribute '{}' has {} values; a 1-D ConvTranspose needs {}", name, v.size(), count);
    for (int64_t e : v) {
      if (e < lo || e > kMaxWindow)
        bad("attribute '{}' = {} is out of range {}..{}", name, e, lo, kMaxWindow);
    }
    return v;
  };
  if (has_attr("kernel_shape") && ints("kernel_shape", 1, 1, 1) != std::vector<int64_t>{w.dim(2)}) {
    bad("kernel_shape does not match the weight {}", shape_str(w.shape()));
  }
  if (has_attr("output_shape")) bad("output_shape is not supported; give pads instead");
  const std::vector<int64_t> strides = ints("strides", 1, 1, 1);
  const std::vector<int64_t> dilations = ints("dilations", 1, 1, 1);
  const std::vector<int64_t> output_padding = ints("output_padding", 0, 0, 1);
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads(2, 0);
  if (auto_pad == "NOTSET") {
    pads = ints("pads", 0, 0, 2);
  } else if (auto_pad != "VALID") {
    bad("auto_pad '{}' is not supported for ConvTranspose (NOTSET with pads, or VALID)", auto_pad);
  }
  const int64_t group = attr_int("group", 1);
  if (group < 1 || group > kMaxWindow) bad("group {} is out of range", group);
  if (xs[1] != w.dim(0)) {
    bad("input has {} channels, weight {} expects {}", xs[1], shape_str(w.shape()), w.dim(0));
  }

  ir::ConvTransposeAttrs a;
  a.kernel = {1, w.dim(2)};
  a.strides = {1, strides[0]};
  a.dilations = {1, dilations[0]};
  a.pads = {0, pads[0], 0, pads[1]};
  a.output_padding = {0, output_padding[0]};
  a.group = group;

  // The helpers' names have no '/', so they belong to no module and the ConvTranspose alone
  // names it.
  const std::string name = node_name_;
  std::string helper = name;
  std::replace(helper.begin(), helper.end(), '/', '|');
  node_name_ = helper + "~nchw";
  const ir::ValueId x4 = add_ir_node(ir::OpKind::kReshape,
                                     ir::ReshapeAttrs{{0, xs[1], 1, xs[2]}, false}, {x}, 0, "nchw");
  Tensor w4 = w.clone().reshaped({w.dim(0), w.dim(1), 1, w.dim(2)});
  const ir::ValueId wv = g_.add_constant(node_->input(1) + "~2d", std::move(w4));
  for (auto& s : shapes_) s.push_back(g_.value(wv).data.shape());
  std::vector<ir::ValueId> ins = {x4, wv};
  if (present(2)) ins.push_back(ir_input(2));
  node_name_ = name;
  const ir::ValueId y = add_ir_node(ir::OpKind::kConvTranspose, a, ins, 0, "convt");
  node_name_ = helper + "~view";
  add_ir_node(ir::OpKind::kReshape, ir::ReshapeAttrs{{0, shape1(y)[1], shape1(y)[3]}, false}, {y});
  node_name_ = name;
}

void Importer::op_conv_transpose_3d() {
  const Tensor& w = const_float(1, "weight");
  if (present(2)) const_float(2, "bias");
  if (in(0).zero_pad) bad("a Pad before a 3-D ConvTranspose is not folded");
  const ir::ValueId x = ir_input(0);
  const Shape xs = shape1(x);  // a copy: adding nodes grows the shape tables
  if (xs.size() != 5) {
    bad("input has shape {}; a 3-D ConvTranspose (weight {}) needs an NCDHW input", shape_str(xs),
        shape_str(w.shape()));
  }
  auto ints = [&](const char* name, int64_t def, int64_t lo, size_t count) {
    std::vector<int64_t> v = attr_ints(name);
    if (v.empty() && !has_attr(name)) v.assign(count, def);
    if (v.size() != count)
      bad("attribute '{}' has {} values; a 3-D ConvTranspose needs {}", name, v.size(), count);
    for (int64_t e : v) {
      if (e < lo || e > kMaxWindow)
        bad("attribute '{}' = {} is out of range {}..{}", name, e, lo, kMaxWindow);
    }
    return v;
  };
  const int64_t kd = w.dim(2), kh = w.dim(3), kw = w.dim(4);
  if (has_attr("kernel_shape") && ints("kernel_shape", 1, 1, 3) != std::vector<int64_t>{kd, kh, kw})
    bad("kernel_shape does not match the weight {}", shape_str(w.shape()));
  if (has_attr("output_shape")) bad("output_shape is not supported; give pads instead");
  const std::vector<int64_t> strides = ints("strides", 1, 1, 3);
  const std::vector<int64_t> dilations = ints("dilations", 1, 1, 3);
  const std::vector<int64_t> output_padding = ints("output_padding", 0, 0, 3);
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads(6, 0);
  if (auto_pad == "NOTSET") {
    pads = ints("pads", 0, 0, 6);
  } else if (auto_pad != "VALID") {
    bad("auto_pad '{}' is not supported for ConvTranspose (NOTSET with pads, or VALID)", auto_pad);
  }
  const int64_t group = attr_int("group", 1);
  if (group < 1 || group > kMaxWindow || w.dim(0) % group != 0)
    bad("group {} is out of range", group);
  if (xs[1] != w.dim(0)) {
    bad("input has {} channels, weight {} expects {}", xs[1], shape_str(w.shape()), w.dim(0));
  }

  ir::Im2Col3dAttrs ia;
  ia.kernel = {kd, kh};
  ia.strides = {strides[0], strides[1]};
  ia.dilations = {dilations[0], dilations[1]};
  ia.pads = {pads[0], pads[1], pads[3], pads[4]};
  ia.transposed = true;
  ia.output_padding = {output_padding[0], output_padding[1]};
  ir::ConvTransposeAttrs a;
  a.kernel = {1, kw};
  a.strides = {1, strides[2]};
  a.dilations = {1, dilations[2]};
  a.pads = {0, pads[2], 0, pads[5]};
  a.output_padding = {0, output_padding[2]};
  a.group = group;

  const std::string name = node_name_;
  std::string helper = name;
  std::replace(helper.begin(), helper.end(), '/', '|');
  node_name_ = helper + "~im2col";
  const ir::ValueId cols = add_ir_node(ir::OpKind::kIm2Col3d, ia, {x}, 0, "im2col");
  const int64_t od = ir::window_out(xs[2], kd, strides[0], dilations[0], pads[0], pads[3],
                                    ir::WindowMode::kTransposed, output_padding[0]);
  const int64_t oh = shape1(cols)[2] / od;

  // W [C, M/g, kD, kH, kW] -> [C * kD * kH, M/g, 1, kW]: row (c * kD + i) * kH + r, as the
  // Im2Col3d's channels.
  const int64_t c = w.dim(0), mg = w.dim(1);
  Tensor w4({c * kd * kh, mg, 1, kw}, DType::kFloat32);
  const float* src = w.data<float>();
  float* dst = w4.data<float>();
  for (int64_t ci = 0; ci < c; ++ci) {
    for (int64_t j = 0; j < mg; ++j) {
      for (int64_t i = 0; i < kd * kh; ++i) {
        for (int64_t t = 0; t < kw; ++t) {
          dst[((ci * kd * kh + i) * mg + j) * kw + t] = src[((ci * mg + j) * kd * kh + i) * kw + t];
        }
      }
    }
  }
  const ir::ValueId wv = g_.add_constant(node_->input(1) + "~2d", std::move(w4));
  for (auto& s : shapes_) s.push_back(g_.value(wv).data.shape());
  std::vector<ir::ValueId> ins = {cols, wv};
  if (present(2)) ins.push_back(ir_input(2));
  node_name_ = name;
  const ir::ValueId y = add_ir_node(ir::OpKind::kConvTranspose, a, ins, 0, "convt");
  node_name_ = helper + "~view";
  add_ir_node(ir::OpKind::kReshape,
              ir::ReshapeAttrs{{0, shape1(y)[1], od, oh, shape1(y)[3]}, false}, {y});
  node_name_ = name;
}

}  // namespace qsearch::onnx::detail
