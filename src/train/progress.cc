#include "train/progress.h"

#include <fmt/format.h>

namespace qsearch::train {

std::string ProgressPrinter::epoch_line(const TrainProgress& p, bool best) {
  const EpochRecord& r = *p.record;
  return fmt::format(
      "epoch {}/{}  lr {:.6g}  train loss {:.4f} acc {:.4f}  val loss {:.4f} acc {:.4f} (macro "
      "{:.4f})  {:.2f} s, {:.0f} samples/s{}",
      p.epoch, p.epochs, r.lr, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy,
      r.val_macro_accuracy, r.train_seconds, r.samples_per_s(), best ? "  *best" : "");
}

bool ProgressPrinter::operator()(const TrainProgress& p) {
  if (p.epoch_done) {
    const bool best = !have_best_ || p.record->val_loss < best_loss_;
    if (best) {
      best_loss_ = p.record->val_loss;
      have_best_ = true;
    }
    // "\r\033[K" clears the in-place bar on a terminal.
    std::fprintf(out_, "%s%s\n", tty_ && drawn_ ? "\r\033[K" : "", epoch_line(p, best).c_str());
    std::fflush(out_);
    drawn_ = false;
    return true;
  }
  if (!tty_) return true;
  if (drawn_ && p.step != p.steps && since_draw_.seconds() < 0.1) return true;
  since_draw_.reset();
  constexpr int kWidth = 20;
  const int filled = p.steps > 0 ? static_cast<int>(kWidth * p.step / p.steps) : 0;
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  std::fprintf(out_, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  loss %.4f  acc %.4f  %.0f samples/s",
               static_cast<long long>(p.epoch), static_cast<long long>(p.epochs), bar.c_str(),
               static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.accuracy,
               p.samples_per_s);
  std::fflush(out_);
  drawn_ = true;
  return true;
}

}  // namespace qsearch::train
