#include "data/csv_table.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "data/csv.h"
#include "data/file_io.h"

namespace qsearch::data {

namespace {
std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + ("'" + v[i] + "'");
  return s;
}
}  // namespace

CsvTable read_csv_table(const std::string& path, const std::string& label_column,
                        const std::vector<std::string>& feature_columns) {
  const std::string fix = "check the file (a CSV with a header row; see docs/datasets.md)";
  if (!file_exists(path)) {
    fail("data set 'csv:{}': the file does not exist (give an existing CSV file: csv:PATH)", path);
  }
  CsvReader csv(FileBytes::open(path, fix), path);
  std::vector<std::string_view> cells;
  if (!csv.next(cells)) fail("'{}' is empty: expected a header row naming the columns", path);
  std::vector<std::string> header;
  for (auto c : cells) header.emplace_back(unquote(c));
  if (label_column.empty()) {
    fail(
        "data set 'csv:{}' needs the name of its label column (--label-column NAME, or "
        "label_column = \"NAME\" in a config); the columns are: {}",
        path, joined(header));
  }
  const auto it = std::find(header.begin(), header.end(), label_column);
  if (it == header.end()) {
    fail("'{}' has no column '{}' (the label column); the columns are: {}", path, label_column,
         joined(header));
  }
  const auto label_col = static_cast<size_t>(it - header.begin());
  CsvTable out;
  std::vector<size_t> feature_cols;  // header index of each feature, in table order
  if (feature_columns.empty()) {
    for (size_t j = 0; j < header.size(); ++j) {
      if (j != label_col) feature_cols.push_back(j);
    }
  }
  for (const std::string& name : feature_columns) {
    const auto f = std::find(header.begin(), header.end(), name);
    if (f == header.end()) {
      fail("'{}' has no column '{}' (a feature column); the columns are: {}", path, name,
           joined(header));
    }
    const auto j = static_cast<size_t>(f - header.begin());
    if (j == label_col) {
      fail("'{}': column '{}' is the label column; it cannot also be a feature column", path, name);
    }
    if (std::find(feature_cols.begin(), feature_cols.end(), j) != feature_cols.end()) {
      fail("'{}': feature column '{}' is given twice", path, name);
    }
    feature_cols.push_back(j);
  }
  for (size_t j : feature_cols) out.feature_names.push_back(header[j]);
  Table& t = out.table;
  t.cols = static_cast<int>(out.feature_names.size());
  if (t.cols == 0) fail("'{}' has no feature columns besides the label '{}'", path, label_column);
  std::vector<std::string> raw_labels;
  const int64_t max_rows = csv.count_newlines() + 1;
  t.values.reserve(static_cast<size_t>(max_rows * t.cols));
  raw_labels.reserve(static_cast<size_t>(max_rows));
  while (csv.next(cells)) {
    if (cells.size() != header.size()) {
      fail(
          "{}:{}: {} cells, but the header has {} columns (a ragged row; every row needs one "
          "cell per column)",
          path, csv.line(), cells.size(), header.size());
    }
    for (size_t j : feature_cols) {
      double v;
      if (!parse_number(cells[j], v)) {
        fail(
            "{}:{}: column '{}' holds '{}', not a number (feature columns must be numeric; "
            "remove or encode that column)",
            path, csv.line(), header[j], trim(cells[j]));
      }
      t.values.push_back(v);
    }
    raw_labels.emplace_back(unquote(cells[label_col]));
    ++t.rows;
  }
  if (t.rows == 0) fail("'{}' has a header but no data rows", path);
  bool integers = true;
  int64_t max_label = -1;
  t.labels.resize(raw_labels.size());
  for (size_t r = 0; r < raw_labels.size() && integers; ++r) {
    int64_t v = 0;
    integers = parse_integer(raw_labels[r], v) && v >= 0;
    t.labels[r] = v;
    max_label = std::max(max_label, v);
  }
  if (integers) {
    if (max_label >= 1 << 20) {
      fail(
          "'{}': label {} in column '{}' is too large for a class index (labels must be "
          "0..K-1)",
          path, max_label, label_column);
    }
    for (int64_t k = 0; k <= max_label; ++k) out.class_names.push_back(std::to_string(k));
  } else {
    std::map<std::string, int64_t> index;
    for (const auto& s : raw_labels) index.emplace(s, 0);
    for (auto& [name, k] : index) {
      k = static_cast<int64_t>(out.class_names.size());
      out.class_names.push_back(name);
    }
    for (size_t r = 0; r < raw_labels.size(); ++r) t.labels[r] = index[raw_labels[r]];
  }
  return out;
}

}  // namespace qsearch::data
