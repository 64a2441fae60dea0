// Python's text for numbers and containers, for output that must be byte-equal to what MASE
// prints with Python (the "Best trial(s)" table).
//
// - python_float_repr: repr(float): the shortest digits that round-trip, fixed notation for
//   1e-4 <= |x| < 1e16 with at least one decimal ("4.0", "0.533"), else exponent notation with a
//   signed, at least two-digit exponent ("1e-05", "1.5e+16"); "inf", "-inf", "nan".
// - python_round: round(x, ndigits) for a float: correctly rounded to ndigits decimals, ties to
//   even on the exact binary value (round(0.0625, 3) == 0.062).
// - python_repr / python_str: repr() / str() of the Python value json.loads would give for a
//   JSON value: dicts as {'k': v} in insertion order, lists as [a, b], None/True/False, strings
//   in single quotes (double quotes when the text has ' but no "), with backslash escapes for
//   control characters. Non-ASCII characters are kept as they are, except C1 controls and
//   U+00A0/U+00AD which Python escapes as \xNN (other non-printable code points beyond Latin-1 are
//   not escaped: a documented simplification).
//
//   python_float_repr(round(0.66812, 3)) == "0.668"
//   python_repr(json::parse(R"({"loss": 0.5, "name": "int"})")) == "{'loss': 0.5, 'name': 'int'}"
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace qsearch::report {

std::string python_float_repr(double value);
double python_round(double value, int ndigits);
std::string python_string_repr(const std::string& utf8);
std::string python_repr(const nlohmann::ordered_json& value);
// str(): the text itself for strings, repr() for everything else.
std::string python_str(const nlohmann::ordered_json& value);
// The first n code points of UTF-8 text, and the number of code points (Python's len()).
std::string utf8_prefix(const std::string& utf8, size_t n);
size_t utf8_length(const std::string& utf8);

}  // namespace qsearch::report
