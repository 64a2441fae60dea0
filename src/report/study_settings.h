// What produced a study: the settings a search records as study user attrs when it creates the
// study (Optuna's study.user_attrs; JSON texts), so that resuming or joining the study with
// other settings, or comparing it with a study of another problem, is refused with the
// difference named (docs/outputs.md, "Study settings").
//
//   model          "models/mlp_mnist.onnx"   the path as given (shown, not compared)
//   model_sha256   "3f2a..."                 the model file's SHA-256
//   dataset        "mnist"                   data set name (csv:PATH included)
//   split          "val"
//   num_samples    1024                      samples each trial evaluates
//   mode           "int"                     engine: int | fake | float
//   fold_batch_norm false                    BatchNorm folded into the conv before quantizing
//                                            (absent = false: older studies never folded)
//   input_dims     {"seq": 12}               the sizes the model's symbolic input dims were
//                                            bound to from the data set (absent when it has
//                                            none, and in older studies); not compared (the
//                                            data set is)
//   objectives     [{"metric": "accuracy", "scale": 1.0, "direction": "maximize"}, ...]
//                  one entry per study value; with sum_scaled_metrics one entry
//                  {"sum_of": [{"metric": ..., "scale": ...}, ...], "direction": ...}
//   param_choices  {"fc1/config/weight_width": [4, 8], ...}   the values each index parameter
//                  stands for (trials.csv decodes parameters with it)
//   qsearch_version "0.1.0"                 informational
//   reference_point {"values": [0, 6.4], "rule": "..."}  compare's default (not compared)
//   sampler "tpe", seed 0, command "qsearch search ..."  as created (shown, not compared)
//
// A study made by an older qsearch has none of these: what cannot be checked is reported as
// unchecked rather than guessed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "search/trial.h"

namespace qsearch::report {

namespace setting {
inline constexpr const char* kModel = "model";
inline constexpr const char* kModelSha256 = "model_sha256";
inline constexpr const char* kDataset = "dataset";
inline constexpr const char* kSplit = "split";
inline constexpr const char* kNumSamples = "num_samples";
inline constexpr const char* kMode = "mode";
inline constexpr const char* kFoldBatchNorm = "fold_batch_norm";
inline constexpr const char* kInputDims = "input_dims";
inline constexpr const char* kObjectives = "objectives";
inline constexpr const char* kParamChoices = "param_choices";
inline constexpr const char* kQsearchVersion = "qsearch_version";
// {"values": [...], "rule": "..."}: the worst objective values the space allows
// (eval::space_reference_point), `qsearch compare`'s default reference point. Not compared on
// resume (it follows from the compared settings and the space).
inline constexpr const char* kReferencePoint = "reference_point";
// Informational, never compared (shown by report.html): the sampler and seed the study was
// created with, and the command line that created it.
inline constexpr const char* kSampler = "sampler";
inline constexpr const char* kSeed = "seed";
inline constexpr const char* kCommand = "command";
}  // namespace setting

// The settings that must agree to resume or join a study, and the subset that must agree for
// two studies to be compared (a comparison may span different search spaces).
const std::vector<std::string>& resume_settings();
const std::vector<std::string>& compare_settings();

struct SettingDifference {
  std::string setting;  // e.g. "model", "mode", "search space"
  std::string stored;   // as the first study / the stored study has it
  std::string now;      // as the second study / this run has it
};

// Compares `keys` of two attr maps (key -> JSON text). A key present on only one side, or on
// neither, is appended to *unchecked (when given) instead of counting as a difference.
std::vector<SettingDifference> diff_settings(const std::map<std::string, std::string>& stored,
                                             const std::map<std::string, std::string>& now,
                                             const std::vector<std::string>& keys,
                                             std::vector<std::string>* unchecked = nullptr);

// "model: a.onnx (sha256 1a2b3c4d5e6f) in <first>, b.onnx (sha256 ...) in <second>; mode: ..."
std::string describe(const std::vector<SettingDifference>& diffs, const std::string& first,
                     const std::string& second);

}  // namespace qsearch::report
