// Generic labelled CSV files: the `csv:PATH` data set.
//
// The first row names the columns. The label column (DataOptions::label_column, the CLI's
// --label-column) holds either
//   - integers >= 0 in every row: used as class indices; num_classes = max + 1 and the class
//     names are "0", "1", ...; or
//   - anything else: each distinct string (trimmed, one pair of surrounding quotes removed) is
//     a class, numbered in sorted (byte-wise) order, like sklearn's LabelEncoder.
// The feature columns are `feature_columns` in that order, or, when it is empty, every other
// column in file order; each must hold a number in every row. Columns that are neither label nor
// feature are not read (they may hold anything).
//
// Errors (qsearch::Error) name the path and the fix: no label column given or not found, a
// feature column not found, given twice or equal to the label (listing the columns), a row with
// more or fewer cells than the header (with its line number), a non-numeric feature cell (line
// number, column, the cell), no data rows.
#pragma once

#include <string>
#include <vector>

#include "data/tabular.h"

namespace qsearch::data {

struct CsvTable {
  Table table;
  std::vector<std::string> feature_names;  // in the order of the table's columns
  std::vector<std::string> class_names;
};

CsvTable read_csv_table(const std::string& path, const std::string& label_column,
                        const std::vector<std::string>& feature_columns = {});

}  // namespace qsearch::data
