#include "export/c_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <tuple>

#include "core/error.h"
#include "ir/ops.h"
#include "quant/fixed_point.h"
#include "runtime/conv3d_steps.h"
#include "runtime/node_quant.h"
#include "runtime/plan.h"

namespace qsearch::exporter {

namespace {

using quant::FixedFormat;
using quant::Rounding;
using runtime::NodeQuant;

// How a value is held in the generated code (docs/numerics.md "Execution modes": a value is the
// float input, codes of a format, or an exact accumulator at a binary point).
enum class Rep { kFloat, kCodes, kExact };

struct CVal {
  Rep rep = Rep::kFloat;
  std::string name;  // the C array
  FixedFormat fmt;   // kCodes
  int frac = 0;      // binary point: fmt.frac for codes, the accumulator's for exact values
  Shape shape;
  int64_t numel() const { return shape_numel(shape); }
};

std::string c_type(const FixedFormat& f) {
  if (f.is_signed) return f.width <= 8 ? "int8_t" : (f.width <= 16 ? "int16_t" : "int32_t");
  return f.width <= 8 ? "uint8_t" : (f.width <= 16 ? "uint16_t" : "uint32_t");
}

std::string i64(int64_t v) {
  if (v == INT64_MIN) return "INT64_MIN";
  return fmt::format("INT64_C({})", v);
}

std::string pow2f(int e) { return fmt::format("0x1p{}f", e); }

int rounding_id(Rounding r) {
  switch (r) {
    case Rounding::kHalfToEven:
      return 0;
    case Rounding::kHalfAwayFromZero:
      return 1;
    case Rounding::kFloor:
      break;
  }
  return 2;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The helpers the generated code calls, each emitted only when used (-Wall warns of unused
// static functions). Rounding ids: 0 half to even, 1 half away from zero, 2 floor.
constexpr const char* kFloorShr =
    R"(/* floor(m / 2^s) for 0 < s < 63, without relying on >> of negative values */
static int64_t qs_floor_shr(int64_t m, int s) {
  if (m >= 0) return m >> s;
  return -(int64_t)(((uint64_t)(-(m + 1))) >> s) - 1;
}

)";

constexpr const char* kRequant =
    R"(/* round(m * 2^-s) for s >= 1 with rounding r (docs/numerics.md "Requantization") */
static int64_t qs_shr(int64_t m, int s, int r) {
  int64_t q;
  uint64_t rem, half;
  if (s >= 64) return (r == 2 && m < 0) ? -1 : 0; /* |m| < 2^63 <= half a step */
  if (s == 63) {
    q = m < 0 ? -1 : 0;
    rem = (uint64_t)m & (UINT64_MAX >> 1);
  } else {
    q = qs_floor_shr(m, s);
    rem = (uint64_t)m & ((((uint64_t)1) << s) - 1u);
  }
  if (r == 2) return q;
  half = ((uint64_t)1) << (s - 1);
  if (rem > half) return q + 1;
  if (rem < half) return q;
  if (r == 0) return (q & 1) ? q + 1 : q;
  return m >= 0 ? q + 1 : q;
}

/* The code in [lo, hi] of the exact value m * 2^-(to + s) at binary point `to`: round, clamp */
static int64_t qs_requant(int64_t m, int s, int64_t lo, int64_t hi, int r) {
  int64_t v = m;
  if (s > 0) {
    v = qs_shr(m, s, r);
  } else if (s < 0) {
    const int k = -s;
    if (m == 0) return 0;
    if (k >= 63) return m > 0 ? hi : lo;
    if (m > qs_floor_shr(hi, k)) return hi;
    if (m < qs_floor_shr(lo, k)) return lo;
    v = m * (((int64_t)1) << k);
  }
  return v < lo ? lo : (v > hi ? hi : v);
}

)";

constexpr const char* kQuantize =
    R"(/* MASE's quantizer of a float: round(x * 2^f) clamped to [lo, hi], NaN -> 0; `scale` is
   2^f (docs/numerics.md "Quantize, dequantize, fake-quantize") */
static int64_t qs_quantize(float x, float scale, int64_t lo, int64_t hi, int r) {
  const float v = x * scale;
  float rest;
  int64_t t;
  if (v != v) return 0;
  if ((double)v <= (double)lo) return lo;
  if ((double)v >= (double)hi) return hi;
  t = (int64_t)v; /* toward zero, exact: |v| < 2^33 */
  rest = v - (float)t; /* exact */
  if (r == 2) {
    if (rest < 0.0f) --t;
  } else if (rest > 0.5f || (rest == 0.5f && (r == 1 || (t & 1)))) {
    ++t;
  } else if (rest < -0.5f || (rest == -0.5f && (r == 1 || (t & 1)))) {
    --t;
  }
  return t < lo ? lo : (t > hi ? hi : t);
}

)";

class Generator {
 public:
  Generator(const ir::Graph& g, const quant::QuantAssignment& q, const CExportOptions& o)
      : g_(g), o_(o), nq_(runtime::resolve_node_quant(g, q)), vals_(g.values().size()) {}

  CExport run() {
    if (g_.inputs().size() != 1) {
      fail("the C export needs a model with one input; this one has {}", g_.inputs().size());
    }
    if (g_.outputs().empty()) fail("the model has no output");
    const ir::Value& in = g_.value(g_.inputs()[0]);
    if (in.dtype != DType::kFloat32) {
      fail("the C export needs a float32 model input; '{}' is {}", in.name, dtype_name(in.dtype));
    }
    shapes_ = g_.infer_shapes(1);
    vals_[g_.inputs()[0]] =
        CVal{.rep = Rep::kFloat, .name = "input", .shape = shapes_[g_.inputs()[0]]};
    for (size_t i = 0; i < g_.nodes().size(); ++i) lower(g_.nodes()[i], nq_[i]);
    const ir::ValueId out_id = g_.outputs()[0];
    const CVal& out = value(out_id, nullptr);
    if (out.rep == Rep::kFloat) {
      fail("the model's output '{}' is its float input: nothing to run on integers",
           g_.value(out_id).name);
    }
    body_ += fmt::format(
        "  /* output '{}': dequantized once to float32 (one rounding, then an exact scale) */\n"
        "  for (i = 0; i < {}; ++i) output[i] = (float){}[i] * {};\n",
        g_.value(out_id).name, out.numel(), out.name, pow2f(-out.frac));

    CExport r;
    const std::string up = upper(o_.name);
    r.header_name = o_.name + ".h";
    r.source_name = o_.name + ".c";
    r.input_size = vals_[g_.inputs()[0]]->numel();
    r.output_size = out.numel();
    const std::string top = o_.comment.empty() ? "" : fmt::format("/* {} */\n", o_.comment);
    r.header = fmt::format(
        "/* Generated by qsearch {}: the quantized model on integers only, bit-equal to qsearch's\n"
        "   int engine (docs/export.md). */\n{}"
        "#ifndef {}_H_\n#define {}_H_\n\n"
        "#define {}_INPUT_SIZE {}\n#define {}_OUTPUT_SIZE {}\n\n"
        "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
        "/* One sample: {} floats in (quantized with the first layer's data_in format), {} "
        "dequantized\n   float logits out. Uses static buffers: not reentrant. */\n"
        "void {}_predict(const float *input, float *output);\n\n"
        "#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {}_H_ */\n",
        QSEARCH_VERSION, top, up, up, up, r.input_size, up, r.output_size, r.input_size,
        r.output_size, o_.name, up);
    std::string helpers;
    if (use_requant_) helpers += kFloorShr;
    if (use_requant_) helpers += kRequant;
    if (use_quantize_) helpers += kQuantize;
    r.source = fmt::format(
        "/* Generated by qsearch {} (docs/export.md). Integer arithmetic only, except the\n"
        "   quantization of the float input and the dequantization of the output; assumes\n"
        "   FLT_EVAL_METHOD == 0 (float expressions evaluated in float, as on SSE, ARM, RISC-V).\n"
        "*/\n{}"
        "#include \"{}\"\n\n#include <stdint.h>\n\n{}{}"
        "void {}_predict(const float *input, float *output) {{\n  long i;\n{}}}\n",
        QSEARCH_VERSION, top, r.header_name, helpers, decls_, o_.name, body_);
    return r;
  }

 private:
  [[noreturn]] void fail_node(const ir::Node& n, const std::string& why) const {
    fail("node '{}' ({}): {}", n.config_name.empty() ? n.name : n.config_name, ir::op_name(n.kind),
         why);
  }

  const CVal& value(ir::ValueId v, const ir::Node* n) const {
    if (!vals_[v]) {
      if (n) fail_node(*n, fmt::format("input '{}' has no integer value", g_.value(v).name));
      fail("value '{}' has no integer value", g_.value(v).name);
    }
    return *vals_[v];
  }

  std::string fresh(const char* prefix) { return fmt::format("{}{}", prefix, ++counter_); }

  // A const array of the codes of float32 constant `v` in format f.
  CVal const_codes(const ir::Node& n, ir::ValueId v, const FixedFormat& f, Rounding r) {
    const ir::Value& val = g_.value(v);
    if (val.data.dtype() != DType::kFloat32) {
      fail_node(n, fmt::format("constant '{}' is {}, not float32", val.name,
                               dtype_name(val.data.dtype())));
    }
    CVal c{.rep = Rep::kCodes,
           .name = fresh("k"),
           .fmt = f,
           .frac = f.frac,
           .shape = val.data.shape()};
    const float* d = val.data.data<float>();
    std::string s =
        fmt::format("/* '{}' of node '{}': {}{}.{} codes */\nstatic const {} {}[{}] = {{", val.name,
                    n.config_name, f.is_signed ? "s" : "u", f.width, f.frac, c_type(f), c.name,
                    std::max<int64_t>(1, c.numel()));
    for (int64_t i = 0; i < c.numel(); ++i) {
      s += (i % 16 == 0 ? "\n  " : " ");
      s += fmt::format("{},", quant::quantize(d[i], f, r));
    }
    if (c.numel() == 0) s += "0";
    decls_ += s + "\n};\n\n";
    return c;
  }

  // The codes of value v in format f (the node's quantizer, rounding r): the value itself when it
  // already is codes of f, else one conversion (quantizer or requantization) into a new buffer.
  CVal codes(const ir::Node& n, ir::ValueId v, const FixedFormat& f, Rounding r) {
    if (g_.value(v).is_constant()) return const_codes(n, v, f, r);
    const CVal src = value(v, &n);
    if (src.rep == Rep::kCodes && src.fmt.width == f.width && src.fmt.frac == f.frac &&
        src.fmt.is_signed == f.is_signed) {
      return src;
    }
    const auto key = std::make_tuple(src.name, f.width, f.frac, f.is_signed, rounding_id(r));
    if (auto it = cache_.find(key); it != cache_.end()) {
      CVal c = it->second;
      c.shape = src.shape;
      return c;
    }
    CVal c{.rep = Rep::kCodes, .name = fresh("t"), .fmt = f, .frac = f.frac, .shape = src.shape};
    decls_ += fmt::format("static {} {}[{}];\n", c_type(f), c.name, c.numel());
    const std::string lo = i64(f.min_code()), hi = i64(f.max_code());
    std::string expr;
    if (src.rep == Rep::kFloat) {
      use_quantize_ = true;
      expr = fmt::format("qs_quantize({}[i], {}, {}, {}, {})", src.name, pow2f(f.frac), lo, hi,
                         rounding_id(r));
    } else {
      use_requant_ = true;
      expr = fmt::format("qs_requant({}[i], {}, {}, {}, {})", src.name, src.frac - f.frac, lo, hi,
                         rounding_id(r));
    }
    body_ +=
        fmt::format("  /* {}: '{}' to {}{}.{} */\n  for (i = 0; i < {}; ++i) {}[i] = ({}){};\n",
                    n.config_name, g_.value(v).name, f.is_signed ? "s" : "u", f.width, f.frac,
                    c.numel(), c.name, c_type(f), expr);
    cache_[key] = c;
    return c;
  }

  CVal new_exact(const Shape& s, int frac) {
    CVal c{.rep = Rep::kExact, .name = fresh("v"), .frac = frac, .shape = s};
    decls_ += fmt::format("static int64_t {}[{}];\n", c.name, c.numel());
    return c;
  }

  static std::string scaled(const std::string& e, int shift) {
    return shift == 0 ? e : fmt::format("({}) * {}", e, i64(int64_t{1} << shift));
  }

  // The bias codes of a linear / conv with `outputs` outputs and products at binary point fp:
  // its input 2, or the constant of its bias Add (a MatMul + Add linear, runtime/node_quant.h).
  std::optional<CVal> bias(const ir::Node& n, const NodeQuant& q, int fp, int64_t outputs) {
    ir::ValueId bv = n.inputs.size() > 2 ? n.inputs[2] : -1;
    std::optional<FixedFormat> bf = q.inputs.size() > 2 ? q.inputs[2] : std::nullopt;
    if (q.bias_add >= 0) {
      const ir::Node& add = g_.nodes()[static_cast<size_t>(q.bias_add)];
      const int k = ir::bias_add_operand(g_, add);
      bv = add.inputs[k];
      bf = nq_[static_cast<size_t>(q.bias_add)].inputs[k];
      if (!bf) {
        // The int engine adds such a bias in float (docs/numerics.md), which C cannot mirror.
        fail_node(n,
                  "a linear exported as MatMul + bias Add without bias_* keys adds its bias in "
                  "float in the int engine; give the linear bias_width / bias_frac_width to "
                  "export it");
      }
    }
    if (bv < 0) return std::nullopt;
    const ir::Value& b = g_.value(bv);
    if (!b.is_constant() || b.data.dtype() != DType::kFloat32) {
      fail_node(n, fmt::format("the bias '{}' is not a float32 constant", b.name));
    }
    FixedFormat f;
    Rounding r = q.rounding;
    if (bf) {
      f = *bf;
    } else {
      f = runtime::float_bias_format(b.data, fp);
      r = Rounding::kHalfToEven;
    }
    CVal c = const_codes(n, bv, f, r);
    if (c.numel() != outputs && c.numel() != 1) {
      fail_node(n,
                fmt::format("bias '{}' has {} values for {} outputs", b.name, c.numel(), outputs));
    }
    return c;
  }

  // Exact accumulator binary point and the two alignment shifts; Error beyond what int64 shifts.
  std::tuple<int, int, int> align(const ir::Node& n, int fp, const std::optional<CVal>& b) {
    const int frac = b ? std::max(fp, b->frac) : fp;
    const int sp = frac - fp, sb = b ? frac - b->frac : 0;
    if (sp > 62 || sb > 62) {
      fail_node(n, fmt::format("aligning the products (frac {}) and the bias (frac {}) needs a "
                               "shift of {} bits, beyond int64; bring the binary points closer",
                               fp, b ? b->frac : fp, std::max(sp, sb)));
    }
    return {frac, sp, sb};
  }

  // A weighted node's exact accumulator: its binary point, the output buffer, and the C
  // statements (indented by `indent`) that align the products and add the bias at index `idx`.
  struct Accumulation {
    int frac;
    CVal y;
    std::string shift, add_b;
  };
  Accumulation accumulation(const ir::Node& n, const NodeQuant& q, int fp, int64_t outputs,
                            const Shape& ys, std::string_view indent, std::string_view idx) {
    const std::optional<CVal> b = bias(n, q, fp, outputs);
    const auto [frac, sp, sb] = align(n, fp, b);
    Accumulation r{frac, new_exact(ys, frac), "", ""};
    if (sp) r.shift = fmt::format("{}acc *= {};\n", indent, i64(int64_t{1} << sp));
    if (b) {
      r.add_b = fmt::format(
          "{}acc += {};\n", indent,
          scaled(fmt::format("(int64_t){}[{}]", b->name, b->numel() == 1 ? "0" : idx), sb));
    }
    return r;
  }

  CVal finish_weighted(const ir::Node& n, const NodeQuant& q, CVal y) {
    if (q.data_out) return codes(n, n.outputs[0], *q.data_out, q.rounding);
    return y;
  }

  void lower_linear(const ir::Node& n, const NodeQuant& q) {
    bool trans_b = false;
    if (n.kind == ir::OpKind::kGemm) trans_b = std::get<ir::GemmAttrs>(n.attrs).trans_b;
    const CVal x = codes(n, n.inputs[0], *q.inputs[0], q.rounding);
    if (!g_.value(n.inputs[1]).is_constant()) fail_node(n, "the weight is not a constant");
    const CVal w = codes(n, n.inputs[1], *q.inputs[1], q.rounding);
    if (w.shape.size() != 2) fail_node(n, "the weight is not a matrix");
    const int64_t k = trans_b ? w.shape[1] : w.shape[0], nn = trans_b ? w.shape[0] : w.shape[1];
    const int64_t rows = x.numel() / k;
    const int fp = x.frac + w.frac;
    const auto [frac, y, shift, add_b] =
        accumulation(n, q, fp, nn, shapes_[n.outputs[0]], "      ", "j");
    std::string acc = fmt::format(
        "      for (t = 0; t < {}; ++t) acc += (int64_t){}[i * {} + t] * (int64_t){}[{}];\n", k,
        x.name, k, w.name, trans_b ? fmt::format("j * {} + t", k) : fmt::format("t * {} + j", nn));
    body_ += fmt::format(
        "  /* {} ({}): exact accumulator at frac {} */\n"
        "  {{\n    long j, t;\n    for (i = 0; i < {}; ++i) {{\n      for (j = 0; j < {}; ++j) {{\n"
        "      int64_t acc = 0;\n{}{}{}      {}[i * {} + j] = acc;\n    }}\n    }}\n  }}\n",
        n.config_name, ir::op_name(n.kind), frac, rows, nn, acc, shift, add_b, y.name, nn);
    if (q.bias_add >= 0) {
      // The result is the bias Add's output, with the data_out it carries.
      const ir::Node& add = g_.nodes()[static_cast<size_t>(q.bias_add)];
      vals_[add.outputs[0]] = y;
      vals_[add.outputs[0]] = finish_weighted(add, nq_[static_cast<size_t>(q.bias_add)], y);
      return;
    }
    vals_[n.outputs[0]] = y;
    vals_[n.outputs[0]] = finish_weighted(n, q, y);
  }

  // The Im2Col3d of the 3-D convolution whose Conv is n (import_conv3d.cc: Im2Col3d -> Conv (1,
  // kW) -> view), else nullptr.
  const ir::Node* conv3d_gather(const ir::Node& n) const {
    const ir::NodeId p = g_.value(n.inputs[0]).producer;
    if (p < 0 || g_.node(p).kind != ir::OpKind::kIm2Col3d) return nullptr;
    return &g_.node(p);
  }

  // A 3-D convolution: the Conv n of kernel (1, kW) over Im2Col3d `im`'s gathered taps, written
  // as one loop nest over the Im2Col3d's NCDHW input (its data_in codes; nothing is gathered),
  // the weight [M, C/g * kD * kH, 1, kW] read as [M, C/g, kD, kH, kW]. Exact int64 sums, as the
  // int engine's conv over the gathered codes (the gathered zeros add nothing).
  void lower_conv3d(const ir::Node& n, const NodeQuant& q, const ir::Node& im) {
    const auto& ia = std::get<ir::Im2Col3dAttrs>(im.attrs);
    const auto& a = std::get<ir::ConvAttrs>(n.attrs);
    const CVal x = codes(n, im.inputs[0], *q.inputs[0], q.rounding);
    if (!g_.value(n.inputs[1]).is_constant()) fail_node(n, "the weight is not a constant");
    const CVal w = codes(n, n.inputs[1], *q.inputs[1], q.rounding);
    if (x.shape.size() != 5 || w.shape.size() != 4) fail_node(n, "not an imported 3-D Conv");
    const kernels::Im2Col3dParams p = runtime::im2col3d_params(ia, x.shape);
    const Shape& ys = shapes_[n.outputs[0]];
    const int64_t co = ys[1], ow = ys[3], kw = w.shape[3];
    const int64_t cg = w.shape[1] / (p.kernel_d * p.kernel_h), ocg = co / a.group;
    const int fp = x.frac + w.frac;
    const auto [frac, y, shift, add_b] = accumulation(n, q, fp, co, ys, "            ", "o");
    body_ += fmt::format(
        "  /* {} (Conv3d {}x{}x{}, stride {}x{}x{}, dilation {}x{}x{}, begin pads {},{},{}, group "
        "{}): exact accumulator at frac {} */\n"
        "  {{\n    long o, pz, py, px, cc, t, u, v, iz, iy, ix;\n"
        "    for (o = 0; o < {co}; ++o) {{\n      for (pz = 0; pz < {od}; ++pz) {{\n"
        "      for (py = 0; py < {oh}; ++py) {{\n        for (px = 0; px < {ow}; ++px) {{\n"
        "          int64_t acc = 0;\n"
        "          for (cc = 0; cc < {cg}; ++cc) {{\n            for (t = 0; t < {kd}; ++t) {{\n"
        "              iz = pz * {sd} - {pd} + t * {dd};\n"
        "              if (iz < 0 || iz >= {d}) continue;\n"
        "              for (u = 0; u < {kh}; ++u) {{\n"
        "                iy = py * {sh} - {ph} + u * {dh};\n"
        "                if (iy < 0 || iy >= {h}) continue;\n"
        "                for (v = 0; v < {kw}; ++v) {{\n"
        "                  ix = px * {sw} - {pw} + v * {dw};\n"
        "                  if (ix < 0 || ix >= {wd}) continue;\n"
        "                  acc += (int64_t){x}[((((o / {ocg}) * {cg} + cc) * {d} + iz) * {h} + "
        "iy) * {wd} + ix] *\n"
        "                         (int64_t){w}[(((o * {cg} + cc) * {kd} + t) * {kh} + u) * {kw} + "
        "v];\n"
        "                }}\n              }}\n            }}\n          }}\n{shift}{add_b}"
        "          {y}[((o * {od} + pz) * {oh} + py) * {ow} + px] = acc;\n"
        "        }}\n      }}\n      }}\n    }}\n  }}\n",
        n.config_name, p.kernel_d, p.kernel_h, kw, p.stride_d, p.stride_h, a.strides[1],
        p.dilation_d, p.dilation_h, a.dilations[1], p.pad_d, p.pad_h, a.pads[1], a.group, frac,
        fmt::arg("co", co), fmt::arg("od", p.out_d), fmt::arg("oh", p.out_h), fmt::arg("ow", ow),
        fmt::arg("cg", cg), fmt::arg("kd", p.kernel_d), fmt::arg("kh", p.kernel_h),
        fmt::arg("kw", kw), fmt::arg("sd", p.stride_d), fmt::arg("sh", p.stride_h),
        fmt::arg("sw", a.strides[1]), fmt::arg("pd", p.pad_d), fmt::arg("ph", p.pad_h),
        fmt::arg("pw", a.pads[1]), fmt::arg("dd", p.dilation_d), fmt::arg("dh", p.dilation_h),
        fmt::arg("dw", a.dilations[1]), fmt::arg("d", p.in_d), fmt::arg("h", p.in_h),
        fmt::arg("wd", p.width), fmt::arg("ocg", ocg), fmt::arg("x", x.name), fmt::arg("w", w.name),
        fmt::arg("shift", shift), fmt::arg("add_b", add_b), fmt::arg("y", y.name));
    vals_[n.outputs[0]] = y;
    vals_[n.outputs[0]] = finish_weighted(n, q, y);
  }

  // A transposed convolution, 2-D (ConvTranspose, weight [C, M/g, kH, kW]) or 3-D as imported
  // (transposed Im2Col3d `im` -> ConvTranspose (1, kW) by [C * kD * kH, M/g, 1, kW] -> view),
  // written as one loop nest over the NCHW / NCDHW input codes: output (pz, py, px) sums, over
  // each tap (t, u, v) whose input position solves pz = iz * sD - pD + t * dD (and likewise for
  // H, W) inside the input, the products of the group's input channels. Exact int64 sums, as
  // the int engine's conv over the zero-inserted (and gathered) codes, whose zeros add nothing.
  void lower_conv_transpose(const ir::Node& n, const NodeQuant& q) {
    const auto& a = std::get<ir::ConvTransposeAttrs>(n.attrs);
    const ir::Node* im = conv3d_gather(n);
    if (im && !std::get<ir::Im2Col3dAttrs>(im->attrs).transposed) {
      fail_node(n, "a ConvTranspose after a forward Im2Col3d is not an imported 3-D ConvTranspose");
    }
    const CVal x = codes(n, im ? im->inputs[0] : n.inputs[0], *q.inputs[0], q.rounding);
    if (!g_.value(n.inputs[1]).is_constant()) fail_node(n, "the weight is not a constant");
    const CVal w = codes(n, n.inputs[1], *q.inputs[1], q.rounding);
    if (x.shape.size() != (im ? 5u : 4u) || w.shape.size() != 4) {
      fail_node(n, "only 2-D and (imported) 3-D transposed convolutions export");
    }
    const Shape& ys = shapes_[n.outputs[0]];
    const int64_t co = ys[1], c = x.shape[1], mg = w.shape[1], kw = w.shape[3];
    const int64_t cg = c / a.group;
    // Per dim D, H, W: input size, kernel, stride, dilation, begin pad, output size.
    std::array<int64_t, 3> in{}, k{}, st{}, dl{}, pb{}, out{};
    std::string widx;
    if (im) {
      const auto& ia = std::get<ir::Im2Col3dAttrs>(im->attrs);
      const kernels::Im2Col3dParams p = runtime::im2col3d_params(ia, x.shape);
      in = {p.in_d, p.in_h, p.width};
      k = {p.kernel_d, p.kernel_h, kw};
      st = {p.stride_d, p.stride_h, a.strides[1]};
      dl = {p.dilation_d, p.dilation_h, a.dilations[1]};
      pb = {p.pad_d, p.pad_h, a.pads[1]};
      out = {p.out_d, p.out_h, ys[3]};
      widx = "(((ci * {kd} + t) * {kh} + u) * {mg} + j) * {kw} + v";  // [C*kD*kH, M/g, 1, kW]
    } else {
      in = {1, x.shape[2], x.shape[3]};
      k = {1, a.kernel[0], a.kernel[1]};
      st = {1, a.strides[0], a.strides[1]};
      dl = {1, a.dilations[0], a.dilations[1]};
      pb = {0, a.pads[0], a.pads[1]};
      out = {1, ys[2], ys[3]};
      widx = "((ci * {mg} + j) * {kh} + u) * {kw} + v";  // [C, M/g, kH, kW]
    }
    if (w.shape[0] != (im ? c * k[0] * k[1] : c) || mg * a.group != co || c % a.group != 0) {
      fail_node(n, "the weight does not match the input channels and the group");
    }
    const int fp = x.frac + w.frac;
    const auto [frac, y, shift, add_b] = accumulation(n, q, fp, co, ys, "          ", "o");
    // The input position of tap `idx` for output position `pos` in dim d into `var`, or the
    // next tap when there is none (`num`: the scaled position).
    auto tap = [&](const char* pos, const char* num, const char* var, const char* idx, int d) {
      return fmt::format(
          "{0} = {1} + {2} - {3} * {4};\n"
          "                  if ({0} < 0 || {0} % {5} != 0 || {0} / {5} >= {6}) continue;\n"
          "                  {7} = {0} / {5};\n",
          num, pos, pb[d], idx, dl[d], st[d], in[d], var);
    };
    const std::string wi =
        fmt::format(fmt::runtime(widx), fmt::arg("kd", k[0]), fmt::arg("kh", k[1]),
                    fmt::arg("kw", k[2]), fmt::arg("mg", mg));
    body_ += fmt::format(
        "  /* {} (ConvTranspose {}x{}x{}, stride {}x{}x{}, dilation {}x{}x{}, begin pads {},{},{}, "
        "group {}): exact accumulator at frac {} */\n"
        "  {{\n    long o, j, pz, py, px, cc, ci, t, u, v, nz, ny, nx, z, yy, xx;\n"
        "    for (o = 0; o < {co}; ++o) {{\n      j = o % {mg};\n"
        "      for (pz = 0; pz < {od}; ++pz) {{\n      for (py = 0; py < {oh}; ++py) {{\n"
        "        for (px = 0; px < {ow}; ++px) {{\n          int64_t acc = 0;\n"
        "          for (cc = 0; cc < {cg}; ++cc) {{\n            ci = (o / {mg}) * {cg} + cc;\n"
        "            for (t = 0; t < {kd}; ++t) {{\n                  {tz}"
        "              for (u = 0; u < {kh}; ++u) {{\n                  {ty}"
        "                for (v = 0; v < {kw}; ++v) {{\n                  {tx}"
        "                  acc += (int64_t){x}[((ci * {d} + z) * {h} + yy) * {wd} + xx] *\n"
        "                         (int64_t){w}[{wi}];\n"
        "                }}\n              }}\n            }}\n          }}\n{shift}{add_b}"
        "          {y}[((o * {od} + pz) * {oh} + py) * {ow} + px] = acc;\n"
        "        }}\n      }}\n      }}\n    }}\n  }}\n",
        n.config_name, k[0], k[1], k[2], st[0], st[1], st[2], dl[0], dl[1], dl[2], pb[0], pb[1],
        pb[2], a.group, frac, fmt::arg("co", co), fmt::arg("mg", mg), fmt::arg("od", out[0]),
        fmt::arg("oh", out[1]), fmt::arg("ow", out[2]), fmt::arg("cg", cg), fmt::arg("kd", k[0]),
        fmt::arg("kh", k[1]), fmt::arg("kw", k[2]), fmt::arg("tz", tap("pz", "nz", "z", "t", 0)),
        fmt::arg("ty", tap("py", "ny", "yy", "u", 1)),
        fmt::arg("tx", tap("px", "nx", "xx", "v", 2)), fmt::arg("x", x.name), fmt::arg("d", in[0]),
        fmt::arg("h", in[1]), fmt::arg("wd", in[2]), fmt::arg("w", w.name), fmt::arg("wi", wi),
        fmt::arg("shift", shift), fmt::arg("add_b", add_b), fmt::arg("y", y.name));
    vals_[n.outputs[0]] = y;
    vals_[n.outputs[0]] = finish_weighted(n, q, y);
  }

  void lower_conv(const ir::Node& n, const NodeQuant& q) {
    if (const ir::Node* im = conv3d_gather(n)) {
      lower_conv3d(n, q, *im);
      return;
    }
    const auto& a = std::get<ir::ConvAttrs>(n.attrs);
    const CVal x = codes(n, n.inputs[0], *q.inputs[0], q.rounding);
    if (!g_.value(n.inputs[1]).is_constant()) fail_node(n, "the weight is not a constant");
    const CVal w = codes(n, n.inputs[1], *q.inputs[1], q.rounding);
    if (x.shape.size() != 4 || w.shape.size() != 4) {
      fail_node(n, "only 2-D and 3-D convolutions export");
    }
    const Shape& ys = shapes_[n.outputs[0]];
    const int64_t ci = x.shape[1], h = x.shape[2], wd = x.shape[3];
    const int64_t co = ys[1], oh = ys[2], ow = ys[3], cg = w.shape[1], kh = w.shape[2],
                  kw = w.shape[3];
    const int64_t ocg = co / a.group;
    (void)ci;
    const int fp = x.frac + w.frac;
    const auto [frac, y, shift, add_b] = accumulation(n, q, fp, co, ys, "          ", "o");
    body_ += fmt::format(
        "  /* {} (Conv {}x{}, stride {}x{}, dilation {}x{}, pads {},{},{},{}, group {}): exact "
        "accumulator at frac {} */\n"
        "  {{\n    long o, py, px, cc, u, v, iy, ix;\n"
        "    for (o = 0; o < {co}; ++o) {{\n      for (py = 0; py < {oh}; ++py) {{\n"
        "        for (px = 0; px < {ow}; ++px) {{\n          int64_t acc = 0;\n"
        "          for (cc = 0; cc < {cg}; ++cc) {{\n            for (u = 0; u < {kh}; ++u) {{\n"
        "              iy = py * {sh} - {pt} + u * {dh};\n"
        "              if (iy < 0 || iy >= {h}) continue;\n"
        "              for (v = 0; v < {kw}; ++v) {{\n"
        "                ix = px * {sw} - {pl} + v * {dw};\n"
        "                if (ix < 0 || ix >= {wd}) continue;\n"
        "                acc += (int64_t){x}[(((o / {ocg}) * {cg} + cc) * {h} + iy) * {wd} + ix] "
        "*\n"
        "                       (int64_t){w}[((o * {cg} + cc) * {kh} + u) * {kw} + v];\n"
        "              }}\n            }}\n          }}\n{shift}{add_b}"
        "          {y}[(o * {oh} + py) * {ow} + px] = acc;\n        }}\n      }}\n    }}\n  }}\n",
        n.config_name, kh, kw, a.strides[0], a.strides[1], a.dilations[0], a.dilations[1],
        a.pads[0], a.pads[1], a.pads[2], a.pads[3], a.group, frac, fmt::arg("co", co),
        fmt::arg("oh", oh), fmt::arg("ow", ow), fmt::arg("cg", cg), fmt::arg("kh", kh),
        fmt::arg("kw", kw), fmt::arg("sh", a.strides[0]), fmt::arg("sw", a.strides[1]),
        fmt::arg("pt", a.pads[0]), fmt::arg("pl", a.pads[1]), fmt::arg("dh", a.dilations[0]),
        fmt::arg("dw", a.dilations[1]), fmt::arg("h", h), fmt::arg("wd", wd), fmt::arg("ocg", ocg),
        fmt::arg("x", x.name), fmt::arg("w", w.name), fmt::arg("shift", shift),
        fmt::arg("add_b", add_b), fmt::arg("y", y.name));
    if (q.bias_add >= 0) {
      // The result is the bias Add's output, with the data_out it carries.
      const ir::Node& add = g_.nodes()[static_cast<size_t>(q.bias_add)];
      vals_[add.outputs[0]] = y;
      vals_[add.outputs[0]] = finish_weighted(add, nq_[static_cast<size_t>(q.bias_add)], y);
      return;
    }
    vals_[n.outputs[0]] = y;
    vals_[n.outputs[0]] = finish_weighted(n, q, y);
  }

  // A value of the same representation as `x` (codes of its format, or exact at its frac).
  CVal like(const CVal& x, const Shape& s) {
    CVal c = x;
    c.shape = s;
    c.name = fresh("v");
    decls_ += fmt::format("static {} {}[{}];\n", x.rep == Rep::kCodes ? c_type(x.fmt) : "int64_t",
                          c.name, c.numel());
    return c;
  }

  const CVal& integer_input(const ir::Node& n) {
    const CVal& x = value(n.inputs[0], &n);
    if (x.rep == Rep::kFloat) {
      fail_node(n,
                "runs in float in int mode (it reads the float model input); quantize the "
                "first layer before it, or give the node a config");
    }
    return x;
  }

  void lower_relu(const ir::Node& n) {
    const CVal x = integer_input(n);
    CVal y = like(x, shapes_[n.outputs[0]]);
    body_ += fmt::format(
        "  /* {} (Relu on {}) */\n  for (i = 0; i < {}; ++i) {}[i] = {}[i] > 0 ? {}[i] : 0;\n",
        n.config_name, x.rep == Rep::kCodes ? "codes" : "the accumulator", y.numel(), y.name,
        x.name, x.name);
    vals_[n.outputs[0]] = y;
  }

  void lower_max_pool(const ir::Node& n) {
    const auto& a = std::get<ir::PoolAttrs>(n.attrs);
    const CVal x = integer_input(n);
    if (x.shape.size() != 4) fail_node(n, "only 2-D max pooling exports");
    const Shape& ys = shapes_[n.outputs[0]];
    for (int d = 0; d < 2; ++d) {  // every window must hold one input position (as the engine)
      const int64_t in = x.shape[2 + d];
      for (int64_t p = 0; p < ys[2 + d]; ++p) {
        bool any = false;
        for (int64_t u = 0; u < a.kernel[d] && !any; ++u) {
          const int64_t at = p * a.strides[d] - a.pads[d] + u * a.dilations[d];
          any = at >= 0 && at < in;
        }
        if (!any) fail_node(n, "a pooling window covers only padding");
      }
    }
    CVal y = like(x, ys);
    const std::string init = x.rep == Rep::kCodes ? i64(x.fmt.min_code()) : i64(INT64_MIN);
    const std::string t = x.rep == Rep::kCodes ? c_type(x.fmt) : "int64_t";
    body_ += fmt::format(
        "  /* {} (MaxPool {}x{}, stride {}x{}) on {} */\n"
        "  {{\n    long p, py, px, u, v, iy, ix;\n"
        "    for (p = 0; p < {planes}; ++p) {{\n      for (py = 0; py < {oh}; ++py) {{\n"
        "        for (px = 0; px < {ow}; ++px) {{\n          {t} best = ({t}){init};\n"
        "          for (u = 0; u < {kh}; ++u) {{\n"
        "            iy = py * {sh} - {pt} + u * {dh};\n"
        "            if (iy < 0 || iy >= {h}) continue;\n"
        "            for (v = 0; v < {kw}; ++v) {{\n"
        "              ix = px * {sw} - {pl} + v * {dw};\n"
        "              if (ix < 0 || ix >= {w}) continue;\n"
        "              if ({x}[(p * {h} + iy) * {w} + ix] > best) best = {x}[(p * {h} + iy) * {w} "
        "+ ix];\n"
        "            }}\n          }}\n"
        "          {y}[(p * {oh} + py) * {ow} + px] = best;\n        }}\n      }}\n    }}\n  }}\n",
        n.config_name, a.kernel[0], a.kernel[1], a.strides[0], a.strides[1],
        x.rep == Rep::kCodes ? "codes" : "the accumulator", fmt::arg("planes", ys[0] * ys[1]),
        fmt::arg("oh", ys[2]), fmt::arg("ow", ys[3]), fmt::arg("t", t), fmt::arg("init", init),
        fmt::arg("kh", a.kernel[0]), fmt::arg("kw", a.kernel[1]), fmt::arg("sh", a.strides[0]),
        fmt::arg("sw", a.strides[1]), fmt::arg("pt", a.pads[0]), fmt::arg("pl", a.pads[1]),
        fmt::arg("dh", a.dilations[0]), fmt::arg("dw", a.dilations[1]), fmt::arg("h", x.shape[2]),
        fmt::arg("w", x.shape[3]), fmt::arg("x", x.name), fmt::arg("y", y.name));
    vals_[n.outputs[0]] = y;
  }

  // Flat index into an operand of shape s broadcast (numpy) to the output shape ys, as a C
  // expression of the loop counters d0, d1, ...
  static std::string broadcast_index(const Shape& s, const Shape& ys) {
    const int rank = static_cast<int>(ys.size());
    std::string e;
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      const int ds = d - (rank - static_cast<int>(s.size()));
      if (ds < 0) break;
      if (s[ds] != 1) e += fmt::format("{}d{} * {}", e.empty() ? "" : " + ", d, stride);
      stride *= s[ds];
    }
    return e.empty() ? "0" : e;
  }

  void lower_binary(const ir::Node& n, const NodeQuant& q) {
    const CVal a = codes(n, n.inputs[0], *q.inputs[0], q.rounding);
    const CVal b = codes(n, n.inputs[1], *q.inputs[1], q.rounding);
    const Shape& ys = shapes_[n.outputs[0]];
    const bool mul = n.kind == ir::OpKind::kMul;
    const int frac = mul ? a.frac + b.frac : std::max(a.frac, b.frac);
    const int sa = mul ? 0 : frac - a.frac, sb = mul ? 0 : frac - b.frac;
    if (sa > 30 || sb > 30) fail_node(n, "operand binary points more than 30 bits apart");
    CVal y = new_exact(ys, frac);
    const std::string ea =
        scaled(fmt::format("(int64_t){}[{}]", a.name, broadcast_index(a.shape, ys)), sa);
    const std::string eb =
        scaled(fmt::format("(int64_t){}[{}]", b.name, broadcast_index(b.shape, ys)), sb);
    const char* op = n.kind == ir::OpKind::kAdd ? "+" : (n.kind == ir::OpKind::kSub ? "-" : "*");
    std::string decl, loops, close, indent = "    ";
    for (size_t d = 0; d < ys.size(); ++d) {
      decl += fmt::format("{}d{}", d ? ", " : "    long ", d);
      loops += fmt::format("{}for (d{} = 0; d{} < {}; ++d{}) {{\n", indent, d, d, ys[d], d);
      close = indent + "}\n" + close;
      indent += "  ";
    }
    if (!decl.empty()) decl += ";\n";
    body_ += fmt::format(
        "  /* {} ({} on codes, exact at frac {}) */\n  {{\n{}{}{}{}[{}] = {} {} {};\n{}  }}\n",
        n.config_name, ir::op_name(n.kind), frac, decl, loops, indent, y.name, flat_index(ys), ea,
        op, eb, close);
    vals_[n.outputs[0]] = y;
  }

  // Offset of an operand's matrix for the output's leading (batch) indices d0.. (numpy matmul
  // broadcasting: leading dims of size 1, or missing, repeat), in units of `unit` elements.
  static std::string lead_offset(const Shape& s, const Shape& ys, int64_t unit) {
    const int lead = static_cast<int>(ys.size()) - 2, slead = static_cast<int>(s.size()) - 2;
    std::string e;
    int64_t stride = unit;
    for (int d = lead - 1; d >= 0; --d) {
      const int ds = d - (lead - slead);
      if (ds < 0) break;
      if (s[ds] != 1) e += fmt::format("{}d{} * {}", e.empty() ? "" : " + ", d, stride);
      stride *= s[ds];
    }
    return e.empty() ? "0" : e;
  }

  // y = q(a, data_in) @ q(b, weight), both activations (MASE's matmul): exact int64 sums at
  // frac fa + fb, numpy's batched matmul over the leading dims (as the int engine's
  // IntMatMulStep).
  void lower_matmul(const ir::Node& n, const NodeQuant& q) {
    const CVal a = codes(n, n.inputs[0], *q.inputs[0], q.rounding);
    const CVal b = codes(n, n.inputs[1], *q.inputs[1], q.rounding);
    if (a.shape.size() < 2 || b.shape.size() < 2) {
      fail_node(n, "the integer MatMul needs operands of rank >= 2");
    }
    const Shape& ys = shapes_[n.outputs[0]];
    const int64_t m = a.shape[a.shape.size() - 2], k = a.shape.back(), nn = b.shape.back();
    if (b.shape[b.shape.size() - 2] != k) fail_node(n, "the operands' inner dims differ");
    const int64_t limit = INT64_MAX / q.inputs[0]->max_abs_code() / q.inputs[1]->max_abs_code();
    if (k > limit) {
      fail_node(n, fmt::format("the exact MatMul sum could exceed int64 (K {})", k));
    }
    CVal y = new_exact(ys, a.frac + b.frac);
    std::string decl, loops, close, indent = "    ";
    for (size_t d = 0; d + 2 < ys.size(); ++d) {
      decl += fmt::format(", d{}", d);
      loops += fmt::format("{}for (d{} = 0; d{} < {}; ++d{}) {{\n", indent, d, d, ys[d], d);
      close = indent + "}\n" + close;
      indent += "  ";
    }
    const std::string yoff = lead_offset(ys, ys, m * nn);
    body_ += fmt::format(
        "  /* {} (MatMul of two activations on codes, exact at frac {}) */\n"
        "  {{\n    long i, j, t{};\n{}"
        "{ind}{{\n{ind}  const long ao = {ao}, bo = {bo}, yo = {yo};\n"
        "{ind}  for (i = 0; i < {m}; ++i) {{\n{ind}    for (j = 0; j < {nn}; ++j) {{\n"
        "{ind}      int64_t acc = 0;\n"
        "{ind}      for (t = 0; t < {k}; ++t) acc += (int64_t){a}[ao + i * {k} + t] * "
        "(int64_t){b}[bo + t * {nn} + j];\n"
        "{ind}      {y}[yo + i * {nn} + j] = acc;\n{ind}    }}\n{ind}  }}\n{ind}}}\n{}  }}\n",
        n.config_name, y.frac, decl, loops, close, fmt::arg("ind", indent),
        fmt::arg("ao", lead_offset(a.shape, ys, m * k)),
        fmt::arg("bo", lead_offset(b.shape, ys, k * nn)), fmt::arg("yo", yoff), fmt::arg("m", m),
        fmt::arg("nn", nn), fmt::arg("k", k), fmt::arg("a", a.name), fmt::arg("b", b.name),
        fmt::arg("y", y.name));
    vals_[n.outputs[0]] = y;
  }

  static std::string flat_index(const Shape& ys) {
    std::string e;
    int64_t stride = 1;
    for (int d = static_cast<int>(ys.size()) - 1; d >= 0; --d) {
      e += fmt::format("{}d{} * {}", e.empty() ? "" : " + ", d, stride);
      stride *= ys[d];
    }
    return e.empty() ? "0" : e;
  }

  void lower(const ir::Node& n, const NodeQuant& q) {
    using ir::OpKind;
    if (q.kind == NodeQuant::Kind::kLinearBias) return;  // lowered with its linear
    switch (n.kind) {
      case OpKind::kGemm:
      case OpKind::kMatMul:
      case OpKind::kConv:
        if (q.kind == NodeQuant::Kind::kMatMul) {
          lower_matmul(n, q);
          return;
        }
        if (!q.quantized()) {
          fail_node(n,
                    "runs in float in int mode (an unquantized layer); give it a config "
                    "(data_in and weight formats) to export it");
        }
        if (n.kind == OpKind::kConv) {
          lower_conv(n, q);
        } else {
          if (n.kind == OpKind::kGemm) {
            const auto& at = std::get<ir::GemmAttrs>(n.attrs);
            const bool has_c = n.inputs.size() > 2 && n.inputs[2] >= 0;
            if (at.trans_a || at.alpha != 1.0f || (has_c && at.beta != 1.0f)) {
              fail_node(n, "a quantized Gemm needs alpha = beta = 1 and transA = 0");
            }
          }
          lower_linear(n, q);
        }
        return;
      case OpKind::kConvTranspose:
        if (!q.quantized()) {
          fail_node(n,
                    "runs in float in int mode (an unquantized layer); give it a config "
                    "(data_in and weight formats) to export it");
        }
        lower_conv_transpose(n, q);
        return;
      case OpKind::kRelu:
        if (q.quantized()) {  // relu(q(x)) = q(x): data_in is unsigned, its clamp is the relu
          vals_[n.outputs[0]] = codes(n, n.inputs[0], *q.inputs[0], q.rounding);
        } else {
          lower_relu(n);
        }
        return;
      case OpKind::kMaxPool:
        lower_max_pool(n);
        return;
      case OpKind::kIm2Col3d: {
        // A 3-D Conv's (ConvTranspose's) gather: its Conv (ConvTranspose) reads the Im2Col3d's
        // input itself (lower_conv3d, lower_conv_transpose).
        const std::vector<ir::NodeId> users = g_.consumers(n.outputs[0]);
        const OpKind user = std::get<ir::Im2Col3dAttrs>(n.attrs).transposed ? OpKind::kConvTranspose
                                                                            : OpKind::kConv;
        const bool conv3d =
            users.size() == 1 && g_.node(users[0]).kind == user &&
            g_.node(users[0]).inputs[0] == n.outputs[0] &&
            std::find(g_.outputs().begin(), g_.outputs().end(), n.outputs[0]) == g_.outputs().end();
        if (!conv3d) {
          fail_node(n,
                    "not supported by the C export (an Im2Col3d exports only as the start of a "
                    "3-D Conv or ConvTranspose: Im2Col3d -> Conv or ConvTranspose -> view)");
        }
        return;
      }
      case OpKind::kFlatten:
      case OpKind::kReshape:
      case OpKind::kIdentity:
      case OpKind::kDropout: {
        CVal v = value(n.inputs[0], &n);
        v.shape = shapes_[n.outputs[0]];
        vals_[n.outputs[0]] = v;
        return;
      }
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul:
        if (!q.quantized()) {
          fail_node(n,
                    "runs in float in int mode (an unquantized element-wise op adds "
                    "dequantized values); give it a config (data_in format) to export it");
        }
        lower_binary(n, q);
        return;
      default:
        break;
    }
    if (q.kind == NodeQuant::Kind::kInputOnly) {
      fail_node(n,
                "runs in float in int mode (MASE quantizes only its input; its parameters "
                "stay float); the C export runs integers only");
    }
    fail_node(n,
              "not supported by the C export (it runs Gemm, MatMul by a constant, Conv and "
              "ConvTranspose (2-D, 3-D), Relu, MaxPool, Flatten, Reshape, Identity, Dropout and "
              "quantized "
              "Add/Sub/Mul on integers)");
  }

  const ir::Graph& g_;
  const CExportOptions& o_;
  std::vector<NodeQuant> nq_;
  std::vector<Shape> shapes_;
  std::vector<std::optional<CVal>> vals_;
  std::map<std::tuple<std::string, int, int, bool, int>, CVal> cache_;
  std::string decls_, body_;
  int counter_ = 0;
  bool use_quantize_ = false, use_requant_ = false;
};

}  // namespace

void check_c_name(const std::string& name, const std::string& flag) {
  const bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                  });
  if (!ok) {
    fail("{} '{}': not a C identifier (letters, digits and '_', not starting with a digit)", flag,
         name);
  }
}

CExport export_c(const ir::Graph& graph, const quant::QuantAssignment& q,
                 const CExportOptions& options) {
  check_c_name(options.name, "--name");
  // The engine's own checks first (accumulators beyond int64, bias shapes, Gemm attributes): what
  // it refuses is not exported.
  runtime::make_plan(graph, {.mode = runtime::Mode::kInt, .max_batch = 1, .quant = q});
  return Generator(graph, q, options).run();
}

}  // namespace qsearch::exporter
