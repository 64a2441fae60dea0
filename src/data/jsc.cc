#include "data/jsc.h"

#include <fmt/format.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>

#include "core/error.h"
#include "data/csv.h"
#include "data/file_io.h"

namespace qsearch::data {

const std::vector<std::string>& jsc_feature_names() {
  static const std::vector<std::string> names = {
      "zlogz",      "c1_b0_mmdt", "c1_b1_mmdt",    "c1_b2_mmdt",    "c2_b1_mmdt", "c2_b2_mmdt",
      "d2_b1_mmdt", "d2_b2_mmdt", "d2_a1_b1_mmdt", "d2_a1_b2_mmdt", "m2_b1_mmdt", "m2_b2_mmdt",
      "n2_b1_mmdt", "n2_b2_mmdt", "mass_mmdt",     "multiplicity"};
  return names;
}

const std::vector<std::string>& jsc_class_names() {
  static const std::vector<std::string> names = {"g", "q", "w", "z", "t"};
  return names;
}

namespace {

constexpr int kFeatures = 16;
constexpr int kClasses = 5;

// The HDF5 library keeps global state and may be built without thread safety.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

class Hid {
 public:
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() {
    if (id_ >= 0) close_(id_);
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  void reset(hid_t id) {
    if (id_ >= 0) close_(id_);
    id_ = id;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::vector<std::string> member_names(hid_t type) {
  std::vector<std::string> names;
  const int n = H5Tget_nmembers(type);
  for (int i = 0; i < n; ++i) {
    char* s = H5Tget_member_name(type, static_cast<unsigned>(i));
    if (s != nullptr) {
      names.emplace_back(s);
      H5free_memory(s);
    }
  }
  return names;
}

std::string joined(const std::vector<std::string>& v, size_t max = 80) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > max) s += fmt::format(", ... ({} in all)", v.size());
  return s;
}

// Opens `path`'s t_allpar_new dataset, with the library's own error printing silenced.
struct Hdf5Dataset {
  Hid file{-1, H5Fclose};
  Hid dset{-1, H5Dclose};
};

void open_jsc_hdf5(const std::string& path, const std::string& fix, Hdf5Dataset& h) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (!file_exists(path)) fail("'{}' does not exist; {}", path, fix);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    fail("'{}' is not an HDF5 file (a truncated or failed download?); {}", path, fix);
  }
  h.file.reset(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!h.file.ok()) fail("cannot open HDF5 file '{}' (corrupt or truncated?); {}", path, fix);
  if (H5Lexists(h.file.get(), kJscHdf5Dataset, H5P_DEFAULT) <= 0) {
    fail("HDF5 file '{}' has no dataset '{}' (the JSC file MASE uses has it); {}", path,
         kJscHdf5Dataset, fix);
  }
  h.dset.reset(H5Dopen2(h.file.get(), kJscHdf5Dataset, H5P_DEFAULT));
  if (!h.dset.ok()) fail("cannot open dataset '{}' in '{}'; {}", kJscHdf5Dataset, path, fix);
}

int64_t hdf5_rows(const Hdf5Dataset& h, const std::string& path, const std::string& fix) {
  Hid space(H5Dget_space(h.dset.get()), H5Sclose);
  if (!space.ok() || H5Sget_simple_extent_ndims(space.get()) != 1) {
    fail("'{}': dataset '{}' must be one-dimensional (one record per jet); {}", path,
         kJscHdf5Dataset, fix);
  }
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  return static_cast<int64_t>(dims[0]);
}

}  // namespace

Table read_jsc_hdf5_in_process(const std::string& path, const std::string& fix) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Hdf5Dataset h;
  open_jsc_hdf5(path, fix, h);
  Hid ftype(H5Dget_type(h.dset.get()), H5Tclose);
  if (!ftype.ok() || H5Tget_class(ftype.get()) != H5T_COMPOUND) {
    fail("'{}': dataset '{}' is not a compound (structured) dataset with named fields; {}", path,
         kJscHdf5Dataset, fix);
  }
  std::vector<std::string> fields;
  for (const auto& f : jsc_feature_names()) fields.push_back("j_" + f);
  for (const auto& c : jsc_class_names()) fields.push_back("j_" + c);
  // libhdf5 trusts a compound type's member layout when it converts records (a member said to
  // lie beyond its record made H5Dread read freed memory: found by tests/fuzz/hdf5_fuzzer.cc),
  // so every member must fit inside the record before anything is read.
  const size_t record_size = H5Tget_size(ftype.get());
  const int n_members = H5Tget_nmembers(ftype.get());
  if (record_size == 0 || n_members <= 0) {
    fail("'{}' is corrupt: dataset '{}' has an empty record type; {}", path, kJscHdf5Dataset, fix);
  }
  for (int m = 0; m < n_members; ++m) {
    Hid mt(H5Tget_member_type(ftype.get(), static_cast<unsigned>(m)), H5Tclose);
    const size_t offset = H5Tget_member_offset(ftype.get(), static_cast<unsigned>(m));
    const size_t size = mt.ok() ? H5Tget_size(mt.get()) : 0;
    if (size == 0 || offset > record_size || size > record_size - offset) {
      fail(
          "'{}' is corrupt: field {} of dataset '{}' ({} bytes at offset {}) does not fit in its "
          "{}-byte record; {}",
          path, m, kJscHdf5Dataset, size, offset, record_size, fix);
    }
  }
  std::vector<std::string> missing;
  bool all_float32 = true;
  for (size_t i = 0; i < fields.size(); ++i) {
    const int idx = H5Tget_member_index(ftype.get(), fields[i].c_str());
    if (idx < 0) {
      missing.push_back(fields[i]);
      continue;
    }
    Hid mt(H5Tget_member_type(ftype.get(), static_cast<unsigned>(idx)), H5Tclose);
    const H5T_class_t cls = H5Tget_class(mt.get());
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
      fail("'{}': field '{}' of '{}' is not numeric; {}", path, fields[i], kJscHdf5Dataset, fix);
    }
    if (i < kFeatures && !(cls == H5T_FLOAT && H5Tget_size(mt.get()) == 4)) all_float32 = false;
  }
  if (!missing.empty()) {
    fail("'{}': dataset '{}' lacks the field(s) {}; it has: {}; {}", path, kJscHdf5Dataset,
         joined(missing), joined(member_names(ftype.get())), fix);
  }
  const int64_t rows = hdf5_rows(h, path, fix);
  // The rows are allocated for below before HDF5 reads them, so a corrupt dataspace claiming
  // billions of records must fail here: the records are stored in the file, compressed at most
  // 1032:1 (deflate's limit), so they cannot take more than that many times the file's size.
  const auto record = static_cast<int64_t>(std::max<size_t>(H5Tget_size(ftype.get()), 1));
  std::error_code ec;
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (rows > file_bytes / record * 1032 + 1) {
    fail(
        "'{}' is corrupt: dataset '{}' claims {} records of {} bytes, more than the {}-byte "
        "file can hold; {}",
        path, kJscHdf5Dataset, rows, record, file_bytes, fix);
  }
  const size_t width = fields.size();
  Hid mem(H5Tcreate(H5T_COMPOUND, width * sizeof(double)), H5Tclose);
  for (size_t i = 0; i < width; ++i) {
    H5Tinsert(mem.get(), fields[i].c_str(), i * sizeof(double), H5T_NATIVE_DOUBLE);
  }
  Table t;
  t.rows = rows;
  t.cols = kFeatures;
  t.float32_source = all_float32;
  t.values.resize(static_cast<size_t>(rows) * kFeatures);
  t.labels.resize(static_cast<size_t>(rows));
  // Read in slabs of rows through one small buffer rather than converting the whole dataset
  // into a second full-size copy.
  constexpr int64_t kSlab = 1 << 15;
  std::vector<double> buf(static_cast<size_t>(std::min(rows, kSlab)) * width);
  Hid file_space(H5Dget_space(h.dset.get()), H5Sclose);
  for (int64_t begin = 0; begin < rows; begin += kSlab) {
    const hsize_t start[1] = {static_cast<hsize_t>(begin)};
    const hsize_t count[1] = {static_cast<hsize_t>(std::min(kSlab, rows - begin))};
    Hid mem_space(H5Screate_simple(1, count, nullptr), H5Sclose);
    if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
        H5Dread(h.dset.get(), mem.get(), mem_space.get(), file_space.get(), H5P_DEFAULT,
                buf.data()) < 0) {
      fail("cannot read rows {}..{} of dataset '{}' in '{}' (truncated or corrupt file?); {}",
           begin, begin + static_cast<int64_t>(count[0]), kJscHdf5Dataset, path, fix);
    }
    for (int64_t i = 0; i < static_cast<int64_t>(count[0]); ++i) {
      const double* rec = buf.data() + static_cast<size_t>(i) * width;
      const int64_t r = begin + i;
      std::copy(rec, rec + kFeatures, t.values.data() + r * kFeatures);
      const double* onehot = rec + kFeatures;
      t.labels[static_cast<size_t>(r)] = std::max_element(onehot, onehot + kClasses) - onehot;
    }
  }
  return t;
}

Table read_jsc_csv(const std::string& path, const std::string& fix) {
  CsvReader csv(FileBytes::open(path, fix), path);
  std::vector<std::string_view> cells;
  if (!csv.next(cells)) fail("'{}' is empty: expected a header row; {}", path, fix);
  std::vector<std::string> header;
  for (auto c : cells) header.emplace_back(unquote(c));
  auto find = [&](const std::string& name) -> int {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name || header[i] == "j_" + name) return static_cast<int>(i);
    }
    return -1;
  };
  std::vector<int> feature_col;
  std::vector<std::string> missing;
  for (const auto& f : jsc_feature_names()) {
    feature_col.push_back(find(f));
    if (feature_col.back() < 0) missing.push_back(f);
  }
  const int class_col = find("class");
  std::vector<int> onehot_col;
  if (class_col < 0) {
    for (const auto& c : jsc_class_names()) {
      onehot_col.push_back(find(c));
      if (onehot_col.back() < 0) {
        missing.push_back("class");
        break;
      }
    }
  }
  if (!missing.empty()) {
    fail("'{}' is not the JSC CSV: column(s) {} missing (the header has: {}); {}", path,
         joined(missing), joined(header), fix);
  }
  Table t;
  t.cols = kFeatures;
  const int64_t max_rows = csv.count_newlines() + 1;
  t.values.reserve(static_cast<size_t>(max_rows) * kFeatures);
  t.labels.reserve(static_cast<size_t>(max_rows));
  while (csv.next(cells)) {
    if (cells.size() != header.size()) {
      fail("{}:{}: {} cells, but the header has {} columns; {}", path, csv.line(), cells.size(),
           header.size(), fix);
    }
    for (int j = 0; j < kFeatures; ++j) {
      double v;
      std::string_view cell = cells[static_cast<size_t>(feature_col[static_cast<size_t>(j)])];
      if (!parse_number(cell, v)) {
        fail("{}:{}: column '{}' holds '{}', not a number; {}", path, csv.line(),
             jsc_feature_names()[static_cast<size_t>(j)], trim(cell), fix);
      }
      t.values.push_back(v);
    }
    int64_t label = -1;
    if (class_col >= 0) {
      std::string_view s = unquote(cells[static_cast<size_t>(class_col)]);
      for (int k = 0; k < kClasses; ++k) {
        if (s == jsc_class_names()[static_cast<size_t>(k)]) label = k;
      }
      if (label < 0) {
        fail("{}:{}: class '{}' is not one of g, q, w, z, t; {}", path, csv.line(), s, fix);
      }
    } else {
      double best = 0;
      for (int k = 0; k < kClasses; ++k) {
        double v;
        std::string_view cell = cells[static_cast<size_t>(onehot_col[static_cast<size_t>(k)])];
        if (!parse_number(cell, v)) {
          fail("{}:{}: column 'j_{}' holds '{}', not a number; {}", path, csv.line(),
               jsc_class_names()[static_cast<size_t>(k)], trim(cell), fix);
        }
        if (k == 0 || v > best) {
          best = v;
          label = k;
        }
      }
    }
    t.labels.push_back(label);
    ++t.rows;
  }
  return t;
}

int64_t jsc_hdf5_rows_in_process(const std::string& path, const std::string& fix) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0) return -1;
  Hdf5Dataset h;
  open_jsc_hdf5(path, fix, h);
  return hdf5_rows(h, path, fix);
}

namespace {

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;  // the parent reports the short result
    p += k;
    n -= static_cast<size_t>(k);
  }
}

template <class T>
void append_pod(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class T>
T take_pod(std::string_view& in) {
  T v{};
  if (in.size() < sizeof v) fail("internal error: short result from the HDF5 reader process");
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return v;
}

// Runs `fn` (which calls libhdf5) in a child process and returns the bytes it produced. libhdf5
// is not memory-safe on corrupt files (fuzzing found a NULL read in its group lookup, see
// docs/fuzzing.md); in a child, such a crash becomes an Error naming the file instead of killing
// qsearch. An Error thrown by `fn` is passed back with its message.
std::string in_child_process(const std::string& path, const std::string& fix,
                             const std::function<std::string()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) fail("cannot read '{}': pipe: {}; {}", path, std::strerror(errno), fix);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    fail("cannot read '{}': fork: {}; {}", path, std::strerror(errno), fix);
  }
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = "o";
    try {
      out += fn();
    } catch (const Error& e) {
      out = fmt::format("e{}", e.what());
    } catch (const std::exception& e) {
      out = fmt::format("ecannot read '{}': {}; {}", path, e.what(), fix);
    }
    write_all(fds[1], out.data(), out.size());
    ::_exit(0);  // no atexit handlers, no flushing of the parent's buffers
  }
  ::close(fds[1]);
  std::string got;
  char buf[1 << 16];
  for (;;) {
    const ssize_t k = ::read(fds[0], buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got.append(buf, static_cast<size_t>(k));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    fail("'{}' is corrupt: libhdf5 crashed reading it ({}); {}", path,
         ::strsignal(WTERMSIG(status)), fix);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got.empty()) {
    fail("cannot read '{}': the HDF5 reader process failed (status {}); {}", path, status, fix);
  }
  if (got[0] == 'e') throw Error(got.substr(1));
  return got.substr(1);
}

}  // namespace

Table read_jsc_hdf5(const std::string& path, const std::string& fix) {
  const std::string bytes = in_child_process(path, fix, [&] {
    const Table t = read_jsc_hdf5_in_process(path, fix);
    std::string out;
    append_pod(out, t.rows);
    append_pod(out, t.cols);
    append_pod(out, static_cast<uint8_t>(t.float32_source));
    out.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(double));
    out.append(reinterpret_cast<const char*>(t.labels.data()), t.labels.size() * sizeof(int64_t));
    return out;
  });
  std::string_view in(bytes);
  Table t;
  t.rows = take_pod<int64_t>(in);
  t.cols = take_pod<int>(in);
  t.float32_source = take_pod<uint8_t>(in) != 0;
  const auto n = static_cast<size_t>(t.rows);
  if (in.size() != n * static_cast<size_t>(t.cols) * sizeof(double) + n * sizeof(int64_t)) {
    fail("internal error: the HDF5 reader process returned {} bytes for {} rows", bytes.size(),
         t.rows);
  }
  t.values.resize(n * static_cast<size_t>(t.cols));
  t.labels.resize(n);
  std::memcpy(t.values.data(), in.data(), t.values.size() * sizeof(double));
  std::memcpy(t.labels.data(), in.data() + t.values.size() * sizeof(double),
              t.labels.size() * sizeof(int64_t));
  return t;
}

int64_t jsc_file_rows(const std::string& path, const std::string& fix) {
  std::string_view in;
  const std::string bytes = in_child_process(path, fix, [&] {
    std::string out;
    append_pod(out, jsc_hdf5_rows_in_process(path, fix));
    return out;
  });
  in = bytes;
  const auto hdf5_rows_or_not = take_pod<int64_t>(in);
  if (hdf5_rows_or_not >= 0) return hdf5_rows_or_not;
  CsvReader csv(FileBytes::open(path, fix), path);
  std::vector<std::string_view> cells;
  int64_t rows = -1;  // the header is not a row
  while (csv.next(cells)) ++rows;
  return std::max<int64_t>(rows, 0);
}

}  // namespace qsearch::data
