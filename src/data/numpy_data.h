// Data sets from NumPy files: `npz:PATH[?x=NAME&y=NAME]` and `npy:X.npy,Y.npy` (docs/datasets.md).
//
//   npz:data.npz                  arrays x / y for every split, or x_<split> / y_<split> when the
//                                 archive has them (split: train, val, test; val falls back to
//                                 x_test / y_test, then x / y, as MNIST's val = test)
//   npz:data.npz?x=ids&y=labels   the same with other array names (ids_train, ids, ...); also
//                                 DataOptions::x_array / y_array (config keys x_array, y_array)
//   npy:x.npy,y.npy               one pair of .npy files, the same for every split
//
// x keeps its dtype and shape ([N, ...]; float64 becomes float32, bool uint8): integer inputs
// such as token ids stay integers. y decides the task: integer (or bool) labels are class
// indices (int64 [N]; [N, 1] is flattened), with num_classes = 1 + the largest label over every
// y array of that name in the file; float targets ([N, ...]) make a regression data set
// (Dataset::regression, float32 y, num_classes 0). Errors name the file, the array and the fix.
#pragma once

#include <string>

#include "data/dataset.h"

namespace qsearch::data {

// True for names load_numpy_dataset takes ("npz:..." or "npy:...").
bool is_numpy_dataset(const std::string& name);
Dataset load_numpy_dataset(const std::string& name, Split split, const DataOptions& options);

}  // namespace qsearch::data
