// The training loop: end to end on the committed JSC fixture, determinism across runs and
// thread counts, resume from a checkpoint, best-epoch selection, and its errors.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "data/dataset.h"
#include "support/source_dir.h"
#include "train/params.h"
#include "train/progress.h"
#include "train/zoo.h"

namespace qsearch::train {
namespace {

namespace fs = std::filesystem;

data::Dataset jsc(data::Split split, const std::string& fixture = "jsc_csv") {
  // tests/fixtures/data/jsc_csv: the OpenML CSV format; jsc_h5: MASE's HDF5 file (a few hundred
  // rows each, made by tools/make_data_fixtures.py), preprocessed exactly like the real files.
  return data::load_dataset(
      "jsc", split,
      {.data_dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/data/" + fixture});
}

// A small learnable image set: class = the quadrant holding the brightest pixel.
data::Dataset quadrant_images(int64_t n, uint64_t seed) {
  data::Dataset d;
  d.name = "quadrants";
  d.num_classes = 4;
  d.x = Tensor({n, 1, 12, 12}, DType::kFloat32);
  d.y = Tensor({n}, DType::kInt64);
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    float* img = d.x.data<float>() + i * 144;
    for (int k = 0; k < 144; ++k) img[k] = static_cast<float>(rng.uniform(0, 0.5));
    const int64_t q = static_cast<int64_t>(rng.uniform_int(4));
    const int64_t r = (q / 2) * 6 + static_cast<int64_t>(rng.uniform_int(6));
    const int64_t c = (q % 2) * 6 + static_cast<int64_t>(rng.uniform_int(6));
    img[r * 12 + c] = 1.0f;
    d.y.data<int64_t>()[i] = q;
  }
  return d;
}

// Every trainable parameter and BatchNorm statistic, concatenated.
std::vector<float> model_state(const ir::Graph& g) {
  std::vector<float> out;
  std::vector<ir::ValueId> ids = trainable_values(g);
  for (ir::ValueId v : batchnorm_state_values(g)) ids.push_back(v);
  for (ir::ValueId v : ids) {
    const Tensor& t = g.value(v).data;
    out.insert(out.end(), t.data<float>(), t.data<float>() + t.numel());
  }
  return out;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("qsearch_train_test_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(Trainer, JscModelsTrainEndToEndOnTheJscFixture) {
  const data::Dataset train = jsc(data::Split::kTrain), val = jsc(data::Split::kVal);
  ASSERT_GT(train.size(), 100);
  for (const char* name : {"jsc-hls4ml", "jsc-tiny", "jsc-trt"}) {
    SCOPED_TRACE(name);
    ir::Graph g = build_model(name, {.input_shape = {16}, .num_classes = 5, .seed = 1});
    TrainOptions o;
    o.epochs = 30;
    o.batch_size = 32;
    o.lr = 1e-2;
    Trainer t(g, train, val, o);
    const ValidationResult before = t.validate(val);
    const TrainResult r = t.run();
    ASSERT_EQ(r.history.size(), 30u);
    const ValidationResult after = t.validate(val);
    // The graph holds the best epoch: its validation loss is the history's minimum.
    EXPECT_EQ(after.loss, r.history[r.best_epoch - 1].val_loss);
    for (const EpochRecord& e : r.history) EXPECT_GE(e.val_loss, after.loss);
    EXPECT_LT(after.loss, 0.9 * before.loss);
    EXPECT_GT(after.accuracy, before.accuracy);
    EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  }
}

TEST(Trainer, JscFromMasesHdf5FileTrainsToo) {
  const data::Dataset train = jsc(data::Split::kTrain, "jsc_h5");
  const data::Dataset test = jsc(data::Split::kTest, "jsc_h5");
  ir::Graph g = build_model("jsc-s", {.seed = 4});
  TrainOptions o;
  o.epochs = 20;
  o.batch_size = 32;
  o.lr = 1e-2;
  Trainer t(g, train, train, o);
  const double before = t.validate(train).loss;
  const TrainResult r = t.run();
  EXPECT_LT(t.validate(train).loss, 0.9 * before);
  EXPECT_EQ(r.history.size(), 20u);
  EXPECT_GT(test.size(), 0);
  (void)t.validate(test);  // the test split fits the model too
}

TEST(Trainer, HoldoutSplitIsASeededPartition) {
  const data::Dataset d = jsc(data::Split::kTrain);
  const auto [a, b] = holdout_split(d, 0.25, 3);
  EXPECT_EQ(b.size(), std::llround(0.25 * d.size()));
  EXPECT_EQ(a.size() + b.size(), d.size());
  // Every row of d is in exactly one part: compare multisets of (label, first feature).
  std::vector<std::pair<int64_t, float>> all, parts;
  const int64_t row = d.x.numel() / d.size();
  for (int64_t i = 0; i < d.size(); ++i) {
    all.emplace_back(d.y.data<int64_t>()[i], d.x.data<float>()[i * row]);
  }
  for (const data::Dataset* p : {&a, &b}) {
    for (int64_t i = 0; i < p->size(); ++i) {
      parts.emplace_back(p->y.data<int64_t>()[i], p->x.data<float>()[i * row]);
    }
  }
  std::sort(all.begin(), all.end());
  std::sort(parts.begin(), parts.end());
  EXPECT_EQ(all, parts);
  const auto [a2, b2] = holdout_split(d, 0.25, 3);
  EXPECT_EQ(0, std::memcmp(b.x.raw(), b2.x.raw(), b.x.nbytes()));
  const auto [a3, b3] = holdout_split(d, 0.25, 4);
  EXPECT_NE(0, std::memcmp(b.x.raw(), b3.x.raw(), b.x.nbytes()));
  EXPECT_THROW(holdout_split(d, 1.0, 0), Error);
  EXPECT_THROW(holdout_split(d, 1e-9, 0), Error);
}

TEST(Trainer, SameSeedSameWeightsAnyThreadCount) {
  const data::Dataset train = jsc(data::Split::kTrain), val = jsc(data::Split::kVal);
  auto train_once = [&](const char* model, uint64_t seed, int threads) {
    set_num_threads(threads);
    ir::Graph g = build_model(model, {.input_shape = {16}, .num_classes = 5, .seed = 3});
    TrainOptions o;
    o.epochs = 3;
    o.batch_size = 50;  // 224 rows: a partial last batch
    o.seed = seed;
    Trainer(g, train, val, o).run();
    return model_state(g);
  };
  // jsc-trt has BatchNorm and Dropout.
  const std::vector<float> a = train_once("jsc-trt", 7, 1), b = train_once("jsc-trt", 7, 2),
                           c = train_once("jsc-trt", 7, 3), d = train_once("jsc-trt", 8, 2);
  set_num_threads(2);
  EXPECT_TRUE(bit_identical(a, b));
  EXPECT_TRUE(bit_identical(a, c));
  EXPECT_FALSE(bit_identical(a, d));
}

TEST(Trainer, ConvolutionalModelsAreThreadCountIndependentToo) {
  const data::Dataset train = quadrant_images(96, 1), val = quadrant_images(40, 2);
  auto train_once = [&](int threads) {
    set_num_threads(threads);
    ir::Graph g = build_model("resnet-s", {.input_shape = {1, 12, 12}, .num_classes = 4});
    TrainOptions o;
    o.epochs = 2;
    o.batch_size = 32;
    o.lr = 3e-3;
    Trainer(g, train, val, o).run();
    return model_state(g);
  };
  const std::vector<float> one = train_once(1), two = train_once(2);
  set_num_threads(2);
  EXPECT_TRUE(bit_identical(one, two));
}

TEST(Trainer, LearnsASimpleImageTask) {
  const data::Dataset train = quadrant_images(512, 3), val = quadrant_images(256, 4);
  ir::Graph g = build_model("resnet-s", {.input_shape = {1, 12, 12}, .num_classes = 4});
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 32;
  o.lr = 1e-2;
  Trainer t(g, train, val, o);
  t.run();
  EXPECT_GT(t.validate(val).accuracy, 0.9);
}

TEST(Trainer, ResumeIsBitIdenticalToAnUninterruptedRun) {
  const data::Dataset train = jsc(data::Split::kTrain), val = jsc(data::Split::kVal);
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 40;
  o.lr = 5e-3;
  o.seed = 11;
  o.optimizer.kind = OptimizerKind::kAdamW;
  o.optimizer.weight_decay = 0.01;
  auto fresh = [] { return build_model("jsc-trt", {.input_shape = {16}, .num_classes = 5}); };

  ir::Graph full = fresh();
  const TrainResult rf = Trainer(full, train, val, o).run();

  TempDir dir("resume");
  o.checkpoint_dir = dir.path.string();
  o.description = "jsc-trt on the fixture";
  ir::Graph part = fresh();
  int epochs_seen = 0;
  const TrainResult rp = Trainer(part, train, val, o).run([&](const TrainProgress& p) {
    if (p.epoch_done) ++epochs_seen;
    return !(p.epoch_done && p.epoch == 2);  // "killed" after epoch 2's checkpoint
  });
  EXPECT_TRUE(rp.stopped);
  EXPECT_EQ(epochs_seen, 2);
  const std::string ckpt = (dir.path / "last.ckpt").string();
  EXPECT_EQ(checkpoint_description(ckpt), "jsc-trt on the fixture");

  ir::Graph resumed = fresh();  // a new process: fresh weights, then the checkpoint's
  Trainer t(resumed, train, val, o);
  t.resume(ckpt);
  EXPECT_EQ(t.epochs_done(), 2);
  const TrainResult rr = t.run();
  ASSERT_EQ(rr.history.size(), rf.history.size());
  for (size_t e = 0; e < rf.history.size(); ++e) {
    EXPECT_EQ(rr.history[e].val_loss, rf.history[e].val_loss) << e;
    EXPECT_EQ(rr.history[e].train_loss, rf.history[e].train_loss) << e;
    EXPECT_EQ(rr.history[e].lr, rf.history[e].lr) << e;
  }
  EXPECT_EQ(rr.best_epoch, rf.best_epoch);
  EXPECT_TRUE(bit_identical(model_state(resumed), model_state(full)));
}

TEST(Trainer, ResumeRefusesAnotherRunsCheckpoint) {
  const data::Dataset train = jsc(data::Split::kTrain), val = jsc(data::Split::kVal);
  TempDir dir("refuse");
  TrainOptions o;
  o.epochs = 1;
  o.checkpoint_dir = dir.path.string();
  ir::Graph g = build_model("jsc-tiny");
  Trainer(g, train, val, o).run();
  const std::string ckpt = (dir.path / "last.ckpt").string();
  o.lr = 2e-3;
  ir::Graph h = build_model("jsc-tiny");
  Trainer t(h, train, val, o);
  try {
    t.resume(ckpt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lr=0.002"), std::string::npos) << e.what();
  }
  ir::Graph other = build_model("jsc-hls4ml");
  o.lr = 1e-3;
  Trainer u(other, train, val, o);
  EXPECT_THROW(u.resume(ckpt), Error);
  EXPECT_THROW(u.resume((dir.path / "missing.ckpt").string()), Error);
}

TEST(Trainer, RejectsDataThatDoesNotFitTheModel) {
  const data::Dataset train = jsc(data::Split::kTrain);
  ir::Graph g = build_model("mlp");  // 784 inputs
  EXPECT_THROW(Trainer(g, train, train, {}), Error);
  ir::Graph three = build_model("jsc-tiny", {.num_classes = 3});  // labels go up to 4
  EXPECT_THROW(Trainer(three, train, train, {}), Error);
  ir::Graph ok = build_model("jsc-tiny");
  TrainOptions bad;
  bad.batch_size = 0;
  EXPECT_THROW(Trainer(ok, train, train, bad), Error);
}

TEST(ProgressPrinter, PlainLinesWhenNotATerminal) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  ProgressPrinter show(f, /*tty=*/false);
  EpochRecord rec;
  rec.epoch = 1;
  rec.lr = 1e-3;
  rec.train_loss = 0.5;
  rec.val_loss = 0.25;
  rec.val_accuracy = 0.9;
  rec.train_seconds = 2;
  rec.train_samples = 1000;
  TrainProgress step{.epoch = 1, .epochs = 2, .step = 3, .steps = 10};
  show(step);
  TrainProgress done{.epoch = 1, .epochs = 2, .epoch_done = true, .record = &rec};
  show(done);
  std::fclose(f);
  const std::string out(buf, size);
  std::free(buf);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("epoch 1/2  lr 0.001  train loss 0.5000"), std::string::npos) << out;
  EXPECT_NE(out.find("val loss 0.2500 acc 0.9000"), std::string::npos) << out;
  EXPECT_NE(out.find("500 samples/s  *best\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace qsearch::train
