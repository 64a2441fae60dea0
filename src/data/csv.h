// A small, fast CSV reader for the tabular data sets (OpenML JSC, csv:PATH).
//
// Dialect: comma-separated; the first non-blank row is the header; fields may be quoted with
// double quotes ("a,b" and "say ""hi""" per RFC 4180; text after the closing quote is kept);
// \n or \r\n line ends; blank lines are skipped (as pandas does); a UTF-8 byte-order mark is
// ignored. The text is never written: cells are views into it, except fields with "" escapes,
// which are unescaped into the reader's scratch space. Cells are valid until the next row.
//
//   CsvReader csv(FileBytes::open(path, fix), path);
//   std::vector<std::string_view> cells;
//   csv.next(cells);                      // header
//   while (csv.next(cells)) { ... csv.line() ... }   // 1-based line the row started on
//
// parse_number() reads a cell as a double exactly as Python's float() does (correctly
// rounded), after trimming spaces; it returns false for anything else (empty, "?", "abc").
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "data/file_io.h"

namespace qsearch::data {

class CsvReader {
 public:
  CsvReader(FileBytes bytes, std::string path);
  CsvReader(const CsvReader&) = delete;  // cells and text_ point into bytes_
  CsvReader& operator=(const CsvReader&) = delete;
  // Reads the next non-blank row into `cells`; false at the end of the text. Throws Error on
  // an unterminated quoted field (naming the path and line).
  bool next(std::vector<std::string_view>& cells);
  int64_t line() const { return row_line_; }
  const std::string& path() const { return path_; }
  // Number of '\n' in the whole text: an upper bound on the rows, for reserving.
  int64_t count_newlines() const;

 private:
  std::string_view quoted_field(size_t& pos);
  FileBytes bytes_;
  std::string_view text_;
  std::string path_;
  size_t pos_ = 0;
  int64_t cur_line_ = 1;  // line of text_[pos_]
  int64_t row_line_ = 0;
  std::deque<std::string> scratch_;  // unescaped fields of the current row
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
