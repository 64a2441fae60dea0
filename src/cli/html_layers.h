// Per-layer numbers for report.html's selected-trial table (report/html_report.h): the report
// module knows no model, so the CLI loads the one the study records (or --model) and counts each
// trial's layers with eval/hardware_metrics.h.
//
// A trial's formats come from its stored sampled_config (keys: node config names, or MASE op
// types for a space by "type"; "default" for the rest), converted as a transform pass converts
// them. The numbers of a trial are shown only when their sums reproduce the model_size_bytes and
// bitops the search recorded for it, where it recorded them (else the configuration was not
// rebuilt faithfully and the table shows the formats alone).
#pragma once

#include <string>

#include "report/html_report.h"
#include "search/trial.h"

namespace qsearch::cli {

// Fills options->layer_numbers and options->layer_numbers_note. model_override: --model, else
// the study's recorded model path; a missing file or a SHA-256 other than the recorded one
// leaves layer_numbers empty with the reason in the note (never an error: the rest of the report
// does not need the model).
void attach_layer_numbers(const search::StudyInfo& info, const std::string& model_override,
                          report::HtmlOptions* options);

// This process's command line ("qsearch search --config c.toml ..."), from /proc/self/cmdline;
// arguments with spaces or quotes are single-quoted. Empty when unreadable.
std::string this_command_line();

}  // namespace qsearch::cli
