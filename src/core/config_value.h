// ConfigValue: one scalar of a user config (TOML), as MASE reads it, with where it was written.
//
// "NA" (MASE's null; TOML has none) is its own kind. The location travels with the value so that
// a check far from the parser (an unknown node name, a width of 40) can still say
// "configs/x.toml:12:18: ...".
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace qsearch {

struct SourceLoc {
  std::string file;
  int line = 0;
  int column = 0;
  // "file:line:column", or just "file" when the position is unknown.
  std::string str() const {
    if (line <= 0) return file;
    return fmt::format("{}:{}:{}", file, line, column);
  }
};

struct ConfigValue {
  enum class Kind { kNA, kBool, kInt, kFloat, kString };
  Kind kind = Kind::kNA;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  SourceLoc loc;

  // A value written in code (no location): ConfigValue::of(8), ConfigValue::of("integer").
  static ConfigValue of(int64_t v) {
    ConfigValue c;
    c.kind = Kind::kInt;
    c.i = v;
    return c;
  }
  static ConfigValue of(std::string v) {
    ConfigValue c;
    c.kind = Kind::kString;
    c.s = std::move(v);
    return c;
  }
  static ConfigValue of(const char* v) { return of(std::string(v)); }

  bool is_na() const { return kind == Kind::kNA; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  double number() const { return kind == Kind::kInt ? static_cast<double>(i) : f; }
  // TOML-like text for messages: 8, 0.5, "integer", NA.
  std::string str() const {
    switch (kind) {
      case Kind::kNA:
        return "NA";
      case Kind::kBool:
        return b ? "true" : "false";
      case Kind::kInt:
        return std::to_string(i);
      case Kind::kFloat:
        return fmt::format("{}", f);
      case Kind::kString:
        return "\"" + s + "\"";
    }
    return "?";
  }
  // "at file:line:col" prefix for messages ("" when unknown).
  std::string where() const { return loc.file.empty() ? std::string() : loc.str() + ": "; }
};

}  // namespace qsearch
