// Sample efficiency of several studies of the same problem (the lab's "brute force vs TPE"
// question, answered with numbers).
//
// Hypervolumes are taken w.r.t. a FIXED reference point r, so that a study's hypervolume is the
// same whoever it is compared with: --ref-point (objective order, the studies' value scale), or
// by default the one each search recorded (study attr reference_point: accuracy 0, the largest
// cost over the space; eval::space_reference_point); all compared studies must then record the
// same one. Only points better than r in every objective count.
//
// All COMPLETE trials of all studies form the reference set; its Pareto front F is the best
// known front (exact when one of the studies is an exhaustive brute force). For each study,
// HV(k) is the hypervolume of the front of its first k trials (by trial number), and the report
// gives:
//   - its final HV (absolute: independent of the company),
//   - final HV / HV(F) (relative to the best known front, which does depend on the company),
//   - the first k with HV(k) >= 90%, 99% and 100% of HV(F) ("-" if never),
//   - how many of F's distinct points the study found.
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
  double hv = 0;     // final hypervolume w.r.t. the reference point
  double hv_ratio = 0;
  std::optional<int> trials_to_90, trials_to_99, trials_to_100;
  int front_found = 0;
  std::vector<double> hv_curve;  // HV(k) / HV(F), k = 1..trials
};

struct CompareOptions {
  // The reference point in objective order, as the studies' values are (not negated); unset:
  // the one the studies recorded.
  std::optional<std::vector<double>> ref_point;
};

struct Comparison {
  int reference_front_size = 0;
  double reference_hv = 0;
  std::vector<double> ref_point;  // as given / recorded (values' scale)
  std::string ref_point_source;   // "--ref-point" or how the searches derived it
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

// Throws Error if check_comparable does, none of the studies has a COMPLETE trial, the reference
// point has the wrong size, or (without one) a study records none or another one than the first.
Comparison compare_studies(const std::vector<StudyRun>& runs, const CompareOptions& options = {});
std::string format_comparison(const Comparison& c);

}  // namespace qsearch::report
