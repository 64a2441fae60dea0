#include "data/csv.h"

#include <charconv>
#include <cstring>

#include "core/error.h"

namespace qsearch::data {

CsvReader::CsvReader(FileBytes bytes, std::string path)
    : bytes_(std::move(bytes)), text_(bytes_.view()), path_(std::move(path)) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
}

int64_t CsvReader::count_newlines() const {
  int64_t n = 0;
  const char* p = text_.data();
  const char* end = p + text_.size();
  while ((p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p))))) {
    ++n;
    ++p;
  }
  return n;
}

// pos is at the opening quote; leaves it after the field (at ',', '\n' or the end).
std::string_view CsvReader::quoted_field(size_t& pos) {
  const size_t n = text_.size();
  const size_t start = ++pos;
  std::string* unescaped = nullptr;
  size_t run = start;  // start of the current unescaped run
  for (;;) {
    if (pos >= n) fail("{}:{}: a quoted field is never closed (missing '\"')", path_, row_line_);
    const char c = text_[pos];
    if (c == '"') {
      if (pos + 1 < n && text_[pos + 1] == '"') {
        if (unescaped == nullptr) unescaped = &scratch_.emplace_back();
        unescaped->append(text_.substr(run, pos + 1 - run));  // keeps one quote
        pos += 2;
        run = pos;
        continue;
      }
      break;
    }
    if (c == '\n') ++cur_line_;
    ++pos;
  }
  const size_t close = pos++;
  // Text between the closing quote and the separator is kept verbatim (lenient, like pandas).
  const size_t tail = pos;
  while (pos < n && text_[pos] != ',' && text_[pos] != '\n') ++pos;
  size_t end = pos;
  if (end > tail && text_[end - 1] == '\r') --end;
  if (unescaped == nullptr && end == tail) return text_.substr(start, close - start);
  if (unescaped == nullptr) unescaped = &scratch_.emplace_back();
  unescaped->append(text_.substr(run, close - run));
  unescaped->append(text_.substr(tail, end - tail));
  return *unescaped;
}

bool CsvReader::next(std::vector<std::string_view>& cells) {
  cells.clear();
  scratch_.clear();
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
  for (;;) {
    if (pos_ < n && text_[pos_] == '"') {
      cells.push_back(quoted_field(pos_));
    } else {
      const size_t start = pos_;
      while (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n') ++pos_;
      size_t end = pos_;
      if (end > start && text_[end - 1] == '\r') --end;
      cells.push_back(text_.substr(start, end - start));
    }
    if (pos_ >= n) return true;
    if (text_[pos_] == '\n') {
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
