// MASE's tabular preprocessing (mase.md §7.2), reproduced exactly, for jsc and csv:PATH.
//
//   Table t = ...;                  // rows of features + a label, in file order
//   drop_duplicate_rows(t);         // pandas DataFrame.drop_duplicates(): keep first
//   Dataset d = standardized_split(t, Split::kTest, 0.2, 42);
//
// Duplicates: rows whose features AND label are all equal to an earlier row's, with pandas'
// float equality (0.0 == -0.0). The split is train_test_split_indices (numpy_random.h).
//
// StandardScaler (sklearn 1.2, float64 accumulation, sequential over rows as numpy sums a
// C-ordered array along axis 0), fit on the training rows r in R with n = |R|:
//   mean_j  = (sum_r x_rj) / n
//   c_j     = sum_r (x_rj - mean_j);   q_j = sum_r (x_rj - mean_j)^2
//   var_j   = (q_j - c_j^2 / n) / n                 (corrected two-pass, population variance)
//   scale_j = sqrt(var_j), or 1 when var_j <= n eps var_j + (n mean_j eps)^2
//             (sklearn's near-constant test, eps = 2^-52)
// applied to both parts as sklearn's in-place transform does in the source precision:
//   float32 source: z = f32( f32(x - mean_j) / scale_j )   (x - mean, / in double, rounded)
//   float64 source: z = f32( (x - mean_j) / scale_j )      (float32 only at the end)
// so the result equals MASE's arrays bit for bit whenever mean/scale agree to the last bit
// (tests/data compare bit-exactly against sklearn output).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace qsearch::data {

struct Table {
  int64_t rows = 0;
  int cols = 0;                 // features per row
  std::vector<double> values;   // row-major [rows, cols]
  std::vector<int64_t> labels;  // [rows]
  bool float32_source = false;  // every feature column was float32 in the file
};

// Keeps the first of each group of equal rows (features and label), in order. Returns the
// number of rows dropped.
int64_t drop_duplicate_rows(Table& t);

struct StandardScaler {
  std::vector<double> mean;
  std::vector<double> scale;
  // Fits on the rows `rows` of `t` (see the header comment for the exact arithmetic).
  static StandardScaler fit(const Table& t, const std::vector<int64_t>& rows);
};

// Splits `t` 80/20 (test_fraction, seed as sklearn's train_test_split), fits a StandardScaler
// on the training part and returns split `split` (kTrain and kVal: the training part; kTest:
// the test part) as x float32 [n, cols], y int64 [n]. Throws Error on non-finite features
// (naming `what`, the row and the column) or when a part would be empty.
void standardized_split(const Table& t, Split split, double test_fraction, uint32_t seed,
                        const std::vector<std::string>& column_names, const std::string& what,
                        Dataset& out);

}  // namespace qsearch::data
