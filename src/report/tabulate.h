// Python tabulate's tablefmt="orgtbl" (tabulate 0.8/0.9), as MASE prints its "Best trial(s)".
//
// Each column is as wide as its widest cell, and at least its header plus 2; every cell gets one
// space of padding on each side. Numeric columns (Column::numeric) are right-aligned, header
// included; text columns are left-aligned. Width is the number of code points (tabulate
// without the optional wcwidth package).
//
//   orgtbl({{"", true}, {"number", true}, {"metrics", false}},
//          {{"0", "4", "{'loss': 0.5}"}}) ==
//     "|    |   number | metrics       |\n"
//     "|----+----------+---------------|\n"
//     "|  0 |        4 | {'loss': 0.5} |"
#pragma once

#include <string>
#include <vector>

namespace qsearch::report {

struct Column {
  std::string header;
  bool numeric = false;
};

// The table without a trailing newline. Every row has one cell per column.
std::string orgtbl(const std::vector<Column>& columns,
                   const std::vector<std::vector<std::string>>& rows);

}  // namespace qsearch::report
