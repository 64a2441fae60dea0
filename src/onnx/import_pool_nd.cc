// MaxPool / AveragePool with one or three spatial dims (PyTorch's MaxPool1d / AvgPool1d,
// MaxPool3d / AvgPool3d), imported as the ir's 2-D pools between views, so that every engine
// runs them on its 2-D pooling exactly as it runs 2-D pools:
//
//   1-D  [N, C, L] -> [N, C, 1, L] -> pool (1, k) -> [N, C, L']
//   3-D  [N, C, D, H, W] -> [N, C*D, H, W] -> pool (kh, kw) -> [N, C, D, H'*W']
//        -> pool (kd, 1) -> [N, C, D', H', W']
//
// A 3-D window is the product of one interval per dim, so the pool separates: the max of a box is
// the max over depth of the per-plane maxima (padding is -inf in both), and its average is the
// average over depth of the per-plane averages, the divisor (window or valid elements, with or
// without ceil_mode's clipped windows) being the product of the per-dim counts either way. The
// float result differs from a one-pass average only by the rounding of the two divisions.
#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {
constexpr int64_t kMaxWindow = int64_t{1} << 24;  // as in import_ops.cc
}  // namespace

void Importer::op_pool_nd(int spatial) {
  const bool max = node_->op_type() == "MaxPool";
  const std::string& t = node_->op_type();
  if (in(0).kind != Entry::Kind::kActivation)
    bad("the input is a constant; qsearch does not fold {}", t);
  if (in(0).zero_pad) bad("a Pad before a {}-D pool is not folded", spatial);
  const ir::ValueId x = ir_input(0);
  const Shape xs = shape1(x);  // a copy: adding nodes grows the shape tables
  if (static_cast<int>(xs.size()) != 2 + spatial) {
    bad("input has shape {}; a {}-D pool needs a rank-{} input", shape_str(xs), spatial,
        2 + spatial);
  }
  auto ints = [&](const char* name, int64_t def, int64_t lo, size_t count) {
    std::vector<int64_t> v = attr_ints(name);
    if (v.empty() && !has_attr(name)) v.assign(count, def);
    if (v.size() != count) {
      bad("attribute '{}' has {} values; a {}-D pool needs {}", name, v.size(), spatial, count);
    }
    for (int64_t e : v) {
      if (e < lo || e > kMaxWindow)
        bad("attribute '{}' = {} is out of range {}..{}", name, e, lo, kMaxWindow);
    }
    return v;
  };
  const auto n = static_cast<size_t>(spatial);
  const std::vector<int64_t> kernel = ints("kernel_shape", 1, 1, n);
  const std::vector<int64_t> strides = ints("strides", 1, 1, n);
  const std::vector<int64_t> dilations = ints("dilations", 1, 1, n);
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads(2 * n, 0);
  if (auto_pad == "NOTSET") {
    pads = ints("pads", 0, 0, 2 * n);
  } else if (auto_pad != "VALID") {
    bad("auto_pad '{}' is not supported for a {}-D pool (NOTSET with pads, or VALID)", auto_pad,
        spatial);
  }
  const int64_t ceil_mode = attr_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) bad("ceil_mode must be 0 or 1");
  ir::PoolAttrs base;
  base.ceil_mode = ceil_mode == 1;
  if (max) {
    if (attr_int("storage_order", 0) != 0) bad("storage_order=1 is not supported");
    if (node_->output_size() > 1 && !node_->output(1).empty()) {
      bad("the Indices output (output 1) is not supported");
    }
  } else {
    const int64_t cip = attr_int("count_include_pad", 0);
    if (cip != 0 && cip != 1) bad("count_include_pad must be 0 or 1");
    base.count_include_pad = cip == 1;
  }
  const ir::OpKind kind = max ? ir::OpKind::kMaxPool : ir::OpKind::kAveragePool;
  auto view = [&](ir::ValueId v, std::vector<int64_t> shape, const char* step) {
    return add_ir_node(ir::OpKind::kReshape, ir::ReshapeAttrs{std::move(shape), false}, {v}, 0,
                       step);
  };
  const int64_t c = xs[1];
  if (spatial == 1) {
    ir::PoolAttrs a = base;
    a.kernel = {1, kernel[0]};
    a.strides = {1, strides[0]};
    a.dilations = {1, dilations[0]};
    a.pads = {0, pads[0], 0, pads[1]};
    const ir::ValueId x4 = view(x, {0, c, 1, xs[2]}, "nchw");
    const ir::ValueId y4 = add_ir_node(kind, a, {x4}, 0, "pool");
    view(y4, {0, c, shape1(y4)[3]}, nullptr);
    return;
  }
  // 3-D: H and W first (depth folded into the channels), then depth (H and W flattened).
  ir::PoolAttrs hw = base;
  hw.kernel = {kernel[1], kernel[2]};
  hw.strides = {strides[1], strides[2]};
  hw.dilations = {dilations[1], dilations[2]};
  hw.pads = {pads[1], pads[2], pads[4], pads[5]};
  ir::PoolAttrs d = base;
  d.kernel = {kernel[0], 1};
  d.strides = {strides[0], 1};
  d.dilations = {dilations[0], 1};
  d.pads = {pads[0], 0, pads[3], 0};
  const ir::ValueId planes = view(x, {0, c * xs[2], xs[3], xs[4]}, "planes");
  const ir::ValueId phw = add_ir_node(kind, hw, {planes}, 0, "pool_hw");
  const int64_t oh = shape1(phw)[2], ow = shape1(phw)[3];
  const ir::ValueId depth = view(phw, {0, c, xs[2], oh * ow}, "depth");
  const ir::ValueId pd = add_ir_node(kind, d, {depth}, 0, "pool_d");
  view(pd, {0, c, shape1(pd)[2], oh, ow}, nullptr);
}

}  // namespace qsearch::onnx::detail
