// libFuzzer target for the JSC HDF5 reader: any bytes must load or raise qsearch::Error. It calls
// the in-process readers (read_jsc_hdf5 and jsc_file_rows run them in a child process, whose
// coverage libFuzzer would not see). libhdf5 itself is not instrumented (coverage stops at its
// API), so this exercises our checks around it and whatever of libhdf5's parsing a file can
// reach; see docs/fuzzing.md for what is and is not protected. Built by `make fuzz`.
// fuzz-deps: data
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "data/jsc.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      qsearch::fuzz::write_file(qsearch::data::kJscHdf5File, qsearch::fuzz::as_view(data, size));
  try {
    (void)qsearch::data::jsc_hdf5_rows_in_process(path, "fix");
  } catch (const qsearch::Error&) {
  }
  try {
    (void)qsearch::data::read_jsc_hdf5_in_process(path, "fix");
  } catch (const qsearch::Error&) {
  }
  return 0;
}
