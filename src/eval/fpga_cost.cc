#include "eval/fpga_cost.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "quant/fixed_point.h"
#include "runtime/node_quant.h"

namespace qsearch::eval {

const std::vector<FpgaDevice>& fpga_devices() {
  // Totals from the vendor's product tables (BRAM as 18 Kb halves: 2 per 36 Kb block).
  static const std::vector<FpgaDevice> devices = {
      {"xcu250", "xcu250-figd2104-2L-e", "UltraScale+", 12288, 1728000, 3456000, 5376},
      {"xcu200", "xcu200-fsgd2104-2-e", "UltraScale+", 6840, 1182240, 2364480, 4320},
      {"xcvu9p", "xcvu9p-flga2104-2L-e", "UltraScale+", 6840, 1182240, 2364480, 4320},
      {"xcvu13p", "xcvu13p-flga2577-2-e", "UltraScale+", 12288, 1728000, 3456000, 5376},
      {"xczu7ev", "xczu7ev-ffvc1156-2-e", "UltraScale+", 1728, 230400, 460800, 624},
      {"xczu9eg", "xczu9eg-ffvb1156-2-e", "UltraScale+", 2520, 274080, 548160, 1824},
      {"xcku115", "xcku115-flvb2104-2-e", "UltraScale", 5520, 663360, 1326720, 4320},
  };
  return devices;
}

const FpgaDevice& fpga_device(const std::string& name) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const FpgaDevice& d : fpga_devices()) {
    if (lower(d.name) == lower(name) || lower(d.part) == lower(name)) return d;
  }
  std::string list;
  for (const FpgaDevice& d : fpga_devices()) list += (list.empty() ? "" : ", ") + d.name;
  fail("unknown FPGA device '{}'; known devices: {} (docs/hardware.md)", name, list);
}

namespace {

int ceil_log2(int64_t n) {
  int d = 0;
  while ((int64_t{1} << d) < n) ++d;
  return d;
}

// Significant width of a constant code, sign included: bits of |code| without its trailing
// zeros, + 1. 0 for a zero code; 2 for a power of two (a shift).
int significant_bits(int64_t code) {
  uint64_t m = code < 0 ? static_cast<uint64_t>(-code) : static_cast<uint64_t>(code);
  if (m == 0) return 0;
  while ((m & 1) == 0) m >>= 1;
  int bits = 0;
  while (m != 0) {
    ++bits;
    m >>= 1;
  }
  return bits + 1;
}

int64_t dsp_tiles(int e, int a, const FpgaCalibration& k) {
  const int hi = std::max(e, a), lo = std::min(e, a);
  auto tiles = [](int x, int per) { return (x + per - 1) / per; };
  return std::min<int64_t>(tiles(hi, k.dsp_a_bits) * tiles(lo, k.dsp_b_bits),
                           tiles(hi, k.dsp_b_bits) * tiles(lo, k.dsp_a_bits));
}

struct Ctx {
  const FpgaCalibration& k;
  double period_ns;
  int reuse;
  int accum_width;
  int cycles(double ns) const {
    const double usable = period_ns * (1.0 - k.clock_uncertainty);
    return std::max(1, static_cast<int>(std::ceil(ns / usable - 1e-9)));
  }
};

// A constant-weight product layer: weights codes [n_in x n_out] (column j = output j's terms,
// bias codes per output or empty), input width a, output width out (0: the accumulator's).
// Instances: how many times the kernel runs per sample (conv: output pixels), sequentially.
void dense_cost(const std::vector<int64_t>& codes, int64_t n_in, int64_t n_out,
                const std::vector<int64_t>& bias, int a, int w_width, int out, int64_t instances,
                const Ctx& c, FpgaLayerCost& L) {
  const FpgaCalibration& k = c.k;
  double lut_mult = 0, ff = 0;
  int64_t dsp = 0, adds = 0, max_terms = 1;
  int max_lut_product = 0;
  for (int64_t j = 0; j < n_out; ++j) {
    int64_t terms = 0;
    for (int64_t i = 0; i < n_in; ++i) {
      const int e = significant_bits(codes[i * n_out + j]);
      if (e == 0) {
        ++L.free_mults;
        continue;
      }
      ++terms;
      if (e <= 2) {  // a power of two: a shift
        ++L.free_mults;
      } else if (e >= k.dsp_min_weight_bits && a >= k.dsp_min_input_bits) {
        ++L.dsp_mults;
        dsp += dsp_tiles(e, a, k);
        ff += k.ff_per_dsp_bit * (e + a);
      } else {
        ++L.lut_mults;
        lut_mult += k.lut_per_mult_bit * e * a;
        ff += k.ff_per_lut_mult_bit * (e + a);
        max_lut_product = std::max(max_lut_product, e * a);
      }
    }
    if (!bias.empty() && bias[j] != 0) ++terms;
    adds += std::max<int64_t>(terms - 1, 0);
    max_terms = std::max(max_terms, terms);
  }
  // Accumulator: configured, or never overflowing (widest product + log2 of the terms).
  int acc = c.accum_width;
  if (acc == 0) acc = std::min(64, a + w_width + ceil_log2(std::max<int64_t>(n_in + 1, 1)));
  L.accum_width = acc;
  if (out <= 0) out = acc;
  const int r = c.reuse;
  const int depth = ceil_log2(max_terms);
  const double t_add = k.t_add_ns + k.t_add_ns_per_bit * acc;
  double t_mult = 0;
  if (L.dsp_mults > 0) t_mult = k.t_mult_dsp_ns;
  if (L.lut_mults > 0) {
    t_mult = std::max(t_mult, k.t_mult_lut_ns + k.t_mult_lut_ns_per_bit * max_lut_product);
  }
  const int body = c.cycles(t_mult + depth * t_add);
  L.dsp = (dsp + r - 1) / r;
  L.lut = static_cast<int64_t>(std::llround(lut_mult / r + k.lut_per_add_bit * acc * adds / r +
                                            k.lut_per_output_bit * n_out * out));
  L.ff = static_cast<int64_t>(std::llround(ff / r + k.ff_per_stage_bit * acc * n_out * body));
  L.ii = static_cast<int>(instances * r);
  L.latency_cycles = static_cast<int>((instances - 1) * r) + body + (r - 1);
}

std::vector<int64_t> codes_of(const Tensor& t, const std::optional<quant::FixedFormat>& f,
                              quant::Rounding rounding) {
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  const float* p = t.data<float>();
  // Unquantized: a 32-bit constant with 16 fractional bits, as wide as the bitops convention.
  const quant::FixedFormat fmt = f ? *f : quant::FixedFormat{32, 16, true};
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = quant::quantize(p[i], fmt, rounding);
  return out;
}

int width_of(const std::optional<quant::FixedFormat>& f) { return f ? f->width : 32; }

}  // namespace

bool valid_reuse_factor(int64_t n_in, int64_t n_out, int64_t r) {
  if (n_in < 1 || n_out < 1 || r < 1) return false;
  const int64_t mults = n_in * n_out;
  const int64_t factor = std::min(n_in, r);
  const int64_t limit = (mults + factor - 1) / factor;
  return (limit % n_out == 0 || r >= n_in) && (r % n_in == 0 || r < n_in) && mults % r == 0;
}

std::optional<std::pair<int64_t, int64_t>> dense_dims(const ir::Graph& graph, const ir::Node& n) {
  const int wi = ir::weight_input(graph, n);
  if (wi < 0 || !graph.value(n.inputs[wi]).is_constant()) return std::nullopt;
  const Tensor& wt = graph.value(n.inputs[wi]).data;
  if ((n.kind == ir::OpKind::kGemm || n.kind == ir::OpKind::kMatMul) && wt.rank() == 2) {
    bool trans_b = false;
    if (const auto* g = std::get_if<ir::GemmAttrs>(&n.attrs)) trans_b = g->trans_b;
    return std::pair{trans_b ? wt.dim(1) : wt.dim(0), trans_b ? wt.dim(0) : wt.dim(1)};
  }
  if (n.kind == ir::OpKind::kConv && wt.rank() >= 1 && wt.dim(0) > 0) {
    return std::pair{wt.numel() / wt.dim(0), wt.dim(0)};
  }
  if (n.kind == ir::OpKind::kConvTranspose && wt.rank() == 4 && wt.dim(0) > 0) {
    // [C, M/g, kH, kW] (a 3-D one as imported: [C * kD * kH, M/g, 1, kW]): each output takes
    // the weights of its group's input rows.
    const int64_t g = std::get<ir::ConvTransposeAttrs>(n.attrs).group;
    return std::pair{wt.dim(0) / g * wt.dim(2) * wt.dim(3), wt.dim(1) * g};
  }
  return std::nullopt;
}

FpgaCost estimate_fpga_cost(const ir::Graph& graph, const quant::QuantAssignment& q,
                            const FpgaOptions& options) {
  const FpgaDevice& device = fpga_device(options.device);
  if (!(options.clock_mhz > 0)) fail("fpga clock_mhz must be positive (got {})", options.clock_mhz);
  if (options.reuse_factor < 1) {
    fail("fpga reuse_factor must be at least 1 (got {})", options.reuse_factor);
  }
  if (options.accum_width < 0 || options.accum_width > 64) {
    fail("fpga accum_width must be 0 (never overflow) or 1..64 (got {})", options.accum_width);
  }
  const FpgaCalibration& k = options.calibration;
  const Ctx c{k, 1000.0 / options.clock_mhz, options.reuse_factor, options.accum_width};
  const std::vector<runtime::NodeQuant> nqs = runtime::resolve_node_quant(graph, q);
  const std::vector<Shape> shapes = graph.infer_shapes(1);
  auto numel = [&](ir::ValueId v) { return v < 0 ? int64_t{0} : shape_numel(shapes[v]); };
  // The width a value is read in by its first quantized consumer (0: none).
  auto read_width = [&](ir::ValueId v) {
    for (ir::NodeId id : graph.consumers(v)) {
      const ir::Node& m = graph.nodes()[id];
      for (size_t kk = 0; kk < m.inputs.size(); ++kk) {
        if (m.inputs[kk] == v && nqs[id].inputs[kk]) return nqs[id].inputs[kk]->width;
      }
    }
    return 0;
  };

  // The width each value is carried at: what a product layer hands on, activations keep theirs.
  std::vector<int> carried(graph.values().size(), 0);
  FpgaCost total;
  total.device = device.name;
  total.clock_mhz = options.clock_mhz;
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const ir::Node& n = graph.nodes()[i];
    const runtime::NodeQuant& nq = nqs[i];
    FpgaLayerCost L;
    L.name = n.config_name;
    // The layer's ReuseFactor: the one a search chose for it, else the options'.
    Ctx lc = c;
    if (auto it = q.find(n.config_name); it != q.end() && it->second.reuse_factor > 0) {
      lc.reuse = it->second.reuse_factor;
    }
    L.reuse_factor = lc.reuse;
    L.op = ir::mase_op(graph, n);
    const ir::ValueId x = n.inputs.empty() ? -1 : n.inputs[0];
    int a = 32;
    if (x >= 0 && nq.inputs[0]) {
      a = nq.inputs[0]->width;
    } else if (x >= 0 && carried[x] > 0) {
      a = carried[x];
    }
    const ir::ValueId y = n.outputs.empty() ? -1 : n.outputs[0];
    const int wi = ir::weight_input(graph, n);
    int out = nq.data_out ? nq.data_out->width : (y >= 0 ? read_width(y) : 0);
    if (wi >= 0 && (n.kind == ir::OpKind::kGemm || n.kind == ir::OpKind::kMatMul)) {
      const Tensor& wt = graph.value(n.inputs[wi]).data;
      const std::vector<int64_t> raw = codes_of(wt, nq.inputs[wi], nq.rounding);
      bool trans_b = false;
      if (const auto* g = std::get_if<ir::GemmAttrs>(&n.attrs)) trans_b = g->trans_b;
      const int64_t n_in = trans_b ? wt.dim(1) : wt.dim(0);
      const int64_t n_out = trans_b ? wt.dim(0) : wt.dim(1);
      std::vector<int64_t> codes(raw.size());  // [n_in x n_out]
      for (int64_t r = 0; r < n_in; ++r) {
        for (int64_t col = 0; col < n_out; ++col) {
          codes[r * n_out + col] = trans_b ? raw[col * n_in + r] : raw[r * n_out + col];
        }
      }
      std::vector<int64_t> bias;
      if (n.kind == ir::OpKind::kGemm && n.inputs.size() > 2 && n.inputs[2] >= 0 &&
          graph.value(n.inputs[2]).is_constant() &&
          graph.value(n.inputs[2]).data.numel() == n_out) {
        bias = codes_of(graph.value(n.inputs[2]).data, nq.inputs[2], nq.rounding);
      }
      if (nq.bias_add >= 0) {
        // A MatMul + Add linear (runtime/node_quant.h): one dense layer whose bias is the Add's
        // constant, in the Add's format, and whose data_out follows the Add.
        const ir::Node& add = graph.nodes()[static_cast<size_t>(nq.bias_add)];
        const runtime::NodeQuant& aq = nqs[static_cast<size_t>(nq.bias_add)];
        const int k_bias = ir::bias_add_operand(graph, add);
        const Tensor& b = graph.value(add.inputs[k_bias]).data;
        if (b.numel() == n_out) bias = codes_of(b, aq.inputs[k_bias], nq.rounding);
        out = aq.data_out ? aq.data_out->width : read_width(add.outputs[0]);
      }
      const int64_t rows = numel(x) / std::max<int64_t>(n_in, 1);  // batched tokens: sequential
      dense_cost(codes, n_in, n_out, bias, a, width_of(nq.inputs[wi]), out,
                 std::max<int64_t>(rows, 1), lc, L);
    } else if ((n.kind == ir::OpKind::kConv || n.kind == ir::OpKind::kConvTranspose) &&
               graph.value(n.inputs[1]).is_constant()) {
      // hls4ml io_parallel conv: one kernel instance (C/g * kH * kW -> M products per group)
      // computes one output pixel per pass, the passes in sequence (ParallelizationFactor 1).
      // A transposed conv is costed as the conv it is (runtime/cnn_steps.h): the same weights,
      // each output pixel summing its group's C/g * kH * kW taps.
      const Tensor& wt = graph.value(n.inputs[1]).data;
      const std::vector<int64_t> raw = codes_of(wt, nq.inputs[1], nq.rounding);
      int64_t m = 0, fan_in = 0;
      std::vector<int64_t> codes(raw.size());  // [fan_in x M]
      if (n.kind == ir::OpKind::kConv) {       // [M, C/g, kH, kW]
        m = wt.dim(0);
        fan_in = wt.numel() / std::max<int64_t>(m, 1);
        for (int64_t o = 0; o < m; ++o) {
          for (int64_t r = 0; r < fan_in; ++r) codes[r * m + o] = raw[o * fan_in + r];
        }
      } else {  // [R, M/g, kH, kW], R = C (or C * kD * kH): output o reads its group's R/g rows
        const auto dims = dense_dims(graph, n);
        fan_in = dims->first;
        m = dims->second;
        const int64_t mg = wt.dim(1), taps = wt.dim(2) * wt.dim(3), rg = fan_in / taps;
        for (int64_t o = 0; o < m; ++o) {
          const int64_t grp = o / mg, j = o % mg;
          for (int64_t rr = 0; rr < rg; ++rr) {
            for (int64_t e = 0; e < taps; ++e) {
              codes[(rr * taps + e) * m + o] = raw[((grp * rg + rr) * mg + j) * taps + e];
            }
          }
        }
      }
      std::vector<int64_t> bias;
      if (n.inputs.size() > 2 && n.inputs[2] >= 0 && graph.value(n.inputs[2]).is_constant()) {
        bias = codes_of(graph.value(n.inputs[2]).data, nq.inputs[2], nq.rounding);
      }
      const int64_t pixels = y >= 0 && m > 0 ? numel(y) / m : 1;
      dense_cost(codes, fan_in, m, bias, a, width_of(nq.inputs[1]), out,
                 std::max<int64_t>(pixels, 1), lc, L);
      // The partitioned input image. A 3-D conv or transposed conv (Im2Col3d -> this Conv /
      // ConvTranspose, ir/ops.h) is costed as hls4ml's Conv3D: the kernel above already has its
      // true fan-in C/g * kD * kH * kW and one instance per output voxel, and the image it
      // partitions is the 5-D input, not the gathered columns (kD * kH times larger), which
      // exist only in qsearch's engines.
      ir::ValueId image = x;
      if (const ir::NodeId p = x >= 0 ? graph.value(x).producer : -1;
          p >= 0 && graph.nodes()[p].kind == ir::OpKind::kIm2Col3d) {
        image = graph.nodes()[p].inputs[0];
      }
      L.ff += static_cast<int64_t>(numel(image)) * a;
    } else if (const ir::NodeId lin = ir::bias_add_owner(graph, n); lin >= 0) {
      // The bias Add of a MatMul + Add linear: costed with the linear (above), free here; its
      // output is carried as the linear's.
      const ir::ValueId lin_out = graph.nodes()[static_cast<size_t>(lin)].outputs[0];
      if (y >= 0 && lin_out >= 0) carried[y] = carried[lin_out];
      continue;
    } else {
      const int64_t elems = numel(y);
      const int w = std::min(a, 32);
      switch (n.kind) {
        case ir::OpKind::kRelu:
        case ir::OpKind::kLeakyRelu:
        case ir::OpKind::kClip:
          // Sign test + multiplexer per element, registered.
          L.lut = elems * w / 2;
          L.ff = elems * w;
          L.latency_cycles = k.activation_cycles;
          break;
        case ir::OpKind::kSigmoid:
        case ir::OpKind::kTanh:
          // hls4ml: a 1,024-entry table per activation, one BRAM18 per two lookups.
          L.bram18 = (elems + 1) / 2;
          L.lut = elems * w / 2;
          L.ff = elems * 18;
          L.latency_cycles = k.activation_cycles;
          break;
        case ir::OpKind::kSoftmax:
        case ir::OpKind::kLogSoftmax:
          // hls4ml latency softmax: exp table (dual port: one BRAM18 per two lookups), the sum,
          // the 1/x table (one BRAM18), one 18-bit multiplication per output.
          L.bram18 = (elems + 1) / 2 + 1;
          L.dsp = elems;
          L.ff = elems * 18 * k.softmax_cycles;
          L.lut = elems * 18;
          L.latency_cycles = k.softmax_cycles;
          break;
        case ir::OpKind::kAdd:
        case ir::OpKind::kSub:
          L.lut = elems * w;
          L.ff = elems * w;
          L.latency_cycles = 1;
          break;
        case ir::OpKind::kMul:
        case ir::OpKind::kBatchNorm:
          // One multiplier per element (batch norm not folded into the preceding layer).
          L.dsp = a >= k.dsp_min_input_bits ? elems : 0;
          L.lut = L.dsp > 0 ? elems * w : static_cast<int64_t>(k.lut_per_mult_bit * elems * w * w);
          L.ff = elems * w;
          L.latency_cycles = 1;
          break;
        case ir::OpKind::kMaxPool:
        case ir::OpKind::kAveragePool:
        case ir::OpKind::kGlobalAveragePool:
        case ir::OpKind::kReduceMax:
        case ir::OpKind::kReduceMean:
        case ir::OpKind::kReduceSum: {
          const int64_t in = numel(x);
          L.lut = std::max<int64_t>(in - elems, 0) * w;
          L.ff = elems * w;
          L.latency_cycles = 1;
          break;
        }
        default:
          break;  // wiring (flatten, reshape, identity, dropout, ...) or not modelled
      }
    }
    for (ir::ValueId v : n.outputs) {
      if (v >= 0) carried[v] = L.accum_width > 0 ? (out > 0 ? out : L.accum_width) : a;
    }
    if (L.dsp == 0 && L.lut == 0 && L.ff == 0 && L.bram18 == 0 && L.latency_cycles == 0) continue;
    total.dsp += L.dsp;
    total.lut += L.lut;
    total.ff += L.ff;
    total.bram18 += L.bram18;
    total.latency_cycles += L.latency_cycles;
    total.ii = std::max(total.ii, L.ii);
    total.layers.push_back(std::move(L));
  }
  total.latency_ns = total.latency_cycles * 1000.0 / options.clock_mhz;
  return total;
}

nlohmann::ordered_json fpga_metrics(const FpgaCost& cost) {
  return {{"fpga_dsp", cost.dsp},
          {"fpga_lut", cost.lut},
          {"fpga_ff", cost.ff},
          {"fpga_bram", cost.bram18},
          {"fpga_latency_cycles", cost.latency_cycles},
          {"fpga_latency_ns", cost.latency_ns},
          {"fpga_ii", cost.ii}};
}

nlohmann::ordered_json fpga_cost_json(const FpgaCost& cost, const FpgaOptions& options) {
  nlohmann::ordered_json j = {{"device", cost.device},
                              {"clock_mhz", cost.clock_mhz},
                              {"reuse_factor", options.reuse_factor},
                              {"dsp", cost.dsp},
                              {"lut", cost.lut},
                              {"ff", cost.ff},
                              {"bram18", cost.bram18},
                              {"latency_cycles", cost.latency_cycles},
                              {"latency_ns", cost.latency_ns},
                              {"ii", cost.ii}};
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const FpgaLayerCost& L : cost.layers) {
    layers.push_back({{"name", L.name},
                      {"op", L.op},
                      {"dsp", L.dsp},
                      {"lut", L.lut},
                      {"ff", L.ff},
                      {"bram18", L.bram18},
                      {"latency_cycles", L.latency_cycles},
                      {"ii", L.ii},
                      {"dsp_mults", L.dsp_mults},
                      {"lut_mults", L.lut_mults},
                      {"free_mults", L.free_mults},
                      {"accum_width", L.accum_width},
                      {"reuse_factor", L.reuse_factor}});
  }
  j["layers"] = std::move(layers);
  return j;
}

}  // namespace qsearch::eval
