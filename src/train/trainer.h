// Trainer: the training loop of `qsearch train` (PyTorch Lightning's, as MASE runs it).
//
//   ir::Graph g = build_model("lenet5", {.input_shape = {1, 28, 28}, .num_classes = 10});
//   Trainer t(g, train_split, val_split, {.epochs = 5, .batch_size = 256, .lr = 1e-3});
//   TrainResult r = t.run(print_progress);   // g now holds the best epoch's weights
//
// Per epoch e (0-based): the training split is shuffled by data::Batches with
// Rng(seed).fork(e), cut into batches of batch_size (the last one partial, as DataLoader's
// drop_last=False); each batch runs forward in training mode, softmax cross-entropy (mean),
// backward, and one optimizer step with the epoch's learning rate; Dropout masks come from
// (seed, e, step). Then the model is evaluated on the validation split (inference mode: running
// BatchNorm statistics, no Dropout), the scheduler steps (once per epoch), and a checkpoint is
// written. The epoch with the lowest validation loss is kept: run() leaves its weights (and
// BatchNorm statistics) in the graph.
//
// A final batch of one sample is skipped when the model has BatchNorm (PyTorch raises "Expected
// more than 1 value per channel" there; MASE would crash).
//
// Determinism: the result is a function of (graph, data, options) only. Every kernel reduces in
// a fixed order independent of the thread count, so the same seed gives bit-identical weights
// for any number of threads, and resume() from the checkpoint of epoch k then run() gives
// bit-identical weights to an uninterrupted run (the checkpoint holds weights, BatchNorm
// statistics, optimizer moments and step count, the schedule, the best epoch so far and the
// history; shuffling and Dropout depend only on (seed, epoch, step)).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"
#include "train/optimizer.h"

namespace qsearch::train {

struct TrainOptions {
  int64_t epochs = 5;
  int64_t batch_size = 256;
  double lr = 1e-3;
  OptimizerOptions optimizer;
  bool cosine = true;     // CosineAnnealingLR(T_max = epochs, eta_min); false: constant lr
  double eta_min = 1e-6;  // MASE's default for adam/adamw
  uint64_t seed = 0;
  int64_t val_batch_size = 1024;
  // Written after every epoch as <checkpoint_dir>/last.ckpt when non-empty.
  std::string checkpoint_dir;
  // Free text stored in checkpoints so that a resume can rebuild the same model and data
  // (the CLI stores its command line there).
  std::string description;
};

struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  double lr = 0;
  double train_loss = 0, train_accuracy = 0;  // over the epoch's training batches
  double val_loss = 0, val_accuracy = 0, val_macro_accuracy = 0;
  double train_seconds = 0;  // the training loop only (not validation)
  int64_t train_samples = 0;
  double samples_per_s() const { return train_seconds > 0 ? train_samples / train_seconds : 0; }
};

struct TrainResult {
  std::vector<EpochRecord> history;  // every epoch so far (including resumed ones)
  int64_t best_epoch = 0;            // 1-based; its weights are in the graph
  bool stopped = false;              // the callback asked to stop before the last epoch
};

// What the progress callback sees: after every training step (epoch_done = false) and after
// every epoch's validation (epoch_done = true, record set).
struct TrainProgress {
  int64_t epoch = 0, epochs = 0;  // 1-based current epoch, total
  int64_t step = 0, steps = 0;    // steps done in this epoch, steps per epoch
  double loss = 0, accuracy = 0;  // running means over this epoch so far
  double samples_per_s = 0;
  bool epoch_done = false;
  const EpochRecord* record = nullptr;
};
// Return false to stop training after the current epoch (its checkpoint is written first).
using ProgressFn = std::function<bool(const TrainProgress&)>;

struct ValidationResult {
  double loss = 0, accuracy = 0, macro_accuracy = 0;
};

class Network;

class Trainer {
 public:
  // The graph is trained in place and must outlive the Trainer; the data sets too. Throws
  // Error when the data does not fit the model (sample size, labels >= classes) or the graph
  // cannot be trained (Network).
  Trainer(ir::Graph& graph, const data::Dataset& train, const data::Dataset& val,
          const TrainOptions& options);
  ~Trainer();

  // Restores the state of a checkpoint written by a Trainer with the same options, graph and
  // data sizes (Error naming the difference otherwise). run() then continues after its epoch.
  void resume(const std::string& path);

  // Trains the remaining epochs; leaves the best epoch's weights in the graph.
  TrainResult run(const ProgressFn& progress = {});

  // Loss / accuracy of the graph's current weights on `data` in inference mode.
  ValidationResult validate(const data::Dataset& data);

  // Epochs completed so far.
  int64_t epochs_done() const;

 private:
  struct State;
  void save_checkpoint(const std::string& path) const;
  ir::Graph& graph_;
  const data::Dataset& train_;
  const data::Dataset& val_;
  TrainOptions options_;
  std::unique_ptr<Network> net_;
  std::unique_ptr<State> state_;
};

// Holds out `fraction` (in (0, 1)) of `data` as a validation set: the rows at the last
// round(fraction * N) positions of a permutation drawn from Rng(seed).fork(0x401d) go to the
// second set, the rest (in their original order) to the first. Both keep the data set's name,
// classes and source. Throws Error when either part would be empty.
std::pair<data::Dataset, data::Dataset> holdout_split(const data::Dataset& data, double fraction,
                                                      uint64_t seed);

// The description stored in a checkpoint (TrainOptions::description), read without loading the
// rest, so that a resume can rebuild the model and data first.
std::string checkpoint_description(const std::string& path);

}  // namespace qsearch::train
