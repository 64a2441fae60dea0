// Concrete shape inference and structural verification (Graph::infer_shapes, Graph::verify).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"
#include "ir/graph.h"
#include "ir/rnn.h"
#include "ir/window.h"

namespace qsearch::ir {

namespace {

[[noreturn]] void node_fail(const Node& n, const std::string& msg) {
  fail("node '{}' ({}): {}", n.name, op_name(n.kind), msg);
}

Shape broadcast(const Node& n, const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      node_fail(n, fmt::format("shapes {} and {} do not broadcast", shape_str(a), shape_str(b)));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

WindowMode pool_mode(bool ceil_mode) { return ceil_mode ? WindowMode::kCeil : WindowMode::kFloor; }

// Upper bound on the elements of one tensor; keeps every size product far from int64 overflow.
constexpr int64_t kMaxElements = int64_t{1} << 48;
// Upper bound on kernel sizes, strides, dilations and pads.
constexpr int64_t kMaxWindow = int64_t{1} << 24;

template <typename T>
const T& attrs_of(const Node& n) {
  const T* a = std::get_if<T>(&n.attrs);
  if (a == nullptr) node_fail(n, "attributes of the wrong kind for this op");
  return *a;
}

void check_window(const Node& n, const std::array<int64_t, 2>& kernel,
                  const std::array<int64_t, 2>& strides, const std::array<int64_t, 2>& dilations,
                  const std::array<int64_t, 4>& pads) {
  for (int d = 0; d < 2; ++d) {
    if (kernel[d] < 1 || strides[d] < 1 || dilations[d] < 1 || kernel[d] > kMaxWindow ||
        strides[d] > kMaxWindow || dilations[d] > kMaxWindow) {
      node_fail(n, fmt::format("kernel, strides and dilations must be in 1..{}", kMaxWindow));
    }
  }
  for (int64_t p : pads) {
    if (p < 0 || p > kMaxWindow) node_fail(n, fmt::format("pads must be in 0..{}", kMaxWindow));
  }
}

Shape matmul_shape(const Node& n, Shape a, Shape b) {
  if (a.empty() || b.empty()) node_fail(n, "MatMul of a scalar");
  bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (a.back() != b[b.size() - 2]) {
    node_fail(n, fmt::format("inner dimensions differ: {} x {}", shape_str(a), shape_str(b)));
  }
  Shape ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  Shape out = broadcast(n, ba, bb);
  if (!a1) out.push_back(a[a.size() - 2]);
  if (!b1) out.push_back(b.back());
  return out;
}

// Multiplies dims, failing on overflow instead of wrapping (shapes come from user files). The
// bound holds with zero dims counted as 1, so that no product of a subset of dims (strides,
// Flatten) can overflow either.
int64_t checked_numel(const Node& n, const Shape& s) {
  int64_t total = 1, bound = 1;
  for (int64_t d : s) {
    if (d < 0) node_fail(n, fmt::format("shape {} has a negative dimension", shape_str(s)));
    if (__builtin_mul_overflow(bound, std::max<int64_t>(d, 1), &bound) || bound > kMaxElements) {
      node_fail(n, fmt::format("shape {} has more than 2^48 elements", shape_str(s)));
    }
    total *= d;
  }
  return total;
}

}  // namespace

std::vector<int> reduce_axes(const Node& n, const ReduceAttrs& at, int rank) {
  std::vector<int> axes;
  for (int64_t a : at.axes) {
    if (a < -rank || a >= rank) node_fail(n, fmt::format("axis {} out of range", a));
    axes.push_back(static_cast<int>(a < 0 ? a + rank : a));
  }
  if (axes.empty()) {  // ONNX: no axes reduces over every dim
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
    node_fail(n, "an axis is listed twice");
  }
  return axes;
}

ReduceRange reduce_range(const Node& n, const ReduceAttrs& at, int rank) {
  const std::vector<int> axes = reduce_axes(n, at, rank);
  for (size_t k = 1; k < axes.size(); ++k) {
    if (axes[k] != axes[k - 1] + 1) {
      node_fail(n,
                "reduces over dims that are not consecutive; qsearch supports one run of "
                "consecutive axes");
    }
  }
  return ReduceRange{axes.empty() ? 0 : axes.front(), axes.empty() ? 0 : axes.back() + 1};
}

std::vector<SliceDim> resolve_slice(const Node& n, const Shape& x) {
  const auto& at = attrs_of<SliceAttrs>(n);
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<SliceDim> out;
  for (int64_t d : x) out.push_back(SliceDim{0, 1, d});
  const size_t k = at.starts.size();
  if (at.ends.size() != k || at.axes.size() != k || at.steps.size() != k) {
    node_fail(n, "starts, ends, axes and steps differ in length");
  }
  std::vector<bool> seen(x.size(), false);
  for (size_t i = 0; i < k; ++i) {
    int64_t axis = at.axes[i];
    if (axis < -r || axis >= r) node_fail(n, fmt::format("axis {} out of range", axis));
    if (axis < 0) axis += r;
    if (seen[axis]) node_fail(n, fmt::format("axis {} is sliced twice", axis));
    seen[axis] = true;
    const int64_t dim = x[axis], step = at.steps[i];
    if (step == 0) node_fail(n, "step must not be 0");
    // ONNX: negative starts/ends count from the end, then clamp to [0, dim] (step > 0) or
    // [-1, dim - 1] (step < 0).
    auto norm = [dim](int64_t v) {
      if (v < 0) v = v < -dim ? -dim - 1 : v;
      return v < 0 ? v + dim : v;
    };
    int64_t start = norm(at.starts[i]), end = norm(at.ends[i]);
    int64_t count = 0;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      count = end > start ? (end - start + step - 1) / step : 0;
    } else {
      start = std::clamp<int64_t>(start, -1, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    out[axis] = SliceDim{count > 0 ? start : 0, step, count};
  }
  return out;
}

Shape infer_node_shape(const Node& n, const std::vector<const Shape*>& inputs) {
  auto in = [&](size_t k) -> const Shape& {
    if (k >= inputs.size() || inputs[k] == nullptr) {
      node_fail(n, fmt::format("missing input {}", k));
    }
    return *inputs[k];
  };
  Shape out;
  switch (n.kind) {
    case OpKind::kGemm: {
      const auto& at = attrs_of<GemmAttrs>(n);
      const Shape &a = in(0), &b = in(1);
      if (a.size() != 2 || b.size() != 2) {
        node_fail(n,
                  fmt::format("Gemm needs 2-D inputs, got {} and {}", shape_str(a), shape_str(b)));
      }
      int64_t m = at.trans_a ? a[1] : a[0], k = at.trans_a ? a[0] : a[1];
      int64_t kb = at.trans_b ? b[1] : b[0], nn = at.trans_b ? b[0] : b[1];
      if (k != kb) {
        node_fail(n, fmt::format("inner dimensions differ: {} x {}", shape_str(a), shape_str(b)));
      }
      out = {m, nn};
      if (n.inputs.size() > 2 && n.inputs[2] >= 0 && broadcast(n, out, in(2)) != out) {
        node_fail(n, fmt::format("bias {} does not broadcast to the output {}", shape_str(in(2)),
                                 shape_str(out)));
      }
      break;
    }
    case OpKind::kMatMul:
      out = matmul_shape(n, in(0), in(1));
      break;
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
      out = broadcast(n, in(0), in(1));
      break;
    case OpKind::kRelu:
    case OpKind::kLeakyRelu:
    case OpKind::kClip:
    case OpKind::kSigmoid:
    case OpKind::kTanh:
    case OpKind::kIdentity:
    case OpKind::kDropout:
      out = in(0);
      break;
    case OpKind::kSoftmax:
    case OpKind::kLogSoftmax: {
      out = in(0);
      int64_t axis = attrs_of<AxisAttrs>(n).axis;
      int64_t r = static_cast<int64_t>(out.size());
      if (axis < -r || axis >= r) node_fail(n, fmt::format("axis {} out of range", axis));
      break;
    }
    case OpKind::kBatchNorm: {
      out = in(0);
      if (out.size() < 2) node_fail(n, "input must have a channel dimension");
      for (size_t k = 1; k < 5; ++k) {
        if (in(k) != Shape{out[1]}) {
          node_fail(n, fmt::format("parameter {} has shape {}, expected [{}]", k, shape_str(in(k)),
                                   out[1]));
        }
      }
      break;
    }
    case OpKind::kConv: {
      const auto& at = attrs_of<ConvAttrs>(n);
      Shape x = in(0), w = in(1);
      // Conv1d (NCL, weight [M, C/group, k]): a 2-D convolution of height 1, so its attrs keep
      // the height entries at kernel 1, stride 1, dilation 1, pads 0.
      const bool conv1d = x.size() == 3 && w.size() == 3;
      if (conv1d) {
        if (at.kernel[0] != 1 || at.strides[0] != 1 || at.dilations[0] != 1 || at.pads[0] != 0 ||
            at.pads[2] != 0) {
          node_fail(n,
                    "a 1-D convolution has height entries other than kernel 1, stride 1, "
                    "dilation 1, pads 0");
        }
        x.insert(x.begin() + 2, 1);
        w.insert(w.begin() + 2, 1);
      } else if (x.size() != 4 || w.size() != 4) {
        node_fail(n, "only 1-D (NCL) and 2-D (NCHW) convolution are supported");
      }
      check_window(n, at.kernel, at.strides, at.dilations, at.pads);
      if (at.group < 1) node_fail(n, "group must be >= 1");
      if (x[1] != w[1] * at.group) {
        node_fail(n, fmt::format("input has {} channels, weight {} expects {} x group {}", x[1],
                                 shape_str(w), w[1], at.group));
      }
      if (w[0] % at.group != 0) node_fail(n, "output channels not divisible by group");
      if (w[2] != at.kernel[0] || w[3] != at.kernel[1]) {
        node_fail(n, "kernel_shape does not match the weight");
      }
      out = {
          x[0], w[0],
          window_out(x[2], at.kernel[0], at.strides[0], at.dilations[0], at.pads[0], at.pads[2]),
          window_out(x[3], at.kernel[1], at.strides[1], at.dilations[1], at.pads[1], at.pads[3])};
      if (out[2] < 1 || out[3] < 1) {
        node_fail(n, fmt::format("kernel does not fit the input {}", shape_str(x)));
      }
      if (n.inputs.size() > 2 && n.inputs[2] >= 0 && in(2) != Shape{w[0]}) {
        node_fail(n, fmt::format("bias has shape {}, expected [{}]", shape_str(in(2)), w[0]));
      }
      if (conv1d) out.erase(out.begin() + 2);
      break;
    }
    case OpKind::kMaxPool:
    case OpKind::kAveragePool: {
      const auto& at = attrs_of<PoolAttrs>(n);
      const Shape& x = in(0);
      if (x.size() != 4) node_fail(n, "only 2-D pooling (NCHW) is supported");
      check_window(n, at.kernel, at.strides, at.dilations, at.pads);
      out = {x[0], x[1],
             window_out(x[2], at.kernel[0], at.strides[0], at.dilations[0], at.pads[0], at.pads[2],
                        pool_mode(at.ceil_mode)),
             window_out(x[3], at.kernel[1], at.strides[1], at.dilations[1], at.pads[1], at.pads[3],
                        pool_mode(at.ceil_mode))};
      if (out[2] < 1 || out[3] < 1) {
        node_fail(n, fmt::format("window does not fit the input {}", shape_str(x)));
      }
      break;
    }
    case OpKind::kGlobalAveragePool: {
      const Shape& x = in(0);
      if (x.size() < 3) node_fail(n, "input must be N x C x spatial");
      out = x;
      for (size_t k = 2; k < out.size(); ++k) out[k] = 1;
      break;
    }
    case OpKind::kFlatten: {
      const Shape& x = in(0);
      int64_t r = static_cast<int64_t>(x.size());
      int64_t axis = attrs_of<AxisAttrs>(n).axis;
      if (axis < 0) axis += r;
      if (axis < 0 || axis > r) node_fail(n, fmt::format("axis out of range for {}", shape_str(x)));
      int64_t a = 1, b = 1;
      for (int64_t k = 0; k < r; ++k) (k < axis ? a : b) *= x[k];
      out = {a, b};
      break;
    }
    case OpKind::kReshape: {
      const auto& at = attrs_of<ReshapeAttrs>(n);
      const Shape& x = in(0);
      out = at.shape;
      int infer = -1;
      int64_t known = 1;
      for (size_t k = 0; k < out.size(); ++k) {
        if (out[k] == 0 && !at.allowzero) {
          if (k >= x.size()) node_fail(n, "0 in shape refers to a missing input dim");
          out[k] = x[k];
        }
        if (out[k] < -1) {
          node_fail(n,
                    fmt::format("target shape {} has a dimension below -1", shape_str(at.shape)));
        }
        if (out[k] == -1) {
          if (infer >= 0) node_fail(n, "more than one -1 in shape");
          infer = static_cast<int>(k);
        } else if (__builtin_mul_overflow(known, out[k], &known) || known > kMaxElements) {
          node_fail(n, fmt::format("target shape {} is too large", shape_str(at.shape)));
        }
      }
      int64_t total = checked_numel(n, x);
      if (infer >= 0) {
        if (known == 0 || total % known != 0) {
          node_fail(n, fmt::format("cannot reshape {} to {}", shape_str(x), shape_str(at.shape)));
        }
        out[infer] = total / known;
      } else if (known != total) {
        node_fail(n, fmt::format("cannot reshape {} ({} elements) to {}", shape_str(x), total,
                                 shape_str(at.shape)));
      }
      break;
    }
    case OpKind::kTranspose: {
      const auto& at = attrs_of<TransposeAttrs>(n);
      const Shape& x = in(0);
      std::vector<int64_t> perm = at.perm;
      if (perm.empty()) {
        perm.resize(x.size());
        std::iota(perm.rbegin(), perm.rend(), 0);
      }
      if (perm.size() != x.size()) node_fail(n, "perm length differs from the input rank");
      out.resize(x.size());
      std::vector<bool> seen(x.size(), false);
      for (size_t k = 0; k < perm.size(); ++k) {
        if (perm[k] < 0 || perm[k] >= static_cast<int64_t>(x.size()) || seen[perm[k]]) {
          node_fail(n, fmt::format("perm is not a permutation of 0..{}", x.size() - 1));
        }
        seen[perm[k]] = true;
        out[k] = x[perm[k]];
      }
      break;
    }
    case OpKind::kErf:
    case OpKind::kSqrt:
    case OpKind::kExp:
    case OpKind::kNeg:
    case OpKind::kGelu:
      out = in(0);
      break;
    case OpKind::kPow:
      out = broadcast(n, in(0), in(1));
      break;
    case OpKind::kReduceMean:
    case OpKind::kReduceSum:
    case OpKind::kReduceMax: {
      const auto& at = attrs_of<ReduceAttrs>(n);
      const Shape& x = in(0);
      const std::vector<int> axes = reduce_axes(n, at, static_cast<int>(x.size()));
      for (int d = 0; d < static_cast<int>(x.size()); ++d) {
        const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
        if (reduced && x[d] == 0) node_fail(n, "cannot reduce over an empty dimension");
        if (!reduced) {
          out.push_back(x[d]);
        } else if (at.keepdims) {
          out.push_back(1);
        }
      }
      break;
    }
    case OpKind::kLayerNorm: {
      const auto& at = attrs_of<LayerNormAttrs>(n);
      out = in(0);
      const int64_t r = static_cast<int64_t>(out.size());
      const int64_t axis = at.axis < 0 ? at.axis + r : at.axis;
      if (axis < 0 || axis >= r) node_fail(n, fmt::format("axis {} out of range", at.axis));
      if (!(at.epsilon >= 0.0f)) node_fail(n, "epsilon must be >= 0");
      const Shape norm(out.begin() + axis, out.end());
      for (size_t k = 1; k < n.inputs.size(); ++k) {
        if (n.inputs[k] < 0) continue;
        Shape p = in(k);
        while (p.size() > norm.size() && p.front() == 1) p.erase(p.begin());
        if (p != norm) {
          node_fail(n, fmt::format("{} has shape {}, expected the normalised dims {}",
                                   k == 1 ? "scale" : "bias", shape_str(in(k)), shape_str(norm)));
        }
      }
      break;
    }
    case OpKind::kGather: {
      const auto& at = attrs_of<GatherAttrs>(n);
      const Shape& x = in(0);
      const int64_t r = static_cast<int64_t>(x.size());
      const int64_t axis = at.axis < 0 ? at.axis + r : at.axis;
      if (axis < 0 || axis >= r) node_fail(n, fmt::format("axis {} out of range", at.axis));
      if (n.inputs.size() > 1) {  // indices read at run time (checked against x[axis] there)
        if (!at.indices.empty()) node_fail(n, "has both an indices input and constant indices");
        if (x[axis] == 0) node_fail(n, "gathers from an empty dimension");
        const Shape& idx = in(1);
        out.assign(x.begin(), x.begin() + axis);
        out.insert(out.end(), idx.begin(), idx.end());
        out.insert(out.end(), x.begin() + axis + 1, x.end());
        break;
      }
      int64_t count = 1;
      for (int64_t d : at.indices_shape) count *= d;
      if (count != static_cast<int64_t>(at.indices.size())) {
        node_fail(n, "indices do not match their shape");
      }
      for (int64_t i : at.indices) {
        if (i < -x[axis] || i >= x[axis]) {
          node_fail(
              n, fmt::format("index {} is out of range for dim {} of size {}", i, axis, x[axis]));
        }
      }
      out.assign(x.begin(), x.begin() + axis);
      out.insert(out.end(), at.indices_shape.begin(), at.indices_shape.end());
      out.insert(out.end(), x.begin() + axis + 1, x.end());
      break;
    }
    case OpKind::kHardSigmoid:
    case OpKind::kHardSwish:
      out = in(0);
      break;
    case OpKind::kIm2Col3d: {
      const auto& at = attrs_of<Im2Col3dAttrs>(n);
      const Shape& x = in(0);
      if (x.size() != 5) node_fail(n, "input must be N x C x D x H x W");
      check_window(n, at.kernel, at.strides, at.dilations, at.pads);
      if (at.transposed) {  // as ConvTranspose's output size, per dim
        for (int d = 0; d < 2; ++d) {
          const int64_t span = (at.kernel[d] - 1) * at.dilations[d];
          if (at.pads[d] > span || at.pads[d + 2] > span) {
            node_fail(n, fmt::format("pads {} exceed dilation * (kernel - 1) = {}; not supported",
                                     std::max(at.pads[d], at.pads[d + 2]), span));
          }
          if (at.output_padding[d] < 0 ||
              at.output_padding[d] >= std::max(at.strides[d], at.dilations[d])) {
            node_fail(n, "output_padding must be below max(stride, dilation)");
          }
        }
      } else if (at.output_padding != std::array<int64_t, 2>{}) {
        node_fail(n, "output_padding is for a transposed Im2Col3d only");
      }
      const WindowMode mode = at.transposed ? WindowMode::kTransposed : WindowMode::kFloor;
      const int64_t od = window_out(x[2], at.kernel[0], at.strides[0], at.dilations[0], at.pads[0],
                                    at.pads[2], mode, at.output_padding[0]);
      const int64_t oh = window_out(x[3], at.kernel[1], at.strides[1], at.dilations[1], at.pads[1],
                                    at.pads[3], mode, at.output_padding[1]);
      if (od < 1 || oh < 1)
        node_fail(n, fmt::format("kernel does not fit the input {}", shape_str(x)));
      out = {x[0], x[1] * at.kernel[0] * at.kernel[1], od * oh, x[4]};
      break;
    }
    case OpKind::kGlobalMaxPool: {
      const Shape& x = in(0);
      if (x.size() < 3) node_fail(n, "input must be N x C x spatial");
      out = x;
      for (size_t k = 2; k < out.size(); ++k) out[k] = 1;
      break;
    }
    case OpKind::kPad: {
      const auto& at = attrs_of<PadAttrs>(n);
      out = in(0);
      const size_t r = out.size();
      if (at.pads.size() != 2 * r) {
        node_fail(n, fmt::format("pads has {} values; a rank-{} input needs {}", at.pads.size(), r,
                                 2 * r));
      }
      for (size_t d = 0; d < r; ++d) {
        const int64_t b = at.pads[d], e = at.pads[d + r];
        if (b < 0 || e < 0) node_fail(n, "negative pads (cropping) are not supported");
        if (out[d] == kDynamic) {
          if (b != 0 || e != 0) node_fail(n, "padding a dimension of unknown size");
          continue;
        }
        if (at.mode == PadMode::kReflect && (b >= out[d] || e >= out[d])) {
          node_fail(
              n, fmt::format("reflect pads {}, {} need a dim {} larger than both", b, e, out[d]));
        }
        if (at.mode == PadMode::kEdge && out[d] == 0 && (b > 0 || e > 0)) {
          node_fail(n, "edge padding of an empty dim");
        }
        if (__builtin_add_overflow(out[d], b + e, &out[d])) node_fail(n, "padded dim overflows");
      }
      break;
    }
    case OpKind::kConvTranspose: {
      const auto& at = attrs_of<ConvTransposeAttrs>(n);
      const Shape &x = in(0), &w = in(1);
      if (x.size() != 4 || w.size() != 4) {
        node_fail(n, "only 2-D transposed convolution (NCHW) is supported");
      }
      if (at.group < 1 || w[0] % at.group != 0) node_fail(n, "bad group");
      if (x[1] != w[0]) {
        node_fail(n, fmt::format("input has {} channels, weight {} expects {}", x[1], shape_str(w),
                                 w[0]));
      }
      if (w[2] != at.kernel[0] || w[3] != at.kernel[1]) {
        node_fail(n, "kernel_shape does not match the weight");
      }
      out = {x[0], w[1] * at.group, 0, 0};
      for (int d = 0; d < 2; ++d) {
        const int64_t span = (at.kernel[d] - 1) * at.dilations[d];
        if (at.pads[d] > span || at.pads[d + 2] > span) {
          node_fail(n, fmt::format("pads {} exceed dilation * (kernel - 1) = {}; not supported",
                                   std::max(at.pads[d], at.pads[d + 2]), span));
        }
        if (at.output_padding[d] < 0 ||
            at.output_padding[d] >= std::max(at.strides[d], at.dilations[d])) {
          node_fail(n, "output_padding must be below max(stride, dilation)");
        }
        out[2 + d] = window_out(x[2 + d], at.kernel[d], at.strides[d], at.dilations[d], at.pads[d],
                                at.pads[d + 2], WindowMode::kTransposed, at.output_padding[d]);
        if (out[2 + d] < 1) node_fail(n, "empty output");
      }
      if (n.inputs.size() > 2 && n.inputs[2] >= 0 && in(2) != Shape{out[1]}) {
        node_fail(n, fmt::format("bias has shape {}, expected [{}]", shape_str(in(2)), out[1]));
      }
      break;
    }
    case OpKind::kResize: {
      const auto& at = attrs_of<ResizeAttrs>(n);
      out = in(0);
      if (out.size() != 4) node_fail(n, "only the H and W of an NCHW input are resized");
      for (int d = 0; d < 2; ++d) {
        if (at.sizes[0] > 0) {
          out[2 + d] = at.sizes[d];
        } else {
          const double o = std::floor(static_cast<double>(out[2 + d]) * at.scales[d]);
          if (!(at.scales[d] > 0.0f) || !(o <= (int64_t{1} << 40))) {
            node_fail(n, fmt::format("scale {} is not a positive size factor", at.scales[d]));
          }
          out[2 + d] = static_cast<int64_t>(o);
        }
        if (out[2 + d] < 1) node_fail(n, fmt::format("output size {} is empty", shape_str(out)));
      }
      break;
    }
    case OpKind::kSlice: {
      const std::vector<SliceDim> dims = resolve_slice(n, in(0));
      for (const SliceDim& d : dims) out.push_back(d.count);
      break;
    }
    case OpKind::kCast:
    case OpKind::kNot:
      out = in(0);
      break;
    case OpKind::kEqual:
    case OpKind::kAnd:
      out = broadcast(n, in(0), in(1));
      break;
    case OpKind::kWhere:
      out = broadcast(n, broadcast(n, in(0), in(1)), in(2));
      break;
    case OpKind::kExpand: {
      const Shape& target = attrs_of<ExpandAttrs>(n).shape;
      for (int64_t d : target) {
        if (d < 0)
          node_fail(n, fmt::format("target shape {} has a negative dim", shape_str(target)));
      }
      out = broadcast(n, in(0), target);
      break;
    }
    case OpKind::kGru:
    case OpKind::kLstm:
      out = rnn_output_shape(n, inputs);
      break;
    case OpKind::kConcat: {
      int64_t axis = attrs_of<AxisAttrs>(n).axis;
      out = in(0);
      int64_t r = static_cast<int64_t>(out.size());
      if (axis < 0) axis += r;
      if (axis < 0 || axis >= r) node_fail(n, "axis out of range");
      for (size_t k = 1; k < n.inputs.size(); ++k) {
        const Shape& y = in(k);
        if (static_cast<int64_t>(y.size()) != r) node_fail(n, "inputs differ in rank");
        for (int64_t d = 0; d < r; ++d) {
          if (d != axis && y[d] != out[d]) {
            node_fail(n, fmt::format("inputs {} and {} differ outside axis {}", shape_str(out),
                                     shape_str(y), axis));
          }
        }
        if (__builtin_add_overflow(out[axis], y[axis], &out[axis])) {
          node_fail(n, "concatenated dimension overflows");
        }
      }
      break;
    }
  }
  checked_numel(n, out);
  return out;
}

DType infer_node_dtype(const Node& n, const std::vector<DType>& inputs) {
  auto in = [&](size_t k) {
    if (k >= inputs.size()) node_fail(n, fmt::format("missing input {}", k));
    return inputs[k];
  };
  auto is_int = [](DType t) { return t == DType::kInt64 || t == DType::kInt32; };
  auto need = [&](size_t k, bool ok, const char* what) {
    if (!ok) {
      node_fail(n, fmt::format("input {} is {}; {} needs {}", k, dtype_name(in(k)), op_name(n.kind),
                               what));
    }
  };
  switch (n.kind) {
    case OpKind::kCast: {
      const DType to = attrs_of<CastAttrs>(n).to;
      need(0, in(0) == DType::kFloat32 || is_int(in(0)) || in(0) == DType::kUInt8,
           "float32, int64, int32 or bool");
      if (to != DType::kFloat32 && !is_int(to) && to != DType::kUInt8) {
        node_fail(n, fmt::format("casts to {}; qsearch casts to float32, int64, int32 and bool",
                                 dtype_name(to)));
      }
      return to;
    }
    case OpKind::kEqual:
      need(1, in(1) == in(0), "operands of one dtype");
      return DType::kUInt8;
    case OpKind::kNot:
    case OpKind::kAnd:
      for (size_t k = 0; k < inputs.size(); ++k) need(k, in(k) == DType::kUInt8, "bool");
      return DType::kUInt8;
    case OpKind::kWhere:
      need(0, in(0) == DType::kUInt8, "a bool condition");
      need(2, in(2) == in(1), "both branches of one dtype");
      return in(1);
    case OpKind::kGather:
      if (inputs.size() > 1) need(1, is_int(in(1)), "int64 or int32 indices");
      return in(0);
    case OpKind::kReshape:
    case OpKind::kFlatten:
    case OpKind::kIdentity:
    case OpKind::kDropout:
    case OpKind::kSlice:
    case OpKind::kExpand:
    case OpKind::kTranspose:
      return in(0);
    case OpKind::kConcat:
      for (size_t k = 1; k < inputs.size(); ++k) need(k, in(k) == in(0), "inputs of one dtype");
      return in(0);
    default:
      for (size_t k = 0; k < inputs.size(); ++k)
        need(k, in(k) == DType::kFloat32, "float32 (Cast it to float first)");
      return DType::kFloat32;
  }
}

std::vector<Shape> Graph::infer_shapes(int64_t batch) const {
  std::vector<Shape> s(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    const Value& v = values_[i];
    if (v.is_constant()) {
      s[i] = v.data.shape();
    } else if (v.producer < 0) {
      s[i] = v.shape;
      for (auto& d : s[i]) {
        if (d == kDynamic) d = batch;
        if (d < 0) fail("graph input '{}' has shape {}", v.name, shape_str(v.shape));
      }
    }
  }
  std::vector<const Shape*> ins;
  for (const Node& n : nodes_) {
    ins.clear();
    for (ValueId v : n.inputs) {
      ins.push_back(v >= 0 && v < static_cast<ValueId>(s.size()) ? &s[v] : nullptr);
    }
    Shape out = infer_node_shape(n, ins);
    if (n.outputs.empty()) node_fail(n, "node has no output");
    // Extra outputs (Dropout's mask) take the first output's shape.
    for (ValueId o : n.outputs) s[o] = out;
  }
  return s;
}

void Graph::verify() const {
  const auto nv = static_cast<ValueId>(values_.size());
  for (ValueId in : inputs_) {
    if (in < 0 || in >= nv) fail("graph input id {} out of range", in);
  }
  for (ValueId o : outputs_) {
    if (o < 0 || o >= nv) fail("graph output id {} out of range", o);
    if (values_[o].producer < 0 && !values_[o].is_constant() &&
        std::find(inputs_.begin(), inputs_.end(), o) == inputs_.end()) {
      fail("graph output '{}' is never computed", values_[o].name);
    }
  }
  if (outputs_.empty()) fail("graph has no outputs");
  std::vector<bool> available(values_.size(), false);
  for (ValueId in : inputs_) available[in] = true;
  for (size_t i = 0; i < values_.size(); ++i) {
    if (values_[i].is_constant()) available[i] = true;
  }
  struct Arity {
    size_t min, max;
  };
  for (const Node& n : nodes_) {
    Arity a{1, 1};
    switch (n.kind) {
      case OpKind::kGemm:
        a = {2, 3};
        break;
      case OpKind::kConv:
      case OpKind::kConvTranspose:
        a = {2, 3};
        break;
      case OpKind::kMatMul:
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul:
      case OpKind::kDiv:
        a = {2, 2};
        break;
      case OpKind::kBatchNorm:
        a = {5, 5};
        break;
      case OpKind::kPow:
        a = {2, 2};
        break;
      case OpKind::kLayerNorm:
        a = {2, 3};
        break;
      case OpKind::kConcat:
        a = {1, 1u << 20};
        break;
      case OpKind::kGather:
        a = {1, 2};
        break;
      case OpKind::kEqual:
      case OpKind::kAnd:
        a = {2, 2};
        break;
      case OpKind::kWhere:
        a = {3, 3};
        break;
      case OpKind::kGru:
      case OpKind::kLstm:
        a = {3, 6};
        break;
      default:
        break;
    }
    if (n.inputs.size() < a.min || n.inputs.size() > a.max) {
      node_fail(n, fmt::format("has {} inputs, expected {}..{}", n.inputs.size(), a.min, a.max));
    }
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      ValueId in = n.inputs[k];
      if (in == kNoValue && k >= a.min) continue;
      if (in < 0 || in >= nv) node_fail(n, fmt::format("input {} is missing", k));
      if (!available[in]) {
        node_fail(n, fmt::format("input '{}' is not computed before the node", values_[in].name));
      }
    }
    for (ValueId o : n.outputs) {
      if (o < 0 || o >= nv) node_fail(n, "output id out of range");
      available[o] = true;
    }
    bool attrs_ok = true;
    switch (n.kind) {
      case OpKind::kGemm:
        attrs_ok = std::holds_alternative<GemmAttrs>(n.attrs);
        break;
      case OpKind::kConv: {
        attrs_ok = std::holds_alternative<ConvAttrs>(n.attrs);
        if (attrs_ok) {
          const auto& c = attrs_of<ConvAttrs>(n);
          for (int d = 0; d < 2; ++d) {
            if (c.kernel[d] < 1 || c.strides[d] < 1 || c.dilations[d] < 1) {
              node_fail(n, "kernel, strides and dilations must be >= 1");
            }
          }
          for (int64_t p : c.pads) {
            if (p < 0) node_fail(n, "pads must be >= 0");
          }
          if (c.group < 1) node_fail(n, "group must be >= 1");
        }
        break;
      }
      case OpKind::kMaxPool:
      case OpKind::kAveragePool: {
        attrs_ok = std::holds_alternative<PoolAttrs>(n.attrs);
        if (attrs_ok) {
          const auto& p = attrs_of<PoolAttrs>(n);
          for (int d = 0; d < 2; ++d) {
            if (p.kernel[d] < 1 || p.strides[d] < 1 || p.dilations[d] < 1) {
              node_fail(n, "kernel, strides and dilations must be >= 1");
            }
          }
          for (int64_t q : p.pads) {
            if (q < 0) node_fail(n, "pads must be >= 0");
          }
        }
        break;
      }
      case OpKind::kBatchNorm:
        attrs_ok = std::holds_alternative<BatchNormAttrs>(n.attrs);
        break;
      case OpKind::kLeakyRelu:
        attrs_ok = std::holds_alternative<LeakyReluAttrs>(n.attrs);
        break;
      case OpKind::kClip:
        attrs_ok = std::holds_alternative<ClipAttrs>(n.attrs);
        break;
      case OpKind::kSoftmax:
      case OpKind::kLogSoftmax:
      case OpKind::kFlatten:
      case OpKind::kConcat:
        attrs_ok = std::holds_alternative<AxisAttrs>(n.attrs);
        break;
      case OpKind::kReshape:
        attrs_ok = std::holds_alternative<ReshapeAttrs>(n.attrs);
        break;
      case OpKind::kTranspose:
        attrs_ok = std::holds_alternative<TransposeAttrs>(n.attrs);
        break;
      case OpKind::kDropout:
        attrs_ok = std::holds_alternative<DropoutAttrs>(n.attrs);
        break;
      case OpKind::kReduceMean:
      case OpKind::kReduceSum:
      case OpKind::kReduceMax:
        attrs_ok = std::holds_alternative<ReduceAttrs>(n.attrs);
        break;
      case OpKind::kLayerNorm:
        attrs_ok = std::holds_alternative<LayerNormAttrs>(n.attrs);
        break;
      case OpKind::kGelu:
        attrs_ok = std::holds_alternative<GeluAttrs>(n.attrs);
        break;
      case OpKind::kGather:
        attrs_ok = std::holds_alternative<GatherAttrs>(n.attrs);
        break;
      case OpKind::kSlice:
        attrs_ok = std::holds_alternative<SliceAttrs>(n.attrs);
        break;
      case OpKind::kCast:
        attrs_ok = std::holds_alternative<CastAttrs>(n.attrs);
        break;
      case OpKind::kExpand:
        attrs_ok = std::holds_alternative<ExpandAttrs>(n.attrs);
        break;
      case OpKind::kHardSigmoid:
        attrs_ok = std::holds_alternative<HardSigmoidAttrs>(n.attrs);
        break;
      case OpKind::kPad:
        attrs_ok = std::holds_alternative<PadAttrs>(n.attrs);
        break;
      case OpKind::kResize:
        attrs_ok = std::holds_alternative<ResizeAttrs>(n.attrs);
        break;
      case OpKind::kConvTranspose: {
        attrs_ok = std::holds_alternative<ConvTransposeAttrs>(n.attrs);
        if (attrs_ok) {
          const auto& c = attrs_of<ConvTransposeAttrs>(n);
          for (int d = 0; d < 2; ++d) {
            if (c.kernel[d] < 1 || c.strides[d] < 1 || c.dilations[d] < 1) {
              node_fail(n, "kernel, strides and dilations must be >= 1");
            }
          }
          for (int64_t p : c.pads) {
            if (p < 0) node_fail(n, "pads must be >= 0");
          }
        }
        break;
      }
      case OpKind::kGru:
      case OpKind::kLstm:
        attrs_ok = std::holds_alternative<RnnAttrs>(n.attrs);
        break;
      default:
        break;
    }
    if (!attrs_ok) node_fail(n, "attributes of the wrong kind for this op");
  }
  // Concrete inference at batch 1 also checks every op's shape contract.
  (void)infer_shapes(1);
}

}  // namespace qsearch::ir
