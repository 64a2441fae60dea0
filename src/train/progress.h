// ProgressPrinter: the training progress display of `qsearch train` on stderr.
//
// On a terminal: one line per epoch, redrawn in place at most every 100 ms while the epoch runs
//   epoch 2/5 [########............] 120/235  loss 0.2345  acc 0.9312  15234 samples/s
// then replaced by the epoch's summary. Otherwise (a log file, a pipe): only the summaries
//   epoch 2/5  lr 0.000905  train loss 0.2345 acc 0.9312  val loss 0.1234 acc 0.9612
//   (macro 0.9608)  4.12 s, 14563 samples/s  *best
//
//   ProgressPrinter show(stderr, isatty(fileno(stderr)));
//   trainer.run([&](const TrainProgress& p) { return show(p); });
#pragma once

#include <cstdio>
#include <string>

#include "core/stopwatch.h"
#include "train/trainer.h"

namespace qsearch::train {

class ProgressPrinter {
 public:
  ProgressPrinter(std::FILE* out, bool tty) : out_(out), tty_(tty) {}

  // Prints what `p` warrants; always returns true (never asks to stop).
  bool operator()(const TrainProgress& p);

  // The summary line of an epoch (no newline); `best` marks the best epoch so far.
  static std::string epoch_line(const TrainProgress& p, bool best);

 private:
  std::FILE* out_;
  bool tty_;
  Stopwatch since_draw_;
  bool drawn_ = false;
  double best_loss_ = 0;
  bool have_best_ = false;
};

}  // namespace qsearch::train
