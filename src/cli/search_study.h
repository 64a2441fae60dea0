// The output directory and study of `qsearch search`:
// - check_search_paths: refuses an unusable --out or storage before the model and data load
//   (one line naming the path and the cause; touches nothing);
// - study_settings_attrs: what produced the study (report/study_settings.h), recorded as study
//   user attrs when the study is created;
// - open_search_study: creates or loads the study, refusing to resume (or, for several
//   processes, to join) a study whose recorded settings differ from this run's.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/search_settings.h"
#include "ir/input_decl.h"
#include "search/study.h"

namespace qsearch::cli {

// Throws Error when --out is empty, names a file or device, or lies where nothing can be
// written, and when the storage URL is refused (PostgreSQL, unknown forms) or names something
// that is not a writable database file.
void check_search_paths(const config::SearchSettings& s);

// Study user attrs (key -> JSON text) recording the model file's hash, the data, the engine, the
// objectives and the choices of every search parameter; with `input_dims` (the sizes a model's
// symbolic input dims were bound to, SearchProblem::input_dims) also those.
std::map<std::string, std::string> study_settings_attrs(const config::SearchSettings& s,
                                                        int64_t samples_per_trial,
                                                        const nlohmann::ordered_json& param_choices,
                                                        const ir::DimBinding& input_dims = {});

// Creates the output directory and the storage, then creates or loads study s.study_name with
// `attrs`. Throws Error naming every setting that differs from the stored study's (old and new
// values) and the fix (--study NAME or a new --out). A study made by an older qsearch records no
// settings; *notes then gets a line saying what could not be checked.
search::Study open_search_study(const config::SearchSettings& s, const search::SearchSpace& space,
                                const std::map<std::string, std::string>& attrs,
                                std::unique_ptr<search::Sampler> sampler,
                                std::vector<std::string>* notes);

}  // namespace qsearch::cli
