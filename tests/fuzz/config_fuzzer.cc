// libFuzzer target for the TOML config loader, through the function every command that takes
// --config calls (config::load_config, the config module): any bytes must load or raise
// qsearch::Error, never crash, leak, hang or trip a sanitizer. Built by `make fuzz`; see
// docs/fuzzing.md. config::load_config is compiled in from src/config/ rather than linking
// qsearch_config, whose eval dependency pulls in the fixed-point kernels that clang cannot build
// (docs/fuzzing.md). fuzz-deps: search tomlplusplus::tomlplusplus fuzz-srcs: src/config/config.cc
// src/config/checks.cc
#include <cstddef>
#include <cstdint>

#include "config/config.h"
#include "core/error.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      qsearch::fuzz::write_file("config.toml", qsearch::fuzz::as_view(data, size));
  try {
    (void)qsearch::config::load_config(path);
  } catch (const qsearch::Error&) {
  }
  return 0;
}
