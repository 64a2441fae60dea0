// libFuzzer target for the TOML config loader, through the function every command that takes
// --config calls (cli::load_config): any bytes must load or raise qsearch::Error, never crash,
// leak, hang or trip a sanitizer. Built by `make fuzz`; see docs/fuzzing.md.
// cli::load_config is compiled in from src/cli/config.cc rather than linking qsearch_cli, which
// pulls in the fixed-point kernels that clang cannot build (docs/fuzzing.md).
// fuzz-deps: search tomlplusplus::tomlplusplus
// fuzz-srcs: src/cli/config.cc
#include <cstddef>
#include <cstdint>

#include "cli/config.h"
#include "core/error.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      qsearch::fuzz::write_file("config.toml", qsearch::fuzz::as_view(data, size));
  try {
    (void)qsearch::cli::load_config(path);
  } catch (const qsearch::Error&) {
  }
  return 0;
}
