#include "data/dataset.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <ostream>

#include "core/error.h"
#include "data/csv_table.h"
#include "data/download.h"
#include "data/file_io.h"
#include "data/idx.h"
#include "data/jsc.h"
#include "data/numpy_data.h"
#include "data/sha256.h"
#include "data/tabular.h"

namespace qsearch::data {

Split parse_split(const std::string& s) {
  if (s == "train") return Split::kTrain;
  if (s == "val" || s == "validation") return Split::kVal;
  if (s == "test") return Split::kTest;
  fail("unknown split '{}': expected train, val (or validation) or test", s);
}

const char* split_name(Split s) {
  switch (s) {
    case Split::kTrain:
      return "train";
    case Split::kVal:
      return "val";
    case Split::kTest:
      return "test";
  }
  return "?";
}

std::vector<std::string> known_datasets() { return {"mnist", "fashion-mnist", "jsc"}; }

namespace {

const char* env_nonempty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? v : nullptr;
}

std::string home_dir() {
  if (const char* h = env_nonempty("HOME")) return h;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    return pw->pw_dir;
  }
  fail("cannot find the home directory ($HOME is not set): pass --data-dir or set QSEARCH_DATA");
}

// ---- IDX data sets -------------------------------------------------------------------------

struct IdxSpec {
  std::string name;
  std::vector<std::string> class_names;
  std::string install;  // fixes a missing data set
  std::string repair;   // fixes a corrupt one
};

IdxSpec idx_spec(const std::string& name, const std::string& data_dir) {
  if (name == "mnist") {
    return {name,
            {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
            "run scripts/setup.sh (installs MNIST into " + join_path(data_dir, "mnist") +
                "), or point --data-dir / $QSEARCH_DATA at a directory holding mnist/",
            "delete the damaged file and run scripts/setup.sh to fetch MNIST again"};
  }
  return {name,
          {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"},
          "sudo apt-get install dataset-fashion-mnist (or run scripts/setup.sh), or put the IDX "
          "files in " +
              join_path(data_dir, "fashion-mnist"),
          "reinstall it: sudo apt-get install --reinstall dataset-fashion-mnist (or replace the "
          "damaged file)"};
}

std::vector<std::string> idx_dirs(const std::string& name, const std::string& data_dir) {
  if (name == "mnist") return {join_path(data_dir, "mnist")};
  return {join_path(data_dir, "fashion-mnist"), "/usr/share/datasets/fashion-mnist"};
}

struct IdxFiles {
  std::string images, labels;
};

// prefix: "train" or "t10k". Both files must be in the same directory.
std::optional<IdxFiles> find_idx(const std::vector<std::string>& dirs, const std::string& prefix,
                                 std::vector<std::string>& tried) {
  for (const auto& dir : dirs) {
    std::vector<std::string> img = {join_path(dir, prefix + "-images-idx3-ubyte"),
                                    join_path(dir, prefix + "-images-idx3-ubyte.gz")};
    std::vector<std::string> lab = {join_path(dir, prefix + "-labels-idx1-ubyte"),
                                    join_path(dir, prefix + "-labels-idx1-ubyte.gz")};
    auto i = first_existing(img);
    auto l = first_existing(lab);
    if (i && l) return IdxFiles{*i, *l};
    if (!i) tried.insert(tried.end(), img.begin(), img.end());
    if (!l) tried.insert(tried.end(), lab.begin(), lab.end());
  }
  return std::nullopt;
}

std::string list_lines(const std::vector<std::string>& paths) {
  std::string s;
  for (const auto& p : paths) s += "\n    " + p;
  return s;
}

Dataset load_idx(const std::string& name, Split split, const std::string& data_dir,
                 int64_t max_samples) {
  const IdxSpec spec = idx_spec(name, data_dir);
  std::vector<std::string> tried;
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  auto files = find_idx(idx_dirs(name, data_dir), prefix, tried);
  if (!files) {
    fail("data set '{}' ({} split) not found; looked for:{}\n  fix: {}", name, split_name(split),
         list_lines(tried), spec.install);
  }
  return load_idx_pair(name, split, files->images, files->labels, spec.class_names, spec.repair,
                       max_samples);
}

// ---- JSC -----------------------------------------------------------------------------------

const char* kJscInstall = "qsearch data download jsc";

std::vector<std::string> jsc_candidates(const std::string& data_dir) {
  const std::string dir = join_path(data_dir, "jsc");
  return {join_path(dir, kJscHdf5File), join_path(dir, kJscCsvFile),
          join_path(dir, std::string(kJscCsvFile) + ".gz")};
}

bool is_csv_name(const std::string& path) {
  return path.ends_with(".csv") || path.ends_with(".csv.gz");
}

Dataset load_jsc(Split split, const std::string& data_dir) {
  const auto candidates = jsc_candidates(data_dir);
  const auto path = first_existing(candidates);
  if (!path) {
    fail(
        "data set 'jsc' not found; looked for:{}\n  fix: run `{}` (needs internet), or copy "
        "MASE's HDF5 file or the OpenML CSV to the first or second path (docs/datasets.md)",
        list_lines(candidates), kJscInstall);
  }
  const std::string fix = fmt::format("re-run `{}` or replace '{}'", kJscInstall, *path);
  verify_checksum_if_present(*path, fix);
  Table t = is_csv_name(*path) ? read_jsc_csv(*path, fix) : read_jsc_hdf5(*path, fix);
  drop_duplicate_rows(t);
  Dataset d;
  d.name = "jsc";
  d.split = split;
  d.num_classes = 5;
  d.class_names = jsc_class_names();
  d.source = *path;
  standardized_split(t, split, 0.2, 42, jsc_feature_names(), *path, d);
  return d;
}

Dataset load_csv(const std::string& name, Split split, const std::string& path,
                 const DataOptions& options) {
  CsvTable ct = read_csv_table(path, options.label_column, options.feature_columns);
  Dataset d;
  d.name = name;
  d.split = split;
  d.num_classes = static_cast<int>(ct.class_names.size());
  d.class_names = ct.class_names;
  d.source = path;
  standardized_split(ct.table, split, 0.2, 42, ct.feature_names, path, d);
  return d;
}

}  // namespace

std::string resolve_data_dir(const DataOptions& options) {
  if (!options.data_dir.empty()) return options.data_dir;
  if (const char* env = env_nonempty("QSEARCH_DATA")) return env;
  return join_path(home_dir(), ".cache/qsearch/data");
}

std::string data_dir_origin(const DataOptions& options) {
  if (!options.data_dir.empty()) return "--data-dir";
  if (env_nonempty("QSEARCH_DATA")) return "$QSEARCH_DATA";
  return "default";
}

Dataset load_dataset(const std::string& name, Split split, const DataOptions& options) {
  try {
    if (name.starts_with("csv:")) {
      const std::string path = name.substr(4);
      if (path.empty()) fail("data set 'csv:' needs a path: csv:/path/to/file.csv");
      return load_csv(name, split, path, options);
    }
    if (is_numpy_dataset(name)) return load_numpy_dataset(name, split, options);
    if (options.input_names.size() > 1) {
      std::string names;
      for (const auto& n : options.input_names) names += (names.empty() ? "" : ", ") + n;
      fail(
          "the model has {} inputs ({}), and only npz: data sets feed several inputs; fix: save "
          "one array per input, named after it, and the labels as y: np.savez('d.npz', "
          "{}=..., y=...), then --dataset npz:d.npz",
          options.input_names.size(), names, options.input_names[0]);
    }
    const std::string data_dir = resolve_data_dir(options);
    if (name == "mnist" || name == "fashion-mnist") {
      return load_idx(name, split, data_dir, options.max_samples);
    }
    if (name == "jsc") return load_jsc(split, data_dir);
  } catch (Error& e) {
    e.add_context(fmt::format("while loading data set '{}' ({} split)", name, split_name(split)));
    throw;
  }
  fail(
      "unknown data set '{}': expected one of mnist, fashion-mnist, jsc, csv:PATH, npz:PATH or "
      "npy:X.npy,Y.npy",
      name);
}

std::vector<Tensor> Dataset::inputs() const {
  std::vector<Tensor> v{x};
  v.insert(v.end(), more_x.begin(), more_x.end());
  return v;
}

// ---- qsearch data list ---------------------------------------------------------------------

std::vector<DatasetStatus> list_datasets(const DataOptions& options) {
  const std::string data_dir = resolve_data_dir(options);
  std::vector<DatasetStatus> rows;
  for (const std::string name : {"mnist", "fashion-mnist"}) {
    const IdxSpec spec = idx_spec(name, data_dir);
    DatasetStatus st;
    st.name = name;
    st.install = spec.install;
    std::vector<std::string> tried;
    auto train = find_idx(idx_dirs(name, data_dir), "train", tried);
    auto test = find_idx(idx_dirs(name, data_dir), "t10k", tried);
    if (train && test) {
      try {
        const int64_t n_train = peek_idx_dims(train->images, spec.repair)[0];
        const int64_t n_test = peek_idx_dims(test->images, spec.repair)[0];
        st.found = true;
        st.location = train->images.substr(0, train->images.find_last_of('/'));
        st.splits = {{"train", n_train}, {"test", n_test}};
        st.note = "val = test, as in MASE";
      } catch (const Error& e) {
        st.note = e.what();
      }
    } else {
      st.tried = tried;
    }
    rows.push_back(std::move(st));
  }
  DatasetStatus jsc;
  jsc.name = "jsc";
  jsc.install = kJscInstall;
  const auto candidates = jsc_candidates(data_dir);
  if (auto path = first_existing(candidates)) {
    try {
      const int64_t n = jsc_file_rows(*path, "re-run `qsearch data download jsc`");
      jsc.found = true;
      jsc.location = *path;
      jsc.splits = {{"rows in file", n}};
      jsc.note = "train = val = 80%, test = 20% of the rows left after dropping duplicates";
      if (!read_checksum_file(*path).empty()) jsc.note += "; SHA-256 verified on load";
    } catch (const Error& e) {
      jsc.note = e.what();
    }
  } else {
    jsc.tried = candidates;
  }
  rows.push_back(std::move(jsc));
  for (auto& r : rows) {
    r.data_dir = data_dir;
    r.data_dir_origin = data_dir_origin(options);
  }
  return rows;
}

std::string format_dataset_list(const std::vector<DatasetStatus>& rows) {
  std::string out;
  if (!rows.empty() && !rows[0].data_dir.empty()) {
    out += fmt::format("data directory: {} (from {})\n", rows[0].data_dir, rows[0].data_dir_origin);
  }
  for (const auto& r : rows) {
    out += fmt::format("{:<14} {:<8}", r.name, r.found ? "found" : "missing");
    if (r.found) {
      out += " " + r.location + "\n";
      std::string sizes;
      for (const auto& [split, n] : r.splits) {
        sizes += fmt::format("{}{} {}", sizes.empty() ? "" : ", ", split, n);
      }
      out += fmt::format("{:<24}{}{}\n", "", sizes, r.note.empty() ? "" : " (" + r.note + ")");
    } else {
      out += " install: " + r.install + "\n";
      if (!r.note.empty()) out += fmt::format("{:<24}{}\n", "", r.note);
      for (const auto& t : r.tried) out += fmt::format("{:<24}looked for {}\n", "", t);
    }
  }
  return out;
}

void download_dataset(const std::string& name, const DataOptions& options, std::ostream& log) {
  if (name == "jsc") {
    const std::string dir = join_path(resolve_data_dir(options), "jsc");
    const int have = download_sources(jsc_download_sources(), dir, log);
    log << "jsc: " << have << " of 2 files in " << dir << "\n";
    return;
  }
  if (name == "mnist" || name == "fashion-mnist") {
    fail("'{}' is installed by scripts/setup.sh, not by qsearch data download ({})", name,
         idx_spec(name, resolve_data_dir(options)).install);
  }
  fail(
      "cannot download data set '{}': only jsc is downloadable (mnist and fashion-mnist come "
      "with scripts/setup.sh; csv:PATH is your own file)",
      name);
}

}  // namespace qsearch::data
