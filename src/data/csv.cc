#include "data/csv.h"

#include <charconv>

#include "core/error.h"

namespace qsearch::data {

CsvReader::CsvReader(std::string text, std::string path)
    : text_(std::move(text)), path_(std::move(path)) {
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
}

bool CsvReader::next(std::vector<std::string_view>& cells) {
  cells.clear();
  const size_t n = text_.size();
  // Skip blank lines (only a line end, possibly after \r).
  for (;;) {
    if (pos_ >= n) return false;
    if (text_[pos_] == '\n') {
      ++pos_;
      ++cur_line_;
    } else if (text_[pos_] == '\r' && (pos_ + 1 >= n || text_[pos_ + 1] == '\n')) {
      pos_ += 2;
      ++cur_line_;
    } else {
      break;
    }
  }
  row_line_ = cur_line_;
  char* data = text_.data();
  for (;;) {
    size_t start = pos_;
    if (pos_ < n && data[pos_] == '"') {
      // Quoted field: unescape "" -> " in place, writing at `w`.
      size_t w = pos_;
      ++pos_;
      for (;;) {
        if (pos_ >= n) {
          fail("{}:{}: a quoted field is never closed (missing '\"')", path_, row_line_);
        }
        char c = data[pos_];
        if (c == '"') {
          if (pos_ + 1 < n && data[pos_ + 1] == '"') {
            data[w++] = '"';
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        if (c == '\n') ++cur_line_;
        data[w++] = c;
        ++pos_;
      }
      size_t len = w - start;
      // Anything between the closing quote and the separator is kept verbatim (lenient).
      size_t tail = pos_;
      while (pos_ < n && data[pos_] != ',' && data[pos_] != '\n') ++pos_;
      size_t end = pos_;
      if (end > tail && data[end - 1] == '\r' && (end == n || data[end] == '\n')) --end;
      for (size_t k = tail; k < end; ++k) data[start + len++] = data[k];
      cells.emplace_back(data + start, len);
    } else {
      while (pos_ < n && data[pos_] != ',' && data[pos_] != '\n') ++pos_;
      size_t end = pos_;
      if (end > start && data[end - 1] == '\r') --end;
      cells.emplace_back(data + start, end - start);
    }
    if (pos_ >= n) return true;
    if (data[pos_] == '\n') {
      ++pos_;
      ++cur_line_;
      return true;
    }
    ++pos_;  // ','
    if (pos_ >= n) {
      cells.emplace_back();
      return true;
    }
  }
}

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

std::string_view unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

bool parse_number(std::string_view cell, double& out) {
  cell = trim(cell);
  if (!cell.empty() && cell.front() == '+') cell.remove_prefix(1);
  if (cell.empty() || cell.front() == '+') return false;
  auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), out);
  return ec == std::errc() && p == cell.data() + cell.size();
}

bool parse_integer(std::string_view cell, int64_t& out) {
  cell = trim(cell);
  if (!cell.empty() && cell.front() == '+') cell.remove_prefix(1);
  if (cell.empty() || cell.front() == '+') return false;
  auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), out);
  return ec == std::errc() && p == cell.data() + cell.size();
}

}  // namespace qsearch::data
