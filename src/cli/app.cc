#include "cli/app.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <malloc.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "config/checks.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace qsearch::cli {

namespace {

bool cpu_is_supported() {
#if defined(__x86_64__) && defined(__AVX2__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return true;
#endif
}

// A search allocates and frees the same few large buffers every trial (packed weights, executor
// slots). By default glibc serves blocks over 128 KiB with fresh mmap()s and returns freed heap
// tops to the kernel, so every trial paid for page faults on zeroed pages (16% of a 400-trial
// MNIST search). Keep such blocks in the heap and keep freed memory for reuse.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory();
  if (!cpu_is_supported()) {
    std::fputs(
        "qsearch: error: this build needs AVX2 and FMA (-march=x86-64-v3), which this CPU lacks;"
        "\n  rebuild with: cmake -S . -B build -DQSEARCH_ARCH=x86-64\n",
        stderr);
    return 1;
  }
  CLI::App app{
      "qsearch: find the best mixed-precision fixed-point quantization of a trained network"};
  app.set_version_flag("--version", std::string("qsearch ") + QSEARCH_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  app.add_option("--threads", global.threads,
                 "Worker threads (default: $QSEARCH_THREADS or all hardware threads)");
  app.add_option("--data-dir", global.data_dir,
                 "Data set directory (default: $QSEARCH_DATA, else ~/.cache/qsearch/data)");

  Runner run;
  add_eval_command(app, global, run);
  add_inspect_command(app, global, run);
  add_data_command(app, global, run);
  add_search_command(app, global, run);
  add_train_command(app, global, run);
  add_quantize_command(app, global, run);
  add_sensitivity_command(app, global, run);
  add_objective_command(app, global, run);
  add_export_command(app, global, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    config::check_at_least("--threads", global.threads, 0);
    if (global.threads > 0) set_num_threads(global.threads);
    return run ? run() : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "qsearch: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsearch: internal error: %s\n", e.what());
    return 3;
  }
}

}  // namespace qsearch::cli
