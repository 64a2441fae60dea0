// Data sets: what `qsearch eval`, training and every search trial read.
//
// A Dataset is one split of one data set, fully in memory, preprocessed and ready to batch:
//
//   DataOptions opts;                                   // data dir: $QSEARCH_DATA or default
//   Dataset test = load_dataset("mnist", Split::kTest, opts);
//   test.x   float32 [10000, 1, 28, 28], pixels / 255 in [0, 1] (torchvision ToTensor())
//   test.y   int64   [10000], class indices 0..9
//
// Known data sets (docs/datasets.md has the details and how each differs from MASE):
//
//   name            files looked for                               splits
//   mnist           <data_dir>/mnist/{train,t10k}-{images-idx3,    train 60000, test 10000,
//                   labels-idx1}-ubyte[.gz]                        val = test (as MASE)
//   fashion-mnist   <data_dir>/fashion-mnist/, then Debian's       same as mnist
//                   /usr/share/datasets/fashion-mnist/
//   jsc             <data_dir>/jsc/processed-pythia82-lhc13-all-   train = val = the 80% part,
//                   pt1-50k-r1_h022_e0175_t220_nonu_truth.z (HDF5) test = the 20% part
//                   else <data_dir>/jsc/hls4ml_lhc_jets_hlf.csv[.gz] (OpenML 42468)
//   csv:PATH        PATH (header row; numeric features; label     as jsc
//                   column named by DataOptions::label_column,
//                   features by feature_columns, default all)
//   npz:PATH        PATH (arrays x/y, or x_<split>/y_<split>;     every split: x_<split> if
//   [?x=A&y=B]      other names by ?x=&y= or x_array/y_array)     present (val: then x_test), else
//   x npy:X,Y         two .npy files (inputs, labels)               every split: the same
//                   (data/numpy_data.h; any input shape and dtype; float labels = regression)
//
// jsc and csv: are preprocessed exactly as MASE does (mase.md §7.2): drop duplicate rows (jsc
// only), split 80/20 like sklearn's train_test_split(test_size=0.2, random_state=42), then
// standardise both parts with the training part's mean and population standard deviation
// (sklearn StandardScaler). Nothing is cached: every load re-reads and re-preprocesses.
//
// The data directory is DataOptions::data_dir (the CLI's --data-dir), else $QSEARCH_DATA, else
// ~/.cache/qsearch/data. A missing or corrupt file throws qsearch::Error naming every path that
// was tried and the command that fixes it (scripts/setup.sh, qsearch data download jsc, apt-get).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace qsearch::data {

enum class Split { kTrain, kVal, kTest };

// "train" | "val" | "validation" | "test" (case-sensitive); anything else is an Error listing
// these.
Split parse_split(const std::string& s);
// "train", "val", "test".
const char* split_name(Split s);

struct Dataset {
  std::string name;  // "mnist", "fashion-mnist", "jsc", "csv:/path/x.csv"
  Split split = Split::kTest;
  // [N, ...]: float32 [N, 1, 28, 28] for (fashion-)mnist, [N, 16] for jsc; npz:/npy: data sets
  // keep the file's shape and integer dtype (token ids), float64 read as float32.
  Tensor x;
  // Classification: int64 [N], class indices 0..num_classes-1. Regression (npz:/npy: with float
  // labels): float32 [N, ...] targets, and num_classes = 0.
  Tensor y;
  // A model with several graph inputs (npz: one array per input, named after it,
  // DataOptions::input_names): x is the first input's array, more_x the others' in the model's
  // input order, input_names every input's name. Both empty for a one-input data set.
  std::vector<Tensor> more_x;
  std::vector<std::string> input_names;
  bool regression = false;
  int num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  std::string source;                    // the file(s) it came from, ", "-separated
  int64_t size() const { return y.empty() ? 0 : y.dim(0); }
  // The model's inputs: x, then more_x.
  std::vector<Tensor> inputs() const;
};

struct DataOptions {
  std::string data_dir;      // --data-dir; empty = $QSEARCH_DATA, else ~/.cache/qsearch/data
  std::string label_column;  // csv:PATH only: the column holding the labels
  // csv:PATH only: the feature columns, in this order (the model's input order); empty: every
  // column but the label, in file order. Columns named in neither are ignored.
  std::vector<std::string> feature_columns;
  // npz:PATH only: the input and label arrays' names (default "x" and "y"; a split's own
  // NAME_train / NAME_val / NAME_test is preferred when present). ?x=&y= in the name wins.
  std::string x_array, y_array;
  // npz:PATH only: the graph inputs of a model with several (eval::data_input_names: empty for a
  // one-input model). Then each input is read from the array of its exact name (NAME_<split>
  // preferred, as for x), the labels from y; x_array and ?x= are refused.
  std::vector<std::string> input_names;
  // > 0: a caller that reads only the first max_samples samples of the split (`qsearch eval
  // --num-samples`, a search without `--final-eval full`) lets mnist / fashion-mnist and npz: /
  // npy: data keep only those (the same rows; MNIST's 10,000 test images are 31 MB as float32;
  // only those rows of an npz / npy input array are held; data/npy.h). Other data sets load the
  // whole split.
  int64_t max_samples = 0;
};

// Loads one split of `name` (a known data set or "csv:PATH"). Throws Error on an unknown name
// (listing the known ones), a missing file (listing every path tried and the fix), or a
// corrupt one (naming the path, what is wrong, and the fix). Safe to call from several
// threads at once (HDF5 reads are serialised internally).
Dataset load_dataset(const std::string& name, Split split, const DataOptions& options);

// The data directory: options.data_dir, else $QSEARCH_DATA (when set and non-empty), else
// $HOME/.cache/qsearch/data. Not required to exist.
std::string resolve_data_dir(const DataOptions& options);
// Where resolve_data_dir's answer came from: "--data-dir", "$QSEARCH_DATA" or "default".
std::string data_dir_origin(const DataOptions& options);

// One row of `qsearch data list`.
struct DatasetStatus {
  std::string name;
  bool found = false;
  std::string location;                                 // file or directory when found
  std::vector<std::pair<std::string, int64_t>> splits;  // ("train", 60000), ... when found
  std::string note;                                     // e.g. "val = test"
  std::vector<std::string> tried;                       // paths looked at when not found
  std::string install;                                  // command that installs it
  std::string data_dir;         // resolve_data_dir(options), the same in every row
  std::string data_dir_origin;  // data_dir_origin(options)
};

// Looks for every known data set without loading it (IDX headers / HDF5 dims / a CSV line
// count only). For jsc the sizes are of the file before duplicate rows are dropped, so the
// row says so. Never throws for a missing or corrupt file: that is reported in the row.
std::vector<DatasetStatus> list_datasets(const DataOptions& options);
// A table for humans: the data directory and where it came from, then one data set per line
// with where it was found and its split sizes, or what was looked for and how to install it.
std::string format_dataset_list(const std::vector<DatasetStatus>& rows);

// `qsearch data download NAME`. For "jsc": fetches MASE's HDF5 file (CERNBox) and the OpenML
// CSV (data id 42468) into <data_dir>/jsc/ with curl, showing curl's progress bar on `log`,
// then prints the SHA-256 of each file and stores it beside the file as FILE.sha256; later
// loads verify it. Succeeds when at least one of the two arrived (the other's failure is
// logged); throws Error naming every URL and curl's message otherwise. mnist and
// fashion-mnist are installed by scripts/setup.sh; asking for them is an Error saying so.
void download_dataset(const std::string& name, const DataOptions& options, std::ostream& log);

// Names of the known data sets, in list order ("mnist", "fashion-mnist", "jsc").
std::vector<std::string> known_datasets();

}  // namespace qsearch::data
