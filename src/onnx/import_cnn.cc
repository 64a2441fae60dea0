// Import of the modern-CNN operators (issue 11): GlobalMaxPool, HardSigmoid (alpha, beta),
// HardSwish, Resize, ConvTranspose. Conv1d is in op_conv (import_ops.cc), general Pad in op_pad.
#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {
constexpr int64_t kMaxWindow = int64_t{1} << 24;  // as in import_ops.cc
}  // namespace

void Importer::op_cnn_unary() {
  const std::string& t = node_->op_type();
  if (in(0).kind != Entry::Kind::kActivation) {
    bad("the input is a constant; qsearch does not fold {}", t);
  }
  if (t == "GlobalMaxPool") {
    add_ir_node(ir::OpKind::kGlobalMaxPool, ir::NoAttrs{}, {ir_input(0)});
  } else if (t == "HardSigmoid") {
    ir::HardSigmoidAttrs a;
    a.alpha = attr_float("alpha", 0.2f);
    a.beta = attr_float("beta", 0.5f);
    add_ir_node(ir::OpKind::kHardSigmoid, a, {ir_input(0)});
  } else {
    add_ir_node(ir::OpKind::kHardSwish, ir::NoAttrs{}, {ir_input(0)});
  }
}

// Resize (opsets 11-17): inputs X, roi, scales, sizes (roi ignored: only tf_crop_and_resize
// reads it). Scales or sizes must be constants (sizes may be a shape computation whose N and C
// are the input's own, as torch writes F.interpolate(size=...)); only H and W of NCHW change.
void Importer::op_resize() {
  if (in(0).kind != Entry::Kind::kActivation)
    bad("the input is a constant; qsearch does not fold Resize");
  const Shape& xs = shape1(in(0).value);
  if (xs.size() != 4) bad("input has shape {}; qsearch resizes NCHW inputs only", shape_str(xs));
  ir::ResizeAttrs a;
  const std::string mode = attr_string("mode", "nearest");
  if (mode == "nearest") {
    a.mode = ir::ResizeMode::kNearest;
  } else if (mode == "linear") {
    a.mode = ir::ResizeMode::kLinear;
  } else {
    bad("mode '{}' is not supported (nearest, linear)", mode);
  }
  const std::string coord = attr_string("coordinate_transformation_mode", "half_pixel");
  if (coord == "asymmetric") {
    a.coord = ir::ResizeCoord::kAsymmetric;
  } else if (coord == "half_pixel") {
    a.coord = ir::ResizeCoord::kHalfPixel;
  } else if (coord == "pytorch_half_pixel") {
    a.coord = ir::ResizeCoord::kPytorchHalfPixel;
  } else if (coord == "align_corners") {
    a.coord = ir::ResizeCoord::kAlignCorners;
  } else {
    bad("coordinate_transformation_mode '{}' is not supported (asymmetric, half_pixel, "
        "pytorch_half_pixel, align_corners)",
        coord);
  }
  const std::string nearest = attr_string("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") {
    a.nearest = ir::ResizeNearest::kRoundPreferFloor;
  } else if (nearest == "round_prefer_ceil") {
    a.nearest = ir::ResizeNearest::kRoundPreferCeil;
  } else if (nearest == "floor") {
    a.nearest = ir::ResizeNearest::kFloor;
  } else if (nearest == "ceil") {
    a.nearest = ir::ResizeNearest::kCeil;
  } else {
    bad("nearest_mode '{}' is not an ONNX nearest_mode", nearest);
  }
  if (attr_int("exclude_outside", 0) != 0) bad("exclude_outside=1 is not supported");
  if (has_attr("antialias") && attr_int("antialias", 0) != 0) bad("antialias=1 is not supported");
  // Opset 18's axes: scales / sizes name only those dims (the others keep their size).
  const std::vector<int64_t> axes = resize_axes(attr_ints("axes"), has_attr("axes"), xs.size());
  const bool has_scales =
      present(2) && !(in(2).kind == Entry::Kind::kFloatConst && in(2).data.numel() == 0);
  const bool has_sizes = present(3);
  if (has_scales == has_sizes) bad("exactly one of scales and sizes must be given");
  if (has_scales) {
    const Tensor& given = const_float(2, "scales");
    if (given.numel() != static_cast<int64_t>(axes.size())) {
      bad("scales has {} values; {} needs {}", given.numel(),
          has_attr("axes") ? "axes" : "an NCHW input", axes.size());
    }
    std::vector<float> v(4, 1.0f);
    for (size_t k = 0; k < axes.size(); ++k) v[axes[k]] = given.data<float>()[k];
    if (v[0] != 1.0f || v[1] != 1.0f)
      bad("scales {} resize N or C; only H and W may change", v[0] != 1.0f ? v[0] : v[1]);
    for (int d = 0; d < 2; ++d) {
      if (!(v[2 + d] > 0.0f && v[2 + d] <= 4096.0f))
        bad("scale {} is out of range (0, 4096]", v[2 + d]);
      a.scales[d] = v[2 + d];
    }
  } else {
    const SymTensor& given = const_sym(3, "sizes");
    if (given.elems.size() != axes.size()) {
      bad("sizes has {} values; {} needs {}", given.elems.size(),
          has_attr("axes") ? "axes" : "an NCHW input", axes.size());
    }
    const std::vector<SymDim> x = sym_shape(in(0).value);
    SymTensor s{{4}, x};
    for (size_t k = 0; k < axes.size(); ++k) s.elems[axes[k]] = given.elems[k];
    for (int d = 0; d < 2; ++d) {
      const SymDim &e = s.elems[d], &want = x[d];
      if (e.kind != want.kind || e.value != want.value) {
        bad("sizes {} resize N or C (input {}); only H and W may change", s.str(), shape_str(xs));
      }
    }
    for (int d = 0; d < 2; ++d) {
      const SymDim& e = s.elems[2 + d];
      if (!e.is_known() || e.value < 1 || e.value > (int64_t{1} << 24)) {
        bad("sizes {} must give known H and W in 1..2^24", s.str());
      }
      a.sizes[d] = e.value;
    }
  }
  add_ir_node(ir::OpKind::kResize, a, {ir_input(0)});
}

// ConvTranspose, 2-D (1-D: op_conv_transpose_1d; constant weight [C, M/group, kH, kW] and bias):
// kernel_shape, strides, dilations, pads (or auto_pad NOTSET / VALID), output_padding, group;
// output_shape refused.
void Importer::op_conv_transpose() {
  if (in(0).kind != Entry::Kind::kActivation) {
    bad("the input is a constant; qsearch does not fold ConvTranspose");
  }
  const Tensor& w = const_float(1, "weight");
  if (w.rank() == 3) return op_conv_transpose_1d();  // import_conv_transpose_nd.cc
  if (w.rank() == 5) return op_conv_transpose_3d();  // import_conv_transpose_nd.cc
  if (w.rank() != 4) {
    bad("weight has shape {}; qsearch supports 1-D, 2-D and 3-D transposed convolution only",
        shape_str(w.shape()));
  }
  if (present(2)) const_float(2, "bias");
  ir::ConvTransposeAttrs a;
  a.kernel = {w.dim(2), w.dim(3)};
  const std::vector<int64_t> ks = attr_ints("kernel_shape");
  if (has_attr("kernel_shape") &&
      (ks.size() != 2 || ks[0] != a.kernel[0] || ks[1] != a.kernel[1])) {
    bad("kernel_shape does not match the weight {}", shape_str(w.shape()));
  }
  a.strides = pair_attr("strides", 1, 1);
  a.dilations = pair_attr("dilations", 1, 1);
  a.output_padding = pair_attr("output_padding", 0, 0);
  a.group = attr_int("group", 1);
  if (a.group < 1 || a.group > kMaxWindow) bad("group {} is out of range", a.group);
  if (has_attr("output_shape")) bad("output_shape is not supported; give pads instead");
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") {
    bad("auto_pad '{}' is not supported for ConvTranspose (NOTSET with pads, or VALID)", auto_pad);
  }
  const std::vector<int64_t> pads = attr_ints("pads");
  if (auto_pad == "NOTSET" && !pads.empty()) {
    if (pads.size() != 4) bad("attribute 'pads' has {} values, expected 4 (2-D)", pads.size());
    for (int64_t p : pads) {
      if (p < 0 || p > kMaxWindow) bad("pad {} is out of range 0..{}", p, kMaxWindow);
    }
    a.pads = {pads[0], pads[1], pads[2], pads[3]};
  }
  std::vector<ir::ValueId> ins = {ir_input(0), ir_input(1)};
  if (present(2)) ins.push_back(ir_input(2));
  add_ir_node(ir::OpKind::kConvTranspose, a, ins);
}

}  // namespace qsearch::onnx::detail
