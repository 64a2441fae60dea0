// A small, fast CSV reader for the tabular data sets (OpenML JSC, csv:PATH).
//
// Dialect: comma-separated; the first non-blank row is the header; fields may be quoted with
// double quotes ("a,b" and "say ""hi""" per RFC 4180); \n or \r\n line ends; blank lines are
// skipped (as pandas does); a UTF-8 byte-order mark is ignored. Quoted fields are unescaped in
// place in the reader's own copy of the text, so cells are views valid until the next row.
//
//   CsvReader csv(read_file(path, fix), path);
//   std::vector<std::string_view> cells;
//   csv.next(cells);                      // header
//   while (csv.next(cells)) { ... csv.line() ... }   // 1-based line the row started on
//
// parse_number() reads a cell as a double exactly as Python's float() does (correctly
// rounded), after trimming spaces; it returns false for anything else (empty, "?", "abc").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qsearch::data {

class CsvReader {
 public:
  CsvReader(std::string text, std::string path);
  // Reads the next non-blank row into `cells`; false at the end of the text. Throws Error on
  // an unterminated quoted field (naming the path and line).
  bool next(std::vector<std::string_view>& cells);
  int64_t line() const { return row_line_; }
  const std::string& path() const { return path_; }

 private:
  std::string text_;
  std::string path_;
  size_t pos_ = 0;
  int64_t cur_line_ = 1;  // line of text_[pos_]
  int64_t row_line_ = 0;
};

// Trims ASCII spaces and tabs.
std::string_view trim(std::string_view s);
// Strips one pair of matching surrounding single or double quotes (after trim): "'g'" -> "g".
std::string_view unquote(std::string_view s);
// A finite or non-finite double, Python float() semantics (leading '+' allowed).
bool parse_number(std::string_view cell, double& out);
// An integer literal (optional sign, digits only) that fits int64.
bool parse_integer(std::string_view cell, int64_t& out);

}  // namespace qsearch::data
