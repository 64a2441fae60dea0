// Distributions of search parameters (Optuna's Int/Float/CategoricalDistribution).
//
// Every parameter value crosses module boundaries as a double "internal representation":
// the value itself for int and float parameters, the choice index for categoricals.
//
//   auto d = Distribution::int_range(0, 2);            // MASE's per-field index parameter
//   auto f = Distribution::float_range(1e-4, 1e-1, /*log=*/true);
//   auto c = Distribution::categorical({"integer", "NA"});
//   d.contains(1.0) == true;  d.cardinality() == 3;
//
// As in Optuna, a `high` that is not on the step grid is lowered onto it
// (int_range(0, 10, 3) has values 0, 3, 6, 9). The factories throw qsearch::Error on invalid
// arguments (low > high, step < 1 for ints, log with low <= 0, log together with a float step,
// no categorical choices); validate() checks a Distribution assembled field by field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qsearch::search {

struct Distribution {
  enum class Kind { kInt, kFloat, kCategorical };
  Kind kind = Kind::kInt;
  double low = 0;  // int/float: inclusive bounds
  double high = 0;
  double step = 1;                   // int: >= 1; float: 0 = continuous
  bool log = false;                  // sample in log space (low > 0)
  std::vector<std::string> choices;  // categorical labels; internal repr = index

  static Distribution int_range(int64_t low, int64_t high, int64_t step = 1, bool log = false);
  static Distribution float_range(double low, double high, bool log = false, double step = 0);
  static Distribution categorical(std::vector<std::string> choices);

  // Throws Error when the fields do not describe a valid distribution.
  void validate() const;

  // Number of distinct values; -1 for a continuous float.
  int64_t cardinality() const;
  // True when `internal` is a value this distribution can produce.
  bool contains(double internal) const;
  // A single-valued distribution (Optuna's `single()`); samplers may skip it.
  bool single() const { return cardinality() == 1; }
  // The k-th value (0 <= k < cardinality()) in increasing order, as internal repr.
  double value_at(int64_t k) const;
  // Index of an internal value in value_at order (inverse of value_at; off-grid values go to
  // the nearest index, clamped to [0, cardinality())). -1 for a continuous float.
  int64_t index_of(double internal) const;

  // Stable JSON text, e.g. {"kind":"int","low":0,"high":2,"step":1,"log":false}.
  std::string to_json() const;
  static Distribution from_json(const std::string& json);  // throws Error on bad text
  bool operator==(const Distribution&) const = default;
};

struct Param {
  std::string name;
  Distribution dist;
  bool operator==(const Param&) const = default;
};

// A study's search space: a fixed, ordered list of parameters. Every trial has one internal
// value per entry, in this order.
using SearchSpace = std::vector<Param>;

}  // namespace qsearch::search
