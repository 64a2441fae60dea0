// The jet-substructure (JSC) data set in its two distributions, read into a Table of raw rows
// (16 features in MASE's order, label 0..4) before MASE's preprocessing (tabular.h).
//
// 1. MASE/LogicNets HDF5 file (kJscHdf5File): dataset `t_allpar_new`, a 1-D compound dataset
//    with named numeric fields. Only the 21 fields needed are read, by name, through an HDF5
//    compound memory type of doubles (HDF5 converts float32/int fields exactly):
//      features j_zlogz, j_c1_b0_mmdt, ..., j_multiplicity (jsc_feature_names() with "j_")
//      one-hot labels j_g, j_q, j_w, j_z, j_t; label = index of the first maximum
//      (torch.max(Y, 1)[1] in MASE, so g=0, q=1, w=2, z=3, t=4).
//    float32_source is set when all 16 feature fields are 32-bit floats (as in the real file),
//    which selects sklearn's float32 transform arithmetic.
// 2. OpenML CSV `hls4ml_lhc_jets_hlf` (data id 42468, kJscCsvFile): a header naming the 16
//    features (with or without the "j_" prefix, any column order, extra columns ignored) and
//    a string `class` column in {g, q, w, z, t} (quoted or not), mapped to MASE's order g=0,
//    q=1, w=2, z=3, t=4 (not OpenML/LabelEncoder's alphabetical g,q,t,w,z). Alternatively
//    the five one-hot columns j_g..j_t. Cells are parsed as Python's float() does.
//
// Both throw Error naming the path, what is missing or malformed (line numbers for the CSV,
// the fields present for the HDF5 file) and `fix`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tabular.h"

namespace qsearch::data {

inline constexpr const char* kJscHdf5File =
    "processed-pythia82-lhc13-all-pt1-50k-r1_h022_e0175_t220_nonu_truth.z";
inline constexpr const char* kJscCsvFile = "hls4ml_lhc_jets_hlf.csv";
inline constexpr const char* kJscHdf5Dataset = "t_allpar_new";

// The 16 feature names in MASE's order, without the "j_" prefix.
const std::vector<std::string>& jsc_feature_names();
// {"g", "q", "w", "z", "t"}.
const std::vector<std::string>& jsc_class_names();

// The HDF5 file is read by libhdf5 in a child process (fork): libhdf5 is not memory-safe on
// corrupt files, and a crash there becomes an Error naming the file (docs/fuzzing.md).
Table read_jsc_hdf5(const std::string& path, const std::string& fix);
Table read_jsc_csv(const std::string& path, const std::string& fix);

// Rows in the file (HDF5: the dataset's length; CSV: non-blank lines after the header),
// without validating the contents. Throws Error when the file cannot be read.
int64_t jsc_file_rows(const std::string& path, const std::string& fix);

// The same readers in this process, without the child process: for the fuzz target
// (tests/fuzz/hdf5_fuzzer.cc), whose coverage a child would hide. jsc_hdf5_rows_in_process
// returns -1 for a file that is not HDF5.
Table read_jsc_hdf5_in_process(const std::string& path, const std::string& fix);
int64_t jsc_hdf5_rows_in_process(const std::string& path, const std::string& fix);

}  // namespace qsearch::data
