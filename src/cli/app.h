// The `qsearch` command line: subcommands, global flags, and the program's only catch.
//
//   qsearch [--threads N] [--data-dir DIR] <command> [options]
//   commands: eval, inspect, data, train, quantize, search, report, compare, sensitivity
//
// Each command is a function registered in app.cc; it returns the process exit code. Errors
// (qsearch::Error) are printed as "qsearch: error: <message>" with exit code 1; bad usage exits
// with 2.
#pragma once

#include <string>

namespace qsearch::cli {

// Flags every command understands.
struct GlobalOptions {
  int threads = 0;       // 0: $QSEARCH_THREADS or all hardware threads
  std::string data_dir;  // empty: $QSEARCH_DATA, else ~/.cache/qsearch/data
};

int main(int argc, char** argv);

}  // namespace qsearch::cli
