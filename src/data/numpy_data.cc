#include "data/numpy_data.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/tensor_cache.h"
#include "data/npy.h"

namespace qsearch::data {

namespace {

constexpr const char* kLabelFix =
    "save class labels as non-negative integers (a.astype(np.int64)) or regression targets as "
    "floats (a.astype(np.float32))";

struct NumpySpec {
  bool npz = true;
  std::string path;            // npz
  std::string x_path, y_path;  // npy
  std::string x = "x", y = "y";
  bool x_named = false;  // by ?x= or DataOptions::x_array
};

NumpySpec parse_spec(const std::string& name, const DataOptions& options) {
  NumpySpec s;
  if (!options.x_array.empty()) s.x = options.x_array;
  s.x_named = !options.x_array.empty();
  if (!options.y_array.empty()) s.y = options.y_array;
  std::string rest = name.substr(4);
  if (name.starts_with("npy:")) {
    s.npz = false;
    const size_t comma = rest.find(',');
    if (comma == std::string::npos || comma == 0 || comma + 1 == rest.size()) {
      fail("data set '{}' needs two files: npy:INPUTS.npy,LABELS.npy", name);
    }
    s.x_path = rest.substr(0, comma);
    s.y_path = rest.substr(comma + 1);
    return s;
  }
  const size_t q = rest.rfind('?');
  if (q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    size_t p = 0;
    while (p <= query.size()) {
      const size_t amp = std::min(query.find('&', p), query.size());
      const std::string kv = query.substr(p, amp - p);
      const size_t eq = kv.find('=');
      const std::string key = kv.substr(0, eq);
      if (eq == std::string::npos || eq + 1 == kv.size() || (key != "x" && key != "y")) {
        fail(
            "data set '{}': '{}' is no array choice; write npz:PATH?x=INPUTS&y=LABELS (keys x "
            "and y, each naming an array of the archive)",
            name, kv);
      }
      (key == "x" ? s.x : s.y) = kv.substr(eq + 1);
      s.x_named = s.x_named || key == "x";
      p = amp + 1;
    }
  }
  if (rest.empty()) fail("data set '{}' needs a path: npz:/path/to/data.npz", name);
  s.path = rest;
  return s;
}

// The array of `base` that serves `split`: base_<split>, for val then base_test, then base.
std::optional<std::string> pick(const NpzFile& z, const std::string& base, Split split) {
  std::vector<std::string> names = {base + "_" + split_name(split)};
  if (split == Split::kVal) names.push_back(base + "_test");
  names.push_back(base);
  for (const auto& n : names) {
    if (z.has(n)) return n;
  }
  return std::nullopt;
}

std::string list_names(const NpzFile& z) {
  std::string list;
  for (const auto& n : z.names()) list += (list.empty() ? "" : ", ") + n;
  return list.empty() ? "(none)" : list;
}

// Integer labels -> int64 [N] class indices (negative ones refused); returns the largest.
int64_t to_class_indices(Tensor& y, const std::string& where) {
  if (y.rank() == 2 && y.dim(1) == 1) y = y.reshaped({y.dim(0)});
  if (y.rank() != 1) {
    fail("{}: class labels must have shape [N] (or [N, 1]), got {}; fix: {}", where,
         shape_str(y.shape()), kLabelFix);
  }
  if (y.dtype() != DType::kInt64) y = y.to(DType::kInt64);
  int64_t mx = -1;
  const int64_t* p = y.data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (p[i] < 0) {
      fail("{}: label {} at row {} is negative; fix: {}", where, p[i], i, kLabelFix);
    }
    mx = std::max(mx, p[i]);
  }
  return mx;
}

bool is_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat64; }

// x_rows: the input array's rows in the file (x may hold only the first max_samples of them).
void finish(Dataset& d, Tensor x, int64_t x_rows, Tensor y, const std::string& x_where,
            const std::string& y_where, int64_t max_label_elsewhere) {
  if (x.rank() < 1 || y.rank() < 1) {
    fail("{}: inputs and labels need a leading sample dimension, got x {} and y {}", x_where,
         shape_str(x.shape()), shape_str(y.shape()));
  }
  if (x.dtype() == DType::kFloat64) x = x.to(DType::kFloat32);
  if (is_float(y.dtype())) {
    d.regression = true;
    d.num_classes = 0;
    d.y = y.dtype() == DType::kFloat32 ? y : y.to(DType::kFloat32);
  } else {
    const int64_t mx = std::max(to_class_indices(y, y_where), max_label_elsewhere);
    d.num_classes = static_cast<int>(mx + 1);
    for (int c = 0; c < d.num_classes; ++c) d.class_names.push_back(std::to_string(c));
    d.y = y;
  }
  if (x_rows != d.y.dim(0)) {
    fail("{} has {} samples but {} has {}: inputs and labels must have as many rows", x_where,
         x_rows, y_where, d.y.dim(0));
  }
  d.x = x;
}

// The largest label of every other `y*` integer array of the archive (see load_numpy_dataset).
int64_t max_label_elsewhere(const NpzFile& z, const NumpySpec& s, const std::string& yn,
                            const Tensor& y) {
  int64_t max_label = -1;
  if (is_float(y.dtype())) return max_label;
  for (const char* sfx : {"", "_train", "_val", "_test"}) {
    const std::string other = s.y + sfx;
    if (other == yn || !z.has(other)) continue;
    Tensor o = z.array(other);
    if (is_float(o.dtype())) continue;
    max_label =
        std::max(max_label, to_class_indices(o, fmt::format("'{}' array '{}'", s.path, other)));
  }
  return max_label;
}

// A model with several graph inputs: one array per input, of the input's exact name (the first
// input's split suffix, as for x, then the same suffix for every other input and the labels).
Dataset load_named_inputs(Dataset& d, const NpzFile& z, const NumpySpec& s,
                          const std::vector<std::string>& inputs, int64_t max_rows) {
  std::string names;
  for (const auto& n : inputs) names += (names.empty() ? "" : ", ") + n;
  if (s.x_named) {
    fail(
        "data set '{}': x_array / ?x= names the input array of a one-input model, but this model "
        "has {} inputs ({}), each read from the array of its name; fix: drop x_array / ?x= and "
        "save the arrays under those names",
        d.name, inputs.size(), names);
  }
  const auto first = pick(z, inputs[0], d.split);
  if (!first) {
    fail(
        "'{}' has no array for model input '{}' (looked for {}_{}{}, {}); its arrays: {}; fix: "
        "save one array per model input ({}), named after it, and the labels as {}",
        s.path, inputs[0], inputs[0], split_name(d.split),
        d.split == Split::kVal ? ", " + inputs[0] + "_test" : "", inputs[0], list_names(z), names,
        s.y);
  }
  const std::string suffix = first->substr(inputs[0].size());  // "", "_train", ...
  std::vector<Tensor> xs;
  std::vector<int64_t> x_rows;
  std::string arrays;
  for (const auto& in : inputs) {
    const std::string an = in + suffix;
    if (!z.has(an)) {
      fail(
          "'{}' has no array '{}' for model input '{}'; its arrays: {}; fix: save one array "
          "per model input ({}), named after it{}",
          s.path, an, in, list_names(z), names,
          suffix.empty() ? "" : fmt::format(" with the suffix {} of '{}'", suffix, *first));
    }
    int64_t rows = 0;
    Tensor x = z.array(an, max_rows, &rows);
    x_rows.push_back(rows);
    if (x.dtype() == DType::kFloat64) x = x.to(DType::kFloat32);
    xs.push_back(std::move(x));
    arrays += an + ", ";
  }
  const std::string yn = s.y + suffix;
  if (!z.has(yn)) {
    fail(
        "'{}' has the model's input arrays but no labels '{}'; its arrays: {}; fix: save the "
        "labels as '{}' or name them with npz:PATH?y=NAME",
        s.path, yn, list_names(z), yn);
  }
  Tensor y = z.array(yn);
  const int64_t max_label = max_label_elsewhere(z, s, yn, y);
  d.source = fmt::format("{} (arrays {}{})", s.path, arrays, yn);
  finish(d, xs[0], x_rows[0], y, fmt::format("'{}' array '{}'", s.path, inputs[0] + suffix),
         fmt::format("'{}' array '{}'", s.path, yn), max_label);
  for (size_t i = 1; i < xs.size(); ++i) {
    if (xs[i].rank() < 1 || x_rows[i] != d.y.dim(0)) {
      fail(
          "'{}' array '{}' has {} rows (shape {}{}) but the labels '{}' have {}: every input array "
          "needs one row per sample",
          s.path, inputs[i] + suffix, x_rows[i], shape_str(xs[i].shape()),
          x_rows[i] == xs[i].dim(0) ? "" : " read", yn, d.y.dim(0));
    }
    d.more_x.push_back(std::move(xs[i]));
  }
  d.input_names = inputs;
  return d;
}

}  // namespace

namespace {

// DataOptions::max_samples > 0: keeps the first max_samples samples of every array (the rest is
// freed and its blocks returned to the OS: `qsearch eval --num-samples 32` of 128 images at
// 224x224 holds 19 MB, not 77 MB). The labels were checked and the classes counted on the
// whole split first, so they do not depend on it.
Dataset keep_first(Dataset d, int64_t max_samples) {
  if (max_samples <= 0 || d.size() <= max_samples) return d;
  const auto keep = [&](Tensor& t) {
    if (t.dim(0) > max_samples) t = t.rows(0, max_samples).clone();
  };
  keep(d.x);
  for (Tensor& t : d.more_x) keep(t);
  keep(d.y);
  release_cached_tensor_blocks();
  return d;
}

Dataset load_numpy_split(const std::string& name, Split split, const DataOptions& options);

}  // namespace

bool is_numpy_dataset(const std::string& name) {
  return name.starts_with("npz:") || name.starts_with("npy:");
}

Dataset load_numpy_dataset(const std::string& name, Split split, const DataOptions& options) {
  return keep_first(load_numpy_split(name, split, options), options.max_samples);
}

namespace {

Dataset load_numpy_split(const std::string& name, Split split, const DataOptions& options) {
  const NumpySpec s = parse_spec(name, options);
  // The inputs are read only as far as the kept samples (keep_first cuts the labels after
  // they are checked and their classes counted).
  const int64_t max_rows = options.max_samples > 0 ? options.max_samples : -1;
  Dataset d;
  d.name = name;
  d.split = split;
  if (!s.npz) {
    if (options.input_names.size() > 1) {
      fail(
          "data set '{}': the model has {} inputs, which npy: (one input file) cannot feed; fix: "
          "save one array per input, named after it, and the labels as y in an npz archive "
          "(np.savez('d.npz', {}=..., y=...)) and use --dataset npz:d.npz",
          name, options.input_names.size(), options.input_names[0]);
    }
    int64_t x_rows = 0;
    Tensor x = read_npy(s.x_path, max_rows, &x_rows), y = read_npy(s.y_path);
    d.source = s.x_path + ", " + s.y_path;
    finish(d, x, x_rows, y, "'" + s.x_path + "'", "'" + s.y_path + "'", -1);
    return d;
  }
  const NpzFile z = NpzFile::open(s.path);
  if (options.input_names.size() > 1)
    return load_named_inputs(d, z, s, options.input_names, max_rows);
  const auto xn = pick(z, s.x, split);
  if (!xn) {
    fail(
        "'{}' has no input array for the {} split (looked for {}_{}{}, {}); its arrays: {}; fix: "
        "name the arrays with npz:PATH?x=NAME&y=NAME (or x_array / y_array in the config)",
        s.path, split_name(split), s.x, split_name(split),
        split == Split::kVal ? ", " + s.x + "_test" : "", s.x, list_names(z));
  }
  const std::string suffix = xn->substr(s.x.size());  // "", "_train", ...
  const std::string yn = s.y + suffix;
  if (!z.has(yn)) {
    fail(
        "'{}' has inputs '{}' but no labels '{}'; its arrays: {}; fix: save the labels as '{}' "
        "or name them with npz:PATH?y=NAME",
        s.path, *xn, yn, list_names(z), yn);
  }
  int64_t x_rows = 0;
  Tensor x = z.array(*xn, max_rows, &x_rows), y = z.array(yn);
  // Classes: every split's labels count, so that a split missing the last class still has the
  // model's number of classes.
  const int64_t max_label = max_label_elsewhere(z, s, yn, y);
  d.source = fmt::format("{} (arrays {}, {})", s.path, *xn, yn);
  finish(d, x, x_rows, y, fmt::format("'{}' array '{}'", s.path, *xn),
         fmt::format("'{}' array '{}'", s.path, yn), max_label);
  return d;
}

}  // namespace

}  // namespace qsearch::data
