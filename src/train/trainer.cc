#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>

#include "core/check.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/stopwatch.h"
#include "data/batches.h"
#include "train/binary_io.h"
#include "train/grad_kernels.h"
#include "train/network.h"
#include "train/params.h"

namespace qsearch::train {

namespace {

constexpr uint64_t kCheckpointMagic = 0x31304b5043545351ULL;  // "QSTCPK01"

// Everything that must be equal for a checkpoint to continue this run.
std::string fingerprint(const TrainOptions& o, const data::Dataset& train,
                        const data::Dataset& val) {
  const OptimizerOptions& p = o.optimizer;
  return fmt::format(
      "epochs={} batch_size={} lr={} optimizer={} weight_decay={} betas=({}, {}) eps={} "
      "momentum={} dampening={} nesterov={} schedule={} eta_min={} seed={} train_samples={} "
      "val_samples={}",
      o.epochs, o.batch_size, o.lr, optimizer_name(p.kind), p.weight_decay, p.beta1, p.beta2, p.eps,
      p.momentum, p.dampening, p.nesterov, o.cosine ? "cosine" : "constant", o.eta_min, o.seed,
      train.size(), val.size());
}

bool has_batchnorm(const ir::Graph& g) {
  return std::any_of(g.nodes().begin(), g.nodes().end(),
                     [](const ir::Node& n) { return n.kind == ir::OpKind::kBatchNorm; });
}

void check_fits(const Network& net, const data::Dataset& d, const char* role) {
  if (d.size() == 0) fail("the {} split of '{}' is empty", role, d.name);
  const std::vector<Tensor> xs = d.inputs();
  if (xs.size() != net.sample_sizes().size()) {
    fail("the model has {} inputs but the {} split of '{}' has {} input arrays",
         net.sample_sizes().size(), role, d.name, xs.size());
  }
  for (size_t i = 0; i < xs.size(); ++i) {
    // Named after the graph input for a data set with several (npz: one array per input).
    const std::string what =
        i < d.input_names.size() ? fmt::format("array '{}'", d.input_names[i]) : "samples";
    if (xs[i].dim(0) != d.size()) {
      fail("the {} split of '{}' has {} labels but {} rows in its {}", role, d.name, d.size(),
           xs[i].dim(0), what);
    }
    const int64_t per_sample = xs[i].numel() / d.size();
    if (per_sample != net.sample_sizes()[i]) {
      fail("the model takes {} values per sample but the {} split of '{}' has {} of shape {}",
           net.sample_sizes()[i], role, d.name, what, shape_str(xs[i].shape()));
    }
    if (xs[i].dtype() != DType::kFloat32) {
      fail("the {} split of '{}' must hold float32 samples, its {} is {}", role, d.name, what,
           dtype_name(xs[i].dtype()));
    }
  }
  if (d.y.dtype() != DType::kInt64) {
    fail("the {} split of '{}' must hold int64 labels", role, d.name);
  }
  const int64_t* y = d.y.data<int64_t>();
  for (int64_t i = 0; i < d.size(); ++i) {
    if (y[i] < 0 || y[i] >= net.classes()) {
      fail("label {} of sample {} in the {} split of '{}' is outside the model's {} classes", y[i],
           i, role, d.name, net.classes());
    }
  }
}

}  // namespace

struct Trainer::State {
  State(const OptimizerOptions& o, std::vector<int64_t> sizes) : optimizer(o, std::move(sizes)) {}
  Optimizer optimizer;
  int64_t epoch = 0;  // epochs completed
  std::vector<EpochRecord> history;
  int64_t best_epoch = 0;
  double best_loss = std::numeric_limits<double>::infinity();
  // Model state: trainable parameters, then BatchNorm running statistics.
  std::vector<ir::ValueId> values;
  std::vector<std::vector<float>> best;
  std::vector<ParamSlot> slots;
  std::vector<float> dlogits;
  bool skip_single = false;
};

Trainer::Trainer(ir::Graph& graph, const data::Dataset& train, const data::Dataset& val,
                 const TrainOptions& options)
    : graph_(graph), train_(train), val_(val), options_(options) {
  if (options_.epochs < 1) fail("--epochs must be >= 1, got {}", options_.epochs);
  if (options_.batch_size < 1) fail("--batch-size must be >= 1, got {}", options_.batch_size);
  if (!(options_.lr > 0)) fail("--lr must be > 0, got {}", options_.lr);
  if (options_.optimizer.weight_decay < 0) fail("--weight-decay must be >= 0");
  net_ = std::make_unique<Network>(graph_, NetworkOptions{.max_batch = options_.batch_size});
  check_fits(*net_, train_, "training");
  check_fits(*net_, val_, "validation");
  std::vector<int64_t> sizes;
  for (const Network::Param& p : net_->params()) sizes.push_back(p.size);
  state_ = std::make_unique<State>(options_.optimizer, sizes);
  for (const Network::Param& p : net_->params()) {
    state_->values.push_back(p.value);
    state_->slots.push_back({p.data, p.grad});
  }
  for (ir::ValueId v : batchnorm_state_values(graph_)) state_->values.push_back(v);
  state_->dlogits.resize(options_.batch_size * net_->classes());
  state_->skip_single = has_batchnorm(graph_);
}

Trainer::~Trainer() = default;

int64_t Trainer::epochs_done() const { return state_->epoch; }

ValidationResult Trainer::validate(const data::Dataset& d) {
  const int64_t n = d.size(), classes = net_->classes();
  const int64_t batch = net_->max_batch();
  const int64_t* labels = d.y.data<int64_t>();
  double loss = 0;
  int64_t correct = 0;
  std::vector<int64_t> tp(classes), fp(classes), fn(classes);
  const std::vector<Tensor> inputs = d.inputs();
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t rows = std::min(batch, n - b);
    std::vector<const float*> xs;
    for (size_t i = 0; i < inputs.size(); ++i) {
      xs.push_back(inputs[i].data<float>() + b * net_->sample_sizes()[i]);
    }
    const Tensor& z = net_->forward(xs, rows, {.training = false});
    const LossSums s =
        softmax_cross_entropy(z.data<float>(), labels + b, rows, classes, rows, nullptr);
    loss += s.loss_sum;
    correct += s.correct;
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = z.data<float>() + i * classes;
      const int64_t pred = std::max_element(row, row + classes) - row;
      const int64_t y = labels[b + i];
      if (pred == y) {
        ++tp[y];
      } else {
        ++fn[y];
        ++fp[pred];
      }
    }
  }
  ValidationResult r;
  r.loss = loss / n;
  r.accuracy = static_cast<double>(correct) / n;
  double recall = 0;
  int counted = 0;
  for (int64_t c = 0; c < classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    ++counted;
    if (tp[c] + fn[c] > 0) recall += static_cast<double>(tp[c]) / (tp[c] + fn[c]);
  }
  r.macro_accuracy = counted ? recall / counted : 0;
  return r;
}

TrainResult Trainer::run(const ProgressFn& progress) {
  State& st = *state_;
  const int64_t classes = net_->classes();
  // The schedule is replayed from epoch 0: the same arithmetic, so a resumed run sees the same
  // learning rates bit for bit.
  CosineAnnealingLR cosine(options_.lr, options_.epochs, options_.eta_min);
  for (int64_t e = 0; e < st.epoch; ++e) cosine.step();
  const Rng dropout_root = Rng(options_.seed).fork(0xd50f);
  TrainResult result;
  while (st.epoch < options_.epochs) {
    const int64_t epoch = st.epoch;
    const double lr = options_.cosine ? cosine.lr() : options_.lr;
    const data::BatchOptions bopts{.batch_size = options_.batch_size,
                                   .shuffle = true,
                                   .seed = options_.seed,
                                   .epoch = static_cast<uint64_t>(epoch)};
    data::Batches batches(train_.x, train_.y, bopts);
    // A model's further inputs: the same options give the same order, so the same rows.
    std::vector<data::Batches> more;
    for (const Tensor& x : train_.more_x) more.emplace_back(x, train_.y, bopts);
    const Rng epoch_rng = dropout_root.fork(static_cast<uint64_t>(epoch));
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    Stopwatch watch;
    for (int64_t step = 0; step < batches.size(); ++step) {
      const data::Batch b = batches[step];
      const int64_t rows = b.size();
      if (rows == 1 && st.skip_single) continue;
      std::vector<data::Batch> more_b;
      std::vector<const float*> xs{b.x.data<float>()};
      for (const data::Batches& m : more) {
        xs.push_back(more_b.emplace_back(m[step]).x.data<float>());
      }
      const Tensor& z = net_->forward(
          xs, rows, {.training = true, .dropout_seed = epoch_rng.fork(step).next_u64()});
      const LossSums s = softmax_cross_entropy(z.data<float>(), b.y.data<int64_t>(), rows, classes,
                                               rows, st.dlogits.data());
      net_->backward(st.dlogits.data());
      st.optimizer.step(lr, st.slots);
      loss_sum += s.loss_sum;
      correct += s.correct;
      seen += rows;
      if (progress) {
        TrainProgress p;
        p.epoch = epoch + 1;
        p.epochs = options_.epochs;
        p.step = step + 1;
        p.steps = batches.size();
        p.loss = loss_sum / seen;
        p.accuracy = static_cast<double>(correct) / seen;
        p.samples_per_s = seen / std::max(watch.seconds(), 1e-9);
        progress(p);
      }
    }
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.lr = lr;
    rec.train_seconds = watch.seconds();
    rec.train_samples = seen;
    rec.train_loss = seen ? loss_sum / seen : 0;
    rec.train_accuracy = seen ? static_cast<double>(correct) / seen : 0;
    const ValidationResult v = validate(val_);
    rec.val_loss = v.loss;
    rec.val_accuracy = v.accuracy;
    rec.val_macro_accuracy = v.macro_accuracy;
    st.history.push_back(rec);
    if (v.loss < st.best_loss) {
      st.best_loss = v.loss;
      st.best_epoch = rec.epoch;
      st.best.clear();
      for (ir::ValueId id : st.values) {
        const Tensor& t = graph_.value(id).data;
        st.best.emplace_back(t.data<float>(), t.data<float>() + t.numel());
      }
    }
    ++st.epoch;
    cosine.step();
    if (!options_.checkpoint_dir.empty()) {
      std::filesystem::create_directories(options_.checkpoint_dir);
      save_checkpoint((std::filesystem::path(options_.checkpoint_dir) / "last.ckpt").string());
    }
    bool go_on = true;
    if (progress) {
      TrainProgress p;
      p.epoch = rec.epoch;
      p.epochs = options_.epochs;
      p.step = p.steps = batches.size();
      p.loss = rec.train_loss;
      p.accuracy = rec.train_accuracy;
      p.samples_per_s = rec.samples_per_s();
      p.epoch_done = true;
      p.record = &st.history.back();
      go_on = progress(p);
    }
    if (!go_on && st.epoch < options_.epochs) {
      result.stopped = true;
      break;
    }
  }
  // Leave the best epoch's model in the graph.
  if (!st.best.empty()) {
    for (size_t k = 0; k < st.values.size(); ++k) {
      Tensor& t = graph_.value(st.values[k]).data;
      std::memcpy(t.data<float>(), st.best[k].data(), st.best[k].size() * sizeof(float));
    }
  }
  result.history = st.history;
  result.best_epoch = st.best_epoch;
  return result;
}

void Trainer::save_checkpoint(const std::string& path) const {
  const State& st = *state_;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write checkpoint '{}'", tmp);
    bin::write_u64(out, kCheckpointMagic);
    bin::write_string(out, options_.description);
    bin::write_string(out, fingerprint(options_, train_, val_));
    bin::write_i64(out, st.epoch);
    bin::write_u64(out, st.history.size());
    for (const EpochRecord& r : st.history) {
      bin::write_i64(out, r.epoch);
      bin::write_i64(out, r.train_samples);
      for (double v : {r.lr, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy,
                       r.val_macro_accuracy, r.train_seconds}) {
        bin::write_f64(out, v);
      }
    }
    bin::write_i64(out, st.best_epoch);
    bin::write_f64(out, st.best_loss);
    bin::write_u64(out, st.values.size());
    for (size_t k = 0; k < st.values.size(); ++k) {
      const ir::Value& v = graph_.value(st.values[k]);
      bin::write_string(out, v.name);
      bin::write_floats(out, v.data.data<float>(), v.data.numel());
      const std::vector<float>& b = st.best.empty() ? std::vector<float>{} : st.best[k];
      bin::write_floats(out, b.data(), static_cast<int64_t>(b.size()));
    }
    st.optimizer.save(out);
    out.flush();
    if (!out) fail("failed writing checkpoint '{}' (disk full?)", tmp);
  }
  std::filesystem::rename(tmp, path);
}

std::pair<data::Dataset, data::Dataset> holdout_split(const data::Dataset& d, double fraction,
                                                      uint64_t seed) {
  if (!(fraction > 0 && fraction < 1)) {
    fail("a validation fraction must be in (0, 1), got {}", fraction);
  }
  const int64_t n = d.size();
  const int64_t n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  if (n_val < 1 || n_val >= n) {
    fail("holding out {} of the {} samples of '{}' leaves an empty part", fraction, n, d.name);
  }
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  Rng rng = Rng(seed).fork(0x401d);
  rng.shuffle(std::span<int64_t>(order));
  std::vector<bool> is_val(n, false);
  for (int64_t k = n - n_val; k < n; ++k) is_val[order[k]] = true;
  // Rows of every input array (a model with several inputs has one each) go the same way.
  auto take_rows = [&](const Tensor& x, bool val, int64_t count) {
    const size_t row_bytes = x.nbytes() / static_cast<size_t>(n);
    Shape xs = x.shape();
    xs[0] = count;
    Tensor out(xs, x.dtype());
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out.raw());
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (is_val[i] != val) continue;
      std::memcpy(dst + static_cast<size_t>(k++) * row_bytes,
                  src + static_cast<size_t>(i) * row_bytes, row_bytes);
    }
    return out;
  };
  auto take = [&](bool val, int64_t count) {
    data::Dataset out;
    out.name = d.name;
    out.split = val ? data::Split::kVal : data::Split::kTrain;
    out.num_classes = d.num_classes;
    out.class_names = d.class_names;
    out.source = d.source;
    out.input_names = d.input_names;
    out.x = take_rows(d.x, val, count);
    for (const Tensor& x : d.more_x) out.more_x.push_back(take_rows(x, val, count));
    out.y = take_rows(d.y, val, count);
    return out;
  };
  return {take(false, n - n_val), take(true, n_val)};
}

namespace {
std::ifstream open_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open checkpoint '{}'", path);
  uint64_t magic = 0;
  in.read(reinterpret_cast<char*>(&magic), 8);
  if (in.gcount() != 8 || magic != kCheckpointMagic) {
    fail("'{}' is not a qsearch training checkpoint", path);
  }
  return in;
}
}  // namespace

std::string checkpoint_description(const std::string& path) {
  std::ifstream in = open_checkpoint(path);
  try {
    return bin::read_string(in);
  } catch (Error& e) {
    e.add_context(fmt::format("while reading checkpoint '{}'", path));
    throw;
  }
}

void Trainer::resume(const std::string& path) {
  std::ifstream in = open_checkpoint(path);
  State& st = *state_;
  try {
    (void)bin::read_string(in);  // description: the caller's business
    const std::string fp = bin::read_string(in);
    const std::string mine = fingerprint(options_, train_, val_);
    if (fp != mine) {
      fail(
          "the checkpoint belongs to another run:\n  checkpoint: {}\n  this run:   {}\n"
          "resume with the same options and data",
          fp, mine);
    }
    const int64_t epoch = bin::read_i64(in);
    if (epoch < 0 || epoch > options_.epochs) fail("checkpoint is corrupt (epoch {})", epoch);
    std::vector<EpochRecord> history(bin::read_u64(in));
    if (static_cast<int64_t>(history.size()) != epoch) fail("checkpoint is corrupt (history)");
    for (EpochRecord& r : history) {
      r.epoch = bin::read_i64(in);
      r.train_samples = bin::read_i64(in);
      for (double* v : {&r.lr, &r.train_loss, &r.train_accuracy, &r.val_loss, &r.val_accuracy,
                        &r.val_macro_accuracy, &r.train_seconds}) {
        *v = bin::read_f64(in);
      }
    }
    const int64_t best_epoch = bin::read_i64(in);
    const double best_loss = bin::read_f64(in);
    if (bin::read_u64(in) != st.values.size()) {
      fail("the checkpoint has another number of parameters than the model");
    }
    std::vector<std::vector<float>> current(st.values.size()), best(st.values.size());
    for (size_t k = 0; k < st.values.size(); ++k) {
      const ir::Value& v = graph_.value(st.values[k]);
      const std::string name = bin::read_string(in);
      if (name != v.name)
        fail("checkpoint has parameter '{}' where the model has '{}'", name, v.name);
      current[k].resize(v.data.numel());
      bin::read_floats(in, current[k].data(), v.data.numel(), name);
      const int64_t nb = best_epoch > 0 ? v.data.numel() : 0;
      best[k].resize(nb);
      bin::read_floats(in, best[k].data(), nb, name + " (best)");
    }
    st.optimizer.load(in);
    // Everything read: commit.
    for (size_t k = 0; k < st.values.size(); ++k) {
      Tensor& t = graph_.value(st.values[k]).data;
      std::memcpy(t.data<float>(), current[k].data(), current[k].size() * sizeof(float));
    }
    st.epoch = epoch;
    st.history = std::move(history);
    st.best_epoch = best_epoch;
    st.best_loss = best_loss;
    st.best = best_epoch > 0 ? std::move(best) : std::vector<std::vector<float>>{};
  } catch (Error& e) {
    e.add_context(fmt::format("while resuming from checkpoint '{}'", path));
    throw;
  }
}

}  // namespace qsearch::train
