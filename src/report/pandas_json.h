// JSON text exactly as pandas 1.x/2.x `DataFrame.to_json(..., indent=N)` writes it (its bundled
// ujson encoder), so that best.json and log.json are byte-equal to MASE's.
//
// What differs from ordinary JSON writers:
// - doubles: double_precision = 10. For 1e-15 <= |x| <= 1e16 (and 0): fixed point with at most
//   10 decimals, trailing zeros dropped but at least one kept ("1.0", "0.3333333333",
//   "0.00001"); rounding of the 10-decimal digit is pandas' own (ties go up when the kept digit
//   is odd or zero). Outside that range: C's "%.10g" ("1.5e+16", "9.9e-16"). -0.0 prints as
//   "0.0"; NaN and +-inf print as null.
// - strings: ASCII only ("\u00e9", surrogate pairs above U+FFFF), '/' escaped as "\/",
//   control characters as \b \f \n \r \t or \u00XX (lower-case hex).
// - indent: `"key":value` with no space after the colon; an empty object or array still
//   opens a line: "{\n\n<indent>}".
//
//   pandas_double(1.0 / 3) == "0.3333333333";  pandas_double(1e-5) == "0.00001";
//   to_pandas_json(ordered_json::parse(R"({"a":[1,2.5]})"), 4) ==
//       "{\n    \"a\":[\n        1,\n        2.5\n    ]\n}"
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace qsearch::report {

// A double as pandas' to_json writes it (see above).
std::string pandas_double(double value);

// `value` serialised like pandas' to_json with `indent` spaces (0 = compact). Key order is the
// object's own (ordered_json keeps insertion order, as Python dicts do).
std::string to_pandas_json(const nlohmann::ordered_json& value, int indent);

}  // namespace qsearch::report
