#include "report/pandas_json.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace qsearch::report {
namespace {

constexpr int kDoublePrecision = 10;  // pandas' default double_precision

void append_escaped(const std::string& s, std::string& out) {
  static const char* kHex = "0123456789abcdef";
  auto append_u = [&](uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xf];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '/':
          out += "\\/";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            append_u(c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence; nlohmann has validated the text when it was parsed.
    int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    uint32_t cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0f : 0x1f);
    for (int k = 1; k < len && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      append_u(0xd800 + (cp >> 10));
      append_u(0xdc00 + (cp & 0x3ff));
    } else {
      append_u(cp);
    }
  }
  out += '"';
}

void newline_and_indent(int indent, int level, std::string& out) {
  if (indent <= 0) return;
  out += '\n';
  out.append(static_cast<size_t>(indent) * level, ' ');
}

void encode(const nlohmann::ordered_json& j, int indent, int level, std::string& out) {
  using Value = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case Value::null:
    case Value::discarded:
      out += "null";
      return;
    case Value::boolean:
      out += j.get<bool>() ? "true" : "false";
      return;
    case Value::number_integer:
      out += std::to_string(j.get<int64_t>());
      return;
    case Value::number_unsigned:
      out += std::to_string(j.get<uint64_t>());
      return;
    case Value::number_float:
      out += pandas_double(j.get<double>());
      return;
    case Value::string:
      append_escaped(j.get_ref<const std::string&>(), out);
      return;
    case Value::binary:
      out += "null";
      return;
    case Value::array:
    case Value::object: {
      const bool object = j.is_object();
      out += object ? '{' : '[';
      if (indent > 0) out += '\n';
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) {
          out += ',';
          if (indent > 0) out += '\n';
        }
        first = false;
        out.append(static_cast<size_t>(indent) * (level + 1), ' ');
        if (object) {
          append_escaped(it.key(), out);
          out += ':';
        }
        encode(it.value(), indent, level + 1, out);
      }
      newline_and_indent(indent, level, out);
      out += object ? '}' : ']';
      return;
    }
  }
}

}  // namespace

std::string pandas_double(double value) {
  if (!std::isfinite(value)) return "null";
  const bool negative = value < 0;  // -0.0 is not negative here, as in pandas
  if (negative) value = -value;
  // Outside [1e-15, 1e16) pandas falls back to printf's %g with the same precision.
  const double threshold_max = 1e16 - 1;
  const double threshold_min = 1e-15;
  if (value > threshold_max || (value != 0.0 && value < threshold_min)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", kDoublePrecision, negative ? -value : value);
    return buf;
  }
  const double scale = 1e10;
  uint64_t whole = static_cast<uint64_t>(value);
  // Kept as separate statements so the compiler cannot fuse them into an FMA, which would
  // round differently from pandas' C code.
  volatile double scaled = (value - static_cast<double>(whole)) * scale;
  const double tmp = scaled;
  uint64_t frac = static_cast<uint64_t>(tmp);
  const double diff = tmp - static_cast<double>(frac);
  if (diff > 0.5 || (diff == 0.5 && (frac == 0 || (frac & 1)))) ++frac;
  if (static_cast<double>(frac) >= scale) {
    frac = 0;
    ++whole;
  }
  std::string out = negative ? "-" : "";
  out += std::to_string(whole);
  out += '.';
  if (frac == 0) {
    out += '0';
    return out;
  }
  int digits = kDoublePrecision;
  while (frac % 10 == 0) {
    frac /= 10;
    --digits;
  }
  std::string frac_text = std::to_string(frac);
  out.append(static_cast<size_t>(digits) - frac_text.size(), '0');
  out += frac_text;
  return out;
}

std::string to_pandas_json(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  encode(value, indent, 0, out);
  return out;
}

}  // namespace qsearch::report
