#include "report/python_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace qsearch::report {

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, as Python's repr (David Gay's mode 0) chooses them.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  const bool negative = buf[0] == '-';
  const std::string sci(buf + (negative ? 1 : 0), res.ptr);
  std::string out;
  if (negative) out.push_back('-');
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  int exponent = std::atoi(sci.c_str() + e + 1);
  if (digits == "0") exponent = 0;
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits;
      out.append(decpt - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, decpt);
      out += '.';
      out += digits.substr(decpt);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out += exp_buf;
  return out;
}

double python_round(double value, int ndigits) {
  if (!std::isfinite(value)) return value;
  // glibc's printf rounds the exact binary value, ties to even: what Python's round does.
  std::vector<char> buf(static_cast<size_t>(std::snprintf(nullptr, 0, "%.*f", ndigits, value)) + 1);
  std::snprintf(buf.data(), buf.size(), "%.*f", ndigits, value);
  return std::strtod(buf.data(), nullptr);
}

std::string python_string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  static const char* kHex = "0123456789abcdef";
  std::string out(1, quote);
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else if (c == 0xc2 && i + 1 < s.size()) {
      // U+0080..U+00BF: C1 controls, NBSP and soft hyphen are not printable in Python.
      unsigned char c2 = static_cast<unsigned char>(s[i + 1]);
      if (c2 <= 0xa0 || c2 == 0xad) {
        out += "\\x";
        out += kHex[c2 >> 4];
        out += kHex[c2 & 0xf];
      } else {
        out += static_cast<char>(c);
        out += static_cast<char>(c2);
      }
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string python_repr(const nlohmann::ordered_json& j) {
  using Value = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case Value::null:
    case Value::discarded:
    case Value::binary:
      return "None";
    case Value::boolean:
      return j.get<bool>() ? "True" : "False";
    case Value::number_integer:
      return std::to_string(j.get<int64_t>());
    case Value::number_unsigned:
      return std::to_string(j.get<uint64_t>());
    case Value::number_float:
      return python_float_repr(j.get<double>());
    case Value::string:
      return python_string_repr(j.get_ref<const std::string&>());
    case Value::array: {
      std::string out = "[";
      for (size_t i = 0; i < j.size(); ++i) {
        if (i) out += ", ";
        out += python_repr(j[i]);
      }
      return out + "]";
    }
    case Value::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        out += python_string_repr(it.key());
        out += ": ";
        out += python_repr(it.value());
      }
      return out + "}";
    }
  }
  return "None";
}

std::string python_str(const nlohmann::ordered_json& j) {
  return j.is_string() ? j.get<std::string>() : python_repr(j);
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string utf8_prefix(const std::string& s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) {
      if (count == n) return s.substr(0, i);
      ++count;
    }
  }
  return s;
}

}  // namespace qsearch::report
