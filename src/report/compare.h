// Sample efficiency of several studies of the same problem (the lab's "brute force vs TPE"
// question, answered with numbers).
//
// All COMPLETE trials of all studies form the reference set; its Pareto front F is the best
// known front (exact when one of the studies is an exhaustive brute force). With every
// objective turned into a loss (maximised ones negated), the reference point r is F's nadir
// (its worst value per objective) plus 10% of F's extent, so only points near the best known
// front count. For each study, HV(k) is the hypervolume of the front of its first k trials (by
// trial number) w.r.t. r, and the report gives:
//   - final HV / HV(F),
//   - the first k with HV(k) >= 90%, 99% and 100% of HV(F) ("-" if never),
//   - how many of F's distinct points the study found.
// For one objective HV is the distance of the best value from r, so the same columns read as
// "trials to come within x% of the best value found by anyone".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "search/trial.h"

namespace qsearch::report {

struct StudyRun {
  std::string label;  // e.g. the output directory
  search::StudyInfo info;
  std::vector<search::FrozenTrial> trials;
};

struct StudyEfficiency {
  std::string label;
  int trials = 0;    // all trials
  int complete = 0;  // COMPLETE trials
  double hv_ratio = 0;
  std::optional<int> trials_to_90, trials_to_99, trials_to_100;
  int front_found = 0;
  std::vector<double> hv_curve;  // HV(k) / HV(F), k = 1..trials
};

struct Comparison {
  int reference_front_size = 0;
  double reference_hv = 0;
  std::vector<StudyEfficiency> studies;
  // What could not be checked (studies made by an older qsearch record no settings) and other
  // remarks, e.g. that the studies search different spaces.
  std::vector<std::string> notes;
};

// Only studies of one problem compare: the same objectives (metric names, scales, directions),
// model file (SHA-256), data set, split, samples per trial and engine mode, as recorded in the
// study settings (report/study_settings.h). Throws Error naming the studies and every
// difference. For a study without recorded settings, the directions and the metric names its
// trials report are checked and the rest is listed in the returned notes.
std::vector<std::string> check_comparable(const std::vector<StudyRun>& runs);

// Throws Error if check_comparable does, or none of the studies has a COMPLETE trial.
Comparison compare_studies(const std::vector<StudyRun>& runs);
std::string format_comparison(const Comparison& c);

}  // namespace qsearch::report
