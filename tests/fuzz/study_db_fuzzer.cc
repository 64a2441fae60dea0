// libFuzzer target for the study database opener: the input is a study.db file; opening it
// (storage::open_storage, as `qsearch search` and `qsearch report` do) and reading every study
// and trial must work or raise qsearch::Error, never crash, leak, hang or trip a sanitizer.
// Built by `make fuzz`; see docs/fuzzing.md.
// fuzz-deps: storage
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_file.h"
#include "storage/sqlite_storage.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qsearch::fuzz::clear_dir();  // no -wal / -shm file of the previous input
  const std::string path =
      qsearch::fuzz::write_file("study.db", qsearch::fuzz::as_view(data, size));
  try {
    auto storage = qsearch::storage::open_storage(path);
    for (const std::string& name : storage->study_names()) {
      const auto id = storage->find_study(name);
      if (!id) continue;
      (void)storage->get_study(*id);
      (void)storage->get_trials(*id);
    }
  } catch (const qsearch::Error&) {
  }
  return 0;
}
