// libFuzzer target for the IDX reader (MNIST / Fashion-MNIST files, plain or gzip): any pair
// of files must load or raise qsearch::Error, never crash, leak, hang or trip a sanitizer.
// Built by `make fuzz`; see docs/fuzzing.md.
//
// Input layout: the bytes up to the first "\n--labels--\n" are the images file, the rest the
// labels file (no separator: the whole input is the images file and the labels file is empty).
// fuzz-deps: data
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/idx.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr std::string_view kSep = "\n--labels--\n";
  const std::string_view in = qsearch::fuzz::as_view(data, size);
  const size_t cut = in.find(kSep);
  const std::string_view images = in.substr(0, cut);
  const std::string_view labels =
      cut == std::string_view::npos ? std::string_view() : in.substr(cut + kSep.size());
  const std::string ipath = qsearch::fuzz::write_file("images-idx3-ubyte", images);
  const std::string lpath = qsearch::fuzz::write_file("labels-idx1-ubyte", labels);
  try {
    (void)qsearch::data::peek_idx_dims(ipath, "fix");
  } catch (const qsearch::Error&) {
  }
  try {
    (void)qsearch::data::load_idx_pair("mnist", qsearch::data::Split::kTest, ipath, lpath,
                                       {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, "fix");
  } catch (const qsearch::Error&) {
  }
  return 0;
}
