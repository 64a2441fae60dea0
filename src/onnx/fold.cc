// Constant folding at import: float32 constants and int64 shape computations.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {

// Row-major strides of `shape` aligned to the last `rank` dims, 0 where the dim is broadcast.
std::vector<int64_t> broadcast_strides(const Shape& shape, size_t rank) {
  std::vector<int64_t> strides(rank, 0);
  int64_t s = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    size_t d = shape.size() - 1 - i;
    size_t o = rank - 1 - i;
    strides[o] = shape[d] == 1 ? 0 : s;
    s *= shape[d];
  }
  return strides;
}

// out[i] = f(a[ia], b[ib]) over the broadcast shape.
template <typename T, typename F>
std::vector<T> broadcast_apply(const Shape& sa, const T* a, const Shape& sb, const T* b,
                               const Shape& out_shape, F f) {
  size_t r = out_shape.size();
  std::vector<int64_t> st_a = broadcast_strides(sa, r), st_b = broadcast_strides(sb, r);
  int64_t n = shape_numel(out_shape);
  std::vector<T> out;
  out.reserve(static_cast<size_t>(n));
  std::vector<int64_t> idx(r, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(f(a[ia], b[ib]));
    for (size_t d = r; d-- > 0;) {  // odometer increment
      ++idx[d];
      ia += st_a[d];
      ib += st_b[d];
      if (idx[d] < out_shape[d]) break;
      ia -= st_a[d] * idx[d];
      ib -= st_b[d] * idx[d];
      idx[d] = 0;
    }
  }
  return out;
}

SymDim sym_add(SymDim a, SymDim b, int sign) {
  using K = SymDim::Kind;
  if (a.kind == K::kUnknown || b.kind == K::kUnknown) return SymDim::unknown();
  int64_t bv = 0;
  if (__builtin_mul_overflow(b.value, sign, &bv)) fail("shape arithmetic overflows int64");
  if (b.kind == K::kKnown && bv == 0) return a;
  if (a.kind == K::kKnown && a.value == 0 && b.kind == K::kBatch) return SymDim::batch(bv);
  if (a.kind != b.kind) return SymDim::unknown();  // k*N + c has no form here
  int64_t v = 0;
  if (__builtin_add_overflow(a.value, bv, &v)) fail("shape arithmetic overflows int64");
  if (a.kind == K::kBatch) return v == 0 ? SymDim::known(0) : SymDim::batch(v);
  return SymDim::known(v);
}

SymDim sym_mul(SymDim a, SymDim b) {
  using K = SymDim::Kind;
  if (a.kind == K::kUnknown || b.kind == K::kUnknown) return SymDim::unknown();
  if (a.kind == K::kBatch && b.kind == K::kBatch) return SymDim::unknown();
  int64_t v = 0;
  if (__builtin_mul_overflow(a.value, b.value, &v)) fail("shape arithmetic overflows int64");
  if (a.kind == K::kKnown && b.kind == K::kKnown) return SymDim::known(v);
  return v == 0 ? SymDim::known(0) : SymDim::batch(v);
}

SymDim sym_div(SymDim a, SymDim b) {
  using K = SymDim::Kind;
  if (b.kind == K::kKnown && b.value == 0) fail("shape computation divides by zero");
  if (a.kind == K::kUnknown || b.kind != K::kKnown) return SymDim::unknown();
  if (a.value == INT64_MIN && b.value == -1) fail("shape arithmetic overflows int64");
  if (a.kind == K::kKnown) return SymDim::known(a.value / b.value);  // truncates, like C
  return a.value % b.value == 0 ? SymDim::batch(a.value / b.value) : SymDim::unknown();
}

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      fail("shapes {} and {} do not broadcast", shape_str(a), shape_str(b));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor fold_binary(char op, const Tensor& a, const Tensor& b) {
  Shape out_shape = broadcast_shapes(a.shape(), b.shape());
  auto f = [op](float x, float y) {
    switch (op) {
      case '+':
        return x + y;
      case '-':
        return x - y;
      case '*':
        return x * y;
      case '^':
        return static_cast<float>(std::pow(static_cast<double>(x), static_cast<double>(y)));
      default:
        return x / y;
    }
  };
  std::vector<float> v =
      broadcast_apply(a.shape(), a.data<float>(), b.shape(), b.data<float>(), out_shape, f);
  return Tensor::from(out_shape, v);
}

SymTensor fold_binary(char op, const SymTensor& a, const SymTensor& b) {
  SymTensor out;
  out.shape = broadcast_shapes(a.shape, b.shape);
  auto f = [op](SymDim x, SymDim y) {
    switch (op) {
      case '+':
        return sym_add(x, y, 1);
      case '-':
        return sym_add(x, y, -1);
      case '*':
        return sym_mul(x, y);
      default:
        return sym_div(x, y);
    }
  };
  out.elems = broadcast_apply(a.shape, a.elems.data(), b.shape, b.elems.data(), out.shape, f);
  return out;
}

SymTensor fold_equal(const SymTensor& a, const SymTensor& b) {
  SymTensor out;
  out.shape = broadcast_shapes(a.shape, b.shape);
  auto f = [](SymDim x, SymDim y) {
    using K = SymDim::Kind;
    if (x.kind == K::kKnown && y.kind == K::kKnown) return SymDim::known(x.value == y.value);
    // k*N with k > 0 is a positive size: it never equals a known value below 1.
    if (x.kind == K::kBatch && x.value > 0 && y.kind == K::kKnown && y.value < 1) {
      return SymDim::known(0);
    }
    if (y.kind == K::kBatch && y.value > 0 && x.kind == K::kKnown && x.value < 1) {
      return SymDim::known(0);
    }
    if (x.kind == K::kBatch && y.kind == K::kBatch && x.value == y.value) return SymDim::known(1);
    return SymDim::unknown();
  };
  out.elems = broadcast_apply(a.shape, a.elems.data(), b.shape, b.elems.data(), out.shape, f);
  return out;
}

SymTensor fold_where(const SymTensor& c, const SymTensor& a, const SymTensor& b) {
  // where(c, a, b) = pick per element; broadcast c against a and b by pairing indices.
  SymTensor out;
  const Shape ab = broadcast_shapes(a.shape, b.shape);
  out.shape = broadcast_shapes(c.shape, ab);
  // Broadcast each operand to the output shape (exact pairing through broadcast_apply).
  auto expand = [&](const SymTensor& t) {
    std::vector<SymDim> zeros(static_cast<size_t>(shape_numel(out.shape)), SymDim::known(0));
    Shape zs = out.shape;
    return broadcast_apply(t.shape, t.elems.data(), zs, zeros.data(), out.shape,
                           [](SymDim x, SymDim) { return x; });
  };
  const std::vector<SymDim> ce = expand(c), ae = expand(a), be = expand(b);
  for (size_t i = 0; i < ce.size(); ++i) {
    if (!ce[i].is_known()) {
      out.elems.push_back(SymDim::unknown());
    } else {
      out.elems.push_back(ce[i].value != 0 ? ae[i] : be[i]);
    }
  }
  return out;
}

Tensor fold_transpose(const Tensor& x, const std::vector<int64_t>& perm_in) {
  size_t r = static_cast<size_t>(x.rank());
  std::vector<int64_t> perm = perm_in;
  if (perm.empty()) {
    perm.resize(r);
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  std::vector<bool> seen(r, false);
  if (perm.size() != r) fail("perm has {} entries for a rank-{} tensor", perm.size(), r);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(r) || seen[p]) fail("perm is not a permutation");
    seen[p] = true;
  }
  Shape out_shape(r);
  std::vector<int64_t> in_strides(r, 1), st(r);
  for (size_t d = r; d-- > 1;) in_strides[d - 1] = in_strides[d] * x.shape()[d];
  for (size_t d = 0; d < r; ++d) {
    out_shape[d] = x.shape()[perm[d]];
    st[d] = in_strides[perm[d]];
  }
  Tensor out(out_shape, DType::kFloat32);
  const float* p = x.data<float>();
  float* q = out.data<float>();
  std::vector<int64_t> idx(r, 0);
  int64_t src = 0;
  for (int64_t i = 0; i < out.numel(); ++i) {
    q[i] = p[src];
    for (size_t d = r; d-- > 0;) {
      ++idx[d];
      src += st[d];
      if (idx[d] < out_shape[d]) break;
      src -= st[d] * idx[d];
      idx[d] = 0;
    }
  }
  return out;
}

namespace {

// Concatenation of row-major blocks: for each outer index, each input's slab in turn.
template <typename T>
std::vector<T> concat_elems(const std::vector<const Shape*>& shapes,
                            const std::vector<const T*>& data, int64_t axis, Shape* out_shape) {
  QSEARCH_CHECK(!shapes.empty());
  const Shape& s0 = *shapes[0];
  int64_t r = static_cast<int64_t>(s0.size());
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail("Concat axis out of range for rank {}", r);
  *out_shape = s0;
  (*out_shape)[axis] = 0;
  for (const Shape* s : shapes) {
    if (static_cast<int64_t>(s->size()) != r) fail("Concat inputs differ in rank");
    for (int64_t d = 0; d < r; ++d) {
      if (d != axis && (*s)[d] != s0[d]) {
        fail("Concat inputs {} and {} differ outside axis {}", shape_str(s0), shape_str(*s), axis);
      }
    }
    (*out_shape)[axis] += (*s)[axis];
  }
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s0[d];
  std::vector<T> out;
  out.reserve(static_cast<size_t>(shape_numel(*out_shape)));
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t k = 0; k < shapes.size(); ++k) {
      int64_t slab = 1;
      for (int64_t d = axis; d < r; ++d) slab *= (*shapes[k])[d];
      out.insert(out.end(), data[k] + o * slab, data[k] + (o + 1) * slab);
    }
  }
  return out;
}

}  // namespace

Tensor fold_concat(const std::vector<Tensor>& xs, int64_t axis) {
  std::vector<const Shape*> shapes;
  std::vector<const float*> data;
  for (const Tensor& x : xs) {
    shapes.push_back(&x.shape());
    data.push_back(x.data<float>());
  }
  Shape out_shape;
  std::vector<float> v = concat_elems(shapes, data, axis, &out_shape);
  return Tensor::from(out_shape, v);
}

SymTensor fold_concat(const std::vector<SymTensor>& xs, int64_t axis) {
  std::vector<const Shape*> shapes;
  std::vector<const SymDim*> data;
  for (const SymTensor& x : xs) {
    shapes.push_back(&x.shape);
    data.push_back(x.elems.data());
  }
  SymTensor out;
  out.elems = concat_elems(shapes, data, axis, &out.shape);
  return out;
}

Shape unsqueeze_shape(const Shape& in, std::vector<int64_t> axes) {
  int64_t r = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> is_new(r, false);
  for (int64_t& a : axes) {
    if (a < -r || a >= r) fail("Unsqueeze axis {} out of range for output rank {}", a, r);
    if (a < 0) a += r;
    if (is_new[a]) fail("Unsqueeze axis {} repeated", a);
    is_new[a] = true;
  }
  Shape out;
  size_t k = 0;
  for (int64_t d = 0; d < r; ++d) out.push_back(is_new[d] ? 1 : in[k++]);
  return out;
}

Shape squeeze_shape(const Shape& in, std::vector<int64_t> axes) {
  int64_t r = static_cast<int64_t>(in.size());
  std::vector<bool> drop(r, false);
  if (axes.empty()) {
    for (int64_t d = 0; d < r; ++d) drop[d] = in[d] == 1;
  }
  for (int64_t& a : axes) {
    if (a < -r || a >= r) fail("Squeeze axis {} out of range for rank {}", a, r);
    if (a < 0) a += r;
    if (in[a] != 1) fail("Squeeze axis {} has size {}, not 1", a, in[a]);
    drop[a] = true;
  }
  Shape out;
  for (int64_t d = 0; d < r; ++d) {
    if (!drop[d]) out.push_back(in[d]);
  }
  return out;
}

Shape reshape_shape(const Shape& in, const std::vector<int64_t>& target, bool allowzero) {
  Shape out = target;
  int infer = -1;
  int64_t known = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k] == 0 && !allowzero) {
      if (k >= in.size()) fail("Reshape: 0 at position {} but the input has rank {}", k, in.size());
      out[k] = in[k];
    }
    if (out[k] == -1) {
      if (infer >= 0) fail("Reshape: more than one -1 in {}", shape_str(target));
      infer = static_cast<int>(k);
    } else if (out[k] < 0 || __builtin_mul_overflow(known, out[k], &known)) {
      fail("Reshape: invalid target shape {}", shape_str(target));
    }
  }
  int64_t total = shape_numel(in);
  if (infer >= 0) {
    if (known == 0 || total % known != 0) {
      fail("Reshape: cannot reshape {} to {}", shape_str(in), shape_str(target));
    }
    out[infer] = total / known;
  } else if (known != total) {
    fail("Reshape: cannot reshape {} to {}", shape_str(in), shape_str(target));
  }
  return out;
}

}  // namespace qsearch::onnx::detail
