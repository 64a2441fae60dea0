// libFuzzer target for the NumPy reader: any .npz archive (and any .npy file: the same bytes are
// also parsed as one) must load or raise qsearch::Error, never crash, leak, hang or trip a
// sanitizer. Built by `make fuzz`; see docs/fuzzing.md.
// fuzz-deps: data
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/npy.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = qsearch::fuzz::as_view(data, size);
  try {
    (void)qsearch::data::parse_npy(in, "input");
  } catch (const qsearch::Error&) {
  }
  const std::string path = qsearch::fuzz::write_file("data.npz", in);
  try {
    const qsearch::data::NpzFile z = qsearch::data::NpzFile::open(path);
    for (const std::string& name : z.names()) {
      try {
        (void)z.array(name);
      } catch (const qsearch::Error&) {
      }
    }
  } catch (const qsearch::Error&) {
  }
  return 0;
}
