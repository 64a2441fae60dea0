// End to end: `qsearch train` checks what it will write before it trains, and selects the kept
// epoch on data held out of the training split, never on the test split, unless told to.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

// A tiny model on the small tabular fixture: one epoch takes milliseconds.
const std::string kTrain =
    "train --model toy --dataset csv:tests/fixtures/data/csv/tabular.csv --label-column kind "
    "--epochs 1 --batch-size 16";

// The run stopped with a clear error before loading data or training: no header line, no
// epoch summary, nothing written.
void expect_refused_before_training(const Result& r, const std::string& flag,
                                    const std::string& out, const std::string& what) {
  EXPECT_EQ(r.code, 1) << what << "\n" << r.err;
  EXPECT_NE(r.err.find(flag), std::string::npos) << what << "\n" << r.err;
  EXPECT_EQ(r.err.find("training toy"), std::string::npos) << what << "\n" << r.err;
  EXPECT_EQ(r.err.find("epoch 1/1"), std::string::npos) << what << "\n" << r.err;
  EXPECT_FALSE(fs::is_regular_file(out)) << what;
}

TEST(TrainE2E, OpsetTheExporterCannotWriteIsRefusedBeforeTraining) {
  ScratchDir dir("train_opset");
  const std::string out = dir / "m.onnx";
  for (const char* opset : {"10", "18", "0", "-3"}) {
    Result r = run(kTrain + " --opset " + opset + " --out " + out);
    expect_refused_before_training(r, std::string("--opset ") + opset, out, opset);
    EXPECT_NE(r.err.find("11 to 17"), std::string::npos) << r.err;
  }
  // The bounds themselves are accepted.
  for (const char* opset : {"11", "17"}) {
    Result r = run(kTrain + " --opset " + opset + " --out " + out);
    EXPECT_EQ(r.code, 0) << opset << "\n" << r.err;
    EXPECT_TRUE(fs::is_regular_file(out)) << opset;
    fs::remove(out);
  }
}

TEST(TrainE2E, OutThatCannotBeWrittenIsRefusedBeforeTraining) {
  ScratchDir dir("train_out");
  {  // a directory that does not exist
    const std::string out = dir / "missing/m.onnx";
    Result r = run(kTrain + " --out " + out);
    expect_refused_before_training(r, "--out", out, "missing directory");
    EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  }
  {  // an existing directory, with or without the trailing slash
    for (const std::string& out : {dir.path().string(), dir.path().string() + "/"}) {
      Result r = run(kTrain + " --out " + out);
      EXPECT_EQ(r.code, 1) << r.err;
      EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("training toy"), std::string::npos) << r.err;
    }
  }
  {  // a path under a regular file
    std::ofstream(dir / "plain") << "x";
    const std::string out = dir / "plain/m.onnx";
    Result r = run(kTrain + " --out " + out);
    expect_refused_before_training(r, "--out", out, "under a file");
  }
  {  // a directory nobody can create files in (/proc refuses even root)
    const std::string out = "/proc/qsearch_e2e_m.onnx";
    Result r = run(kTrain + " --out " + out);
    expect_refused_before_training(r, "--out", out, "/proc");
    EXPECT_NE(r.err.find("cannot be written"), std::string::npos) << r.err;
  }
  if (::geteuid() != 0) {  // a read-only directory (root may write anywhere)
    fs::create_directories(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    const std::string out = dir / "ro/m.onnx";
    Result r = run(kTrain + " --out " + out);
    fs::permissions(dir / "ro", fs::perms::owner_all);
    expect_refused_before_training(r, "--out", out, "read-only directory");
  }
  {  // an existing file is overwritten after training, and the check leaves it alone until then
    const std::string out = dir / "old.onnx";
    std::ofstream(out) << "old";
    Result r = run(kTrain + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(read_file(out), "old");
  }
}

TEST(TrainE2E, ModelSelectionHoldsOutPartOfTheTrainingSplitByDefault) {
  ScratchDir dir("train_val");
  Result r = run(kTrain + " --json --out " + (dir / "m.onnx"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["recipe"]["val_split"], "0.1");
  EXPECT_NE(r.err.find("validation on 0.1 of the training split held out"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("note:"), std::string::npos) << r.err;
  // Choosing a named split still works, with a note that it is not held out.
  for (const char* split : {"val", "test"}) {
    r = run(kTrain + " --val-split " + split + " --out " + (dir / "m.onnx"));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find(std::string("note: --val-split ") + split), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace qsearch::e2e
