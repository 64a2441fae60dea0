#include "report/tabulate.h"

#include <algorithm>

#include "core/check.h"
#include "report/python_format.h"

namespace qsearch::report {
namespace {

constexpr size_t kMinPadding = 2;  // tabulate's MIN_PADDING for every format but "pretty"

std::string pad(const std::string& cell, size_t width, bool right) {
  size_t len = utf8_length(cell);
  std::string fill(width > len ? width - len : 0, ' ');
  return right ? fill + cell : cell + fill;
}

}  // namespace

std::string orgtbl(const std::vector<Column>& columns,
                   const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const Column& c : columns) widths.push_back(utf8_length(c.header) + kMinPadding);
  for (const auto& row : rows) {
    QSEARCH_CHECK(row.size() == columns.size());
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], utf8_length(row[i]));
  }
  auto line = [&](auto cell_of) {
    std::string out = "|";
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i) out += '|';
      out += ' ' + pad(cell_of(i), widths[i], columns[i].numeric) + ' ';
    }
    return out + '|';
  };
  std::string out = line([&](size_t i) { return columns[i].header; });
  out += "\n|";
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += '+';
    out.append(widths[i] + 2, '-');
  }
  out += '|';
  for (const auto& row : rows) out += '\n' + line([&](size_t i) { return row[i]; });
  return out;
}

}  // namespace qsearch::report
