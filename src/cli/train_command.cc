// qsearch train --model NAME|M.onnx --dataset D [--epochs 5] [--batch-size 256] [--lr 1e-3]
//               [--optimizer adam|adamw|sgd] [--weight-decay 0] [--momentum 0.9] [--nesterov]
//               [--scheduler cosine|constant] [--eta-min 1e-6] [--seed 0]
//               [--val-split FRACTION|val|test|train] [--out M.onnx] [--opset 13]
//               [--checkpoint-dir DIR] [--resume CKPT] [--json]
// qsearch train --list
//
// Trains a zoo model (or fine-tunes an ONNX model) on a data set and writes the epoch with the
// lowest validation loss as ONNX. Validation data are by default 10% of the training split held
// out (so the test split never selects the model). The recipe is stored in every checkpoint;
// --resume takes it from there (a recipe flag given again must agree with it). --out and --opset
// are checked before the data are loaded and before any epoch runs. An ONNX model with several
// graph inputs reads one npz array per input; symbolic dims besides the batch (a sequence
// length) are bound from the training split (docs/training.md, "Inputs").
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "ir/input_decl.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "train/network.h"
#include "train/progress.h"
#include "train/trainer.h"
#include "train/zoo.h"

namespace qsearch::cli {

namespace {

namespace fs = std::filesystem;

struct TrainArgs {
  // The recipe (stored in checkpoints).
  std::string model;
  std::string dataset = "mnist";
  std::string label_column;
  std::vector<std::string> feature_columns;
  int64_t epochs = 5;
  int64_t batch_size = 256;
  double lr = 1e-3;
  std::string optimizer = "adam";
  double weight_decay = 0;
  double momentum = 0.9;
  bool nesterov = false;
  std::string scheduler = "cosine";
  double eta_min = 1e-6;
  uint64_t seed = 0;
  std::string val_split = "0.1";
  // Where things go.
  std::string out;
  int opset = 13;
  std::string checkpoint_dir;
  std::string resume;
  bool list = false;
  bool json = false;
  CLI::App* cmd = nullptr;
};

nlohmann::json recipe_json(const TrainArgs& a) {
  return {{"model", a.model},
          {"dataset", a.dataset},
          {"label_column", a.label_column},
          {"feature_columns", a.feature_columns},
          {"epochs", a.epochs},
          {"batch_size", a.batch_size},
          {"lr", a.lr},
          {"optimizer", a.optimizer},
          {"weight_decay", a.weight_decay},
          {"momentum", a.momentum},
          {"nesterov", a.nesterov},
          {"scheduler", a.scheduler},
          {"eta_min", a.eta_min},
          {"seed", a.seed},
          {"val_split", a.val_split}};
}

// Takes the recipe of a checkpoint; a recipe flag also given on this command line must agree.
void adopt_recipe(TrainArgs& a, const std::string& description, const std::string& path) {
  nlohmann::json r;
  try {
    r = nlohmann::json::parse(description);
  } catch (const nlohmann::json::exception&) {
    fail("checkpoint '{}' was not written by `qsearch train` (no recipe)", path);
  }
  const nlohmann::json mine = recipe_json(a);
  for (auto it = r.begin(); it != r.end(); ++it) {
    const std::string flag = "--" + [&] {
      std::string k = it.key();
      std::replace(k.begin(), k.end(), '_', '-');
      return k;
    }();
    if (mine.contains(it.key()) && a.cmd->count(flag) > 0 && mine[it.key()] != it.value()) {
      fail(
          "{} {} differs from the checkpoint's {}: a resumed run keeps its recipe (drop the "
          "flag, or start a new run without --resume)",
          flag, mine[it.key()].dump(), it.value().dump());
    }
  }
  a.model = r.value("model", a.model);
  a.dataset = r.value("dataset", a.dataset);
  a.label_column = r.value("label_column", a.label_column);
  a.feature_columns = r.value("feature_columns", a.feature_columns);
  a.epochs = r.value("epochs", a.epochs);
  a.batch_size = r.value("batch_size", a.batch_size);
  a.lr = r.value("lr", a.lr);
  a.optimizer = r.value("optimizer", a.optimizer);
  a.weight_decay = r.value("weight_decay", a.weight_decay);
  a.momentum = r.value("momentum", a.momentum);
  a.nesterov = r.value("nesterov", a.nesterov);
  a.scheduler = r.value("scheduler", a.scheduler);
  a.eta_min = r.value("eta_min", a.eta_min);
  a.seed = r.value("seed", a.seed);
  a.val_split = r.value("val_split", a.val_split);
}

bool is_model_file(const std::string& m) {
  return m.size() > 5 && m.substr(m.size() - 5) == ".onnx";
}

std::string default_out(const TrainArgs& a) {
  std::string model = is_model_file(a.model) ? fs::path(a.model).stem().string() : a.model;
  // A file-backed data set names its kind, not its path (which may hold '/').
  std::string data = a.dataset;
  for (const char* kind : {"csv", "npz", "npy"}) {
    if (a.dataset.rfind(std::string(kind) + ":", 0) == 0) data = kind;
  }
  return model + "_" + data + ".onnx";
}

// --out must name a file that can be written: an existing directory, a missing parent directory
// or one that refuses writes would otherwise fail only after the last epoch. Probes by opening
// the file for writing (created and removed again when it did not exist, an existing file left
// as it is), which also catches read-only file systems, where access() does not for root.
void check_out_writable(const std::string& out) {
  const fs::path p(out);
  std::error_code ec;
  if (fs::is_directory(p, ec) || (!out.empty() && out.back() == '/')) {
    fail("--out '{}' is a directory; give the ONNX file to write, e.g. --out {}", out,
         (p / "model.onnx").lexically_normal().string());
  }
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::exists(parent, ec)) {
    fail("--out '{}': directory '{}' does not exist; create it first (mkdir -p {})", out,
         parent.string(), parent.string());
  }
  if (!fs::is_directory(parent, ec)) {
    fail("--out '{}': '{}' is not a directory; choose another output path", out, parent.string());
  }
  const bool existed = fs::exists(p, ec);
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail("--out '{}' cannot be written: {}; choose a writable location", out, std::strerror(errno));
  }
  ::close(fd);
  if (!existed) fs::remove(p, ec);
}

// The exporter refuses an opset outside what it writes (checked first, before the data are
// loaded), or an op the opset cannot express: exporting the untrained graph once (to memory)
// finds that before any training.
void check_opset_range(int opset) {
  if (opset < onnx::kMinOpset || opset > onnx::kMaxOpset) {
    fail("--opset {} is not supported: qsearch writes ONNX opsets {} to {}", opset, onnx::kMinOpset,
         onnx::kMaxOpset);
  }
}

void check_opset_exports(const ir::Graph& graph, int opset) {
  try {
    (void)onnx::export_model_bytes(graph, opset);
  } catch (const Error& e) {
    fail("--opset {}: {}; choose another --opset", opset, e.what());
  }
}

// Ops without a backward (an embedding's Gather, ...) are refused in one line naming the file,
// the node and its op, before the data are checked against the model (and, for a model without
// symbolic dims, before they are loaded).
void check_trainable(ir::Graph& graph, const std::string& path) {
  try {
    train::Network probe(graph, {.max_batch = 1});
  } catch (const Error& e) {
    fail(
        "qsearch train cannot train '{}': {}; train it in PyTorch and export it to ONNX (eval, "
        "quantize, search and sensitivity run it)",
        path, e.what());
  }
}

int run_list() {
  std::cout << fmt::format("{:<12} {:>10}  {:<12} {:>7}  {}\n", "model", "params", "input",
                           "classes", "architecture");
  for (const train::ModelInfo& m : train::zoo()) {
    const ir::Graph g = train::build_model(m.name);
    std::cout << fmt::format("{:<12} {:>10}  {:<12} {:>7}  {}\n", m.name,
                             train::trainable_param_count(g), shape_str(m.default_input),
                             m.default_classes, m.description);
  }
  std::cout << "\nParameters are counted for the default input and classes; a model adapts its "
               "input and output layers to the data set.\n";
  return 0;
}

int run_train(const GlobalOptions& global, TrainArgs a) {
  if (a.list) return run_list();
  if (!a.resume.empty()) {
    adopt_recipe(a, train::checkpoint_description(a.resume), a.resume);
    if (a.checkpoint_dir.empty()) a.checkpoint_dir = fs::path(a.resume).parent_path().string();
  }
  if (a.model.empty()) fail("--model is required (a zoo model, see --list, or an .onnx file)");
  if (a.scheduler != "cosine" && a.scheduler != "constant") {
    fail("--scheduler must be cosine or constant, got '{}'", a.scheduler);
  }
  const std::string out = a.out.empty() ? default_out(a) : a.out;
  check_opset_range(a.opset);
  check_out_writable(out);

  // An ONNX model is read before the data (its errors come first), unless it has symbolic input
  // dims besides the batch (a sequence length): those are bound from the training data, as eval
  // and search bind them (eval::bind_input_dims). A model with several graph inputs reads one
  // npz array per input, named after it (DataOptions::input_names).
  std::optional<ir::Graph> file_graph;
  std::vector<ir::InputDecl> decls;
  std::vector<std::string> input_names;
  if (is_model_file(a.model)) {
    if (auto d = onnx::read_graph_inputs(a.model)) decls = std::move(*d);
    if (!ir::any_symbolic_dims(decls)) {
      file_graph = onnx::import_model(a.model);
      check_trainable(*file_graph, a.model);
      input_names = eval::data_input_names(*file_graph);
    } else if (decls.size() > 1) {
      for (const ir::InputDecl& in : decls) input_names.push_back(in.name);
    }
  }
  const data::DataOptions dopts{.data_dir = global.data_dir,
                                .label_column = a.label_column,
                                .feature_columns = a.feature_columns,
                                .input_names = input_names};
  data::Dataset train = data::load_dataset(a.dataset, data::Split::kTrain, dopts);
  if (is_model_file(a.model)) {
    if (!file_graph) {
      onnx::ImportOptions options;
      options.dims = eval::bind_input_dims(decls, train);
      std::string bound;
      for (const auto& [name, size] : options.dims) {
        bound += fmt::format("{}{} = {}", bound.empty() ? "" : ", ", name, size);
      }
      std::fprintf(stderr,
                   "qsearch: note: %s has symbolic input dims; bound from data set '%s': %s (the "
                   "model trains at these sizes, and --out has them as fixed dims)\n",
                   a.model.c_str(), train.name.c_str(), bound.c_str());
      file_graph = onnx::import_model(a.model, options);
      check_trainable(*file_graph, a.model);
    }
  }
  DType input_dtype = DType::kFloat32;
  for (const Tensor& x : train.inputs()) {
    if (x.dtype() != DType::kFloat32) input_dtype = x.dtype();
  }
  if (train.regression || input_dtype != DType::kFloat32) {
    fail(
        "qsearch train fits classifiers on float inputs, but data set '{}' has {} inputs and {} "
        "labels; train the model elsewhere (PyTorch) and export it to ONNX",
        a.dataset, dtype_name(input_dtype), train.regression ? "float (regression)" : "class");
  }
  data::Dataset val;
  std::string val_desc;
  if (a.val_split == "train" || a.val_split == "val" || a.val_split == "validation" ||
      a.val_split == "test") {
    val = data::load_dataset(a.dataset, data::parse_split(a.val_split), dopts);
    val_desc = fmt::format("the {} split", a.val_split);
    // Named splits are never held out of both training and test: MASE's val split is the test
    // split of mnist and fashion-mnist and the training split of jsc and csv: data sets.
    std::fprintf(stderr,
                 "note: --val-split %s selects the kept epoch on data used for training or test, "
                 "so its accuracy there is optimistic (val is the test split of mnist and "
                 "fashion-mnist, the training split of jsc and csv:); the default, 0.1, holds out "
                 "10%% of the training split\n",
                 a.val_split.c_str());
  } else {
    double fraction = 0;
    try {
      size_t used = 0;
      fraction = std::stod(a.val_split, &used);
      if (used != a.val_split.size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      fail("--val-split must be train, val, test or a fraction in (0, 1), got '{}'", a.val_split);
    }
    auto parts = train::holdout_split(train, fraction, a.seed);
    train = std::move(parts.first);
    val = std::move(parts.second);
    val_desc = fmt::format("{} of the training split held out", a.val_split);
  }

  Shape sample = train.x.shape();
  sample.erase(sample.begin());
  ir::Graph graph =
      file_graph
          ? std::move(*file_graph)
          : train::build_model(
                a.model, {.input_shape = sample, .num_classes = train.num_classes, .seed = a.seed});
  check_opset_exports(graph, a.opset);

  train::TrainOptions o;
  o.epochs = a.epochs;
  o.batch_size = a.batch_size;
  o.lr = a.lr;
  o.optimizer.kind = train::parse_optimizer(a.optimizer);
  o.optimizer.weight_decay = a.weight_decay;
  o.optimizer.momentum = a.momentum;
  o.optimizer.nesterov = a.nesterov;
  o.cosine = a.scheduler == "cosine";
  o.eta_min = a.eta_min;
  o.seed = a.seed;
  o.checkpoint_dir = a.checkpoint_dir;
  o.description = recipe_json(a).dump();
  train::Trainer trainer(graph, train, val, o);
  if (!a.resume.empty()) trainer.resume(a.resume);

  const bool tty = isatty(fileno(stderr)) != 0;
  std::fprintf(stderr,
               "training %s (%lld parameters) on %s: %lld samples, validation on %s (%lld); "
               "%lld epochs, batch %lld, %s lr %g, %s schedule, seed %llu, %d threads%s\n",
               a.model.c_str(), static_cast<long long>(train::trainable_param_count(graph)),
               train.name.c_str(), static_cast<long long>(train.size()), val_desc.c_str(),
               static_cast<long long>(val.size()), static_cast<long long>(a.epochs),
               static_cast<long long>(a.batch_size), a.optimizer.c_str(), a.lr, a.scheduler.c_str(),
               static_cast<unsigned long long>(a.seed), num_threads(),
               a.resume.empty()
                   ? ""
                   : fmt::format(", resumed after epoch {}", trainer.epochs_done()).c_str());
  train::ProgressPrinter show(stderr, tty);
  const train::TrainResult r = trainer.run([&](const train::TrainProgress& p) { return show(p); });
  onnx::export_model(graph, out, a.opset);

  std::vector<double> seconds;
  for (const auto& e : r.history) seconds.push_back(e.train_seconds);
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds.empty() ? 0 : seconds[seconds.size() / 2];
  const train::EpochRecord& best = r.history.at(r.best_epoch - 1);
  if (a.json) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& e : r.history) {
      epochs.push_back({{"epoch", e.epoch},
                        {"lr", e.lr},
                        {"train_loss", e.train_loss},
                        {"train_accuracy", e.train_accuracy},
                        {"val_loss", e.val_loss},
                        {"val_accuracy", e.val_accuracy},
                        {"val_macro_accuracy", e.val_macro_accuracy},
                        {"train_seconds", e.train_seconds},
                        {"samples_per_s", e.samples_per_s()}});
    }
    nlohmann::json j = {{"framework", "qsearch"},
                        {"recipe", recipe_json(a)},
                        {"threads", num_threads()},
                        {"epochs", epochs},
                        {"best_epoch", r.best_epoch},
                        {"val_loss", best.val_loss},
                        {"val_accuracy", best.val_accuracy},
                        {"median_train_seconds_per_epoch", median},
                        {"out", out}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << fmt::format("best epoch      {}/{}\n", r.best_epoch, a.epochs)
              << fmt::format("val loss        {:.6f}\n", best.val_loss)
              << fmt::format("val accuracy    {:.6f} (macro {:.6f})\n", best.val_accuracy,
                             best.val_macro_accuracy)
              << fmt::format("time per epoch  {:.2f} s (median of {}, training only)\n", median,
                             seconds.size())
              << fmt::format("wrote           {}\n", out);
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a zoo model (or fine-tune an ONNX model) and write the best epoch as ONNX");
  a->cmd = cmd;
  cmd->add_flag("--list", a->list, "List the model zoo with parameter counts");
  cmd->add_option("--model", a->model, "Zoo model (see --list) or an .onnx file to fine-tune");
  cmd->add_option("--dataset", a->dataset,
                  "mnist | fashion-mnist | jsc | csv:PATH | npz:PATH (a model with several "
                  "inputs: one array per input, named after it) (default: mnist)");
  cmd->add_option("--label-column", a->label_column, "Label column of a csv:PATH data set");
  cmd->add_option("--feature-columns", a->feature_columns,
                  "Feature columns of a csv:PATH data set, in the model's input order: A,B,C "
                  "(default: every column but the label)")
      ->delimiter(',');
  cmd->add_option("--epochs", a->epochs, "Epochs (default: 5)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", a->batch_size, "Batch size (default: 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--lr", a->lr, "Learning rate (default: 1e-3)")->check(CLI::PositiveNumber);
  cmd->add_option("--optimizer", a->optimizer, "adam | adamw | sgd (default: adam)");
  cmd->add_option("--weight-decay", a->weight_decay,
                  "L2 penalty (adam, sgd) or decoupled decay (adamw) (default: 0)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--momentum", a->momentum, "SGD momentum (default: 0.9)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--nesterov", a->nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--scheduler", a->scheduler,
                  "cosine (CosineAnnealingLR, T_max = epochs) | constant (default: cosine)");
  cmd->add_option("--eta-min", a->eta_min, "Cosine schedule's final lr (default: 1e-6)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->seed, "Seed of initialisation, shuffling, dropout (default: 0)");
  cmd->add_option("--val-split", a->val_split,
                  "Validation data (model selection): a fraction of the training split to hold "
                  "out, or val | test | train (default: 0.1; MASE's val is the test split for "
                  "MNIST)");
  cmd->add_option("--out", a->out, "Output ONNX file (default: <model>_<dataset>.onnx)");
  cmd->add_option("--opset", a->opset, "ONNX opset of the output, 11..17 (default: 13)");
  cmd->add_option("--checkpoint-dir", a->checkpoint_dir,
                  "Write DIR/last.ckpt after every epoch (default: none; with --resume, the "
                  "checkpoint's directory)");
  cmd->add_option("--resume", a->resume, "Continue the run of this checkpoint");
  cmd->add_flag("--json", a->json, "Print the result as one JSON object");
  cmd->callback([&global, &run, a] { run = [&global, a] { return run_train(global, *a); }; });
}

}  // namespace qsearch::cli
