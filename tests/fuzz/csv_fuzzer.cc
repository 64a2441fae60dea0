// libFuzzer target for the CSV readers: the generic labelled table (`csv:PATH`, label column
// "label") and the OpenML JSC file. Any bytes must load or raise qsearch::Error, never crash,
// leak, hang or trip a sanitizer. Built by `make fuzz`; see docs/fuzzing.md.
// fuzz-deps: data
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "data/csv_table.h"
#include "data/jsc.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      qsearch::fuzz::write_file("data.csv", qsearch::fuzz::as_view(data, size));
  try {
    (void)qsearch::data::read_csv_table(path, "label");
  } catch (const qsearch::Error&) {
  }
  try {
    (void)qsearch::data::read_jsc_csv(path, "fix");
  } catch (const qsearch::Error&) {
  }
  try {
    (void)qsearch::data::jsc_file_rows(path, "fix");
  } catch (const qsearch::Error&) {
  }
  return 0;
}
