// Optuna reads a qsearch study.db as its own (issue 10): a real multi-objective search, then
// Optuna's Python API (/usr/bin/python3 with Debian's python3-optuna, the test oracle) on the
// result; Optuna adds a trial and qsearch resumes the study with it. Skipped, saying why, only
// where `/usr/bin/python3 -c "import optuna"` fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

using nlohmann::json;

bool python_has(const std::string& module) {
  return std::system(("/usr/bin/python3 -c 'import " + module + "' >/dev/null 2>&1").c_str()) == 0;
}

// Runs `script` with /usr/bin/python3 and returns what it printed (its last line is JSON).
json run_python(const ScratchDir& dir, const std::string& name, const std::string& script,
                const std::string& args) {
  const std::string path = write(dir, name, script);
  const std::string out = dir / (name + ".out"), err = dir / (name + ".err");
  const int code = std::system(
      ("/usr/bin/python3 '" + path + "' " + args + " >'" + out + "' 2>'" + err + "'").c_str());
  EXPECT_EQ(code, 0) << read_file(err);
  std::string text = read_file(out);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t last = text.rfind('\n');
  try {
    return json::parse(last == std::string::npos ? text : text.substr(last + 1));
  } catch (const json::exception& e) {
    ADD_FAILURE() << "python printed no JSON: " << text << "\n" << read_file(err);
    return json::object();
  }
}

// What Optuna sees in the study: every trial, the directions, best_trials, the dataframe.
constexpr const char* kReadStudy = R"py(
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage, name = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name=name, storage=storage)
out = {"directions": [d.name for d in study.directions], "trials": []}
for t in study.trials:
    out["trials"].append({
        "number": t.number, "state": t.state.name, "values": t.values,
        "params": t.params,
        "distributions": {k: [type(d).__name__, d.low, d.high, d.step, d.log]
                          for k, d in t.distributions.items()},
        "user_attrs": t.user_attrs,
        "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
        "complete_after_start": bool(t.datetime_complete is None or
                                     t.datetime_complete >= t.datetime_start)})
out["best_trials"] = sorted(t.number for t in study.best_trials)
df = study.trials_dataframe()
out["dataframe"] = [len(df), sorted(df.columns.tolist())]
try:
    import plotly  # noqa: F401
    optuna.visualization.plot_pareto_front(study)
    out["pareto_plot"] = "built"
except ImportError:
    out["pareto_plot"] = "no plotly"
print(json.dumps(out))
)py";

// Optuna adds a COMPLETE trial with the study's own distributions and a configuration that
// dominates every trial (accuracy 1.0, average bitwidth 0.1).
constexpr const char* kAddTrial = R"py(
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage, name = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name=name, storage=storage)
first = study.trials[0]
params = {k: d.high for k, d in first.distributions.items()}
attrs = dict(first.user_attrs)
trial = optuna.trial.create_trial(params=params, distributions=first.distributions,
                                  values=[1.0, 0.1], user_attrs=attrs)
study.add_trial(trial)
print(json.dumps({"number": study.trials[-1].number, "params": params}))
)py";

// Optuna 3.1 creates a fresh study database; every table's columns (name, type, NOT NULL,
// default, key), unique indexes and foreign keys there and in qsearch's study.db are compared
// (qsearch's own two indexes, ix_qsearch_*, left out).
constexpr const char* kCompareSchema = R"py(
import json, sqlite3, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
ours, fresh = sys.argv[1], sys.argv[2]
optuna.create_study(study_name="fresh", storage="sqlite:///" + fresh)
def shape(path):
    c = sqlite3.connect(path)
    out = {}
    for (t,) in c.execute("select name from sqlite_master where type = 'table'"):
        cols = [list(r[1:]) for r in c.execute(f"pragma table_info('{t}')")]
        idx = [r for r in c.execute(f"pragma index_list('{t}')")
               if not r[1].startswith("ix_qsearch_")]
        keys = sorted([bool(r[2])] + [x[2] for x in c.execute(f"pragma index_info('{r[1]}')")]
                      for r in idx)
        fks = sorted(list(r[2:5]) for r in c.execute(f"pragma foreign_key_list('{t}')"))
        out[t] = [cols, keys, fks]
    return out
a, b = shape(ours), shape(fresh)
print(json.dumps({"same": a == b, "ours": a, "optuna": b}))
)py";

json read_json(const std::string& path) { return json::parse(read_file(path)); }

TEST(OptunaE2E, OptunaReadsAQsearchStudyAndQsearchResumesWithATrialOptunaAdded) {
  if (!python_has("optuna")) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import optuna: install python3-optuna "
                    "(scripts/setup.sh) to run Optuna against qsearch's study.db";
  }
  ScratchDir dir("optuna");
  const std::string out = dir / "out";
  const std::string cfg = write(dir, "c.toml", mlp_by_name_config(256));
  Result r = run("search --config " + cfg + " --out " + out +
                 " --study mlp --sampler nsgaii --trials 8 --seed 3 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto trials = trials_of(out);
  ASSERT_EQ(trials.size(), 8u);
  const std::string url = "sqlite:///" + out + "/study.db";

  // Optuna's tables exactly: what Optuna 3.1 itself creates.
  const json schema = run_python(dir, "schema.py", kCompareSchema,
                                 "'" + out + "/study.db' '" + (dir / "o.db") + "'");
  EXPECT_TRUE(schema.value("same", false)) << schema.dump();

  const json seen = run_python(dir, "read.py", kReadStudy, "'" + url + "' mlp");
  ASSERT_TRUE(seen.contains("trials")) << seen.dump();
  EXPECT_EQ(seen["directions"], json({"MAXIMIZE", "MINIMIZE"}));
  const auto info =
      storage::open_storage(url)->get_study(*storage::open_storage(url)->find_study("mlp"));
  ASSERT_EQ(seen["trials"].size(), trials.size());
  for (size_t i = 0; i < trials.size(); ++i) {
    const search::FrozenTrial& t = trials[i];
    const json& o = seen["trials"][i];
    SCOPED_TRACE(i);
    EXPECT_EQ(o["number"], t.number);
    EXPECT_EQ(o["state"], search::to_string(t.state));
    if (t.state == search::TrialState::kComplete) {
      EXPECT_EQ(o["values"].get<std::vector<double>>(), t.values);
    }
    ASSERT_EQ(o["params"].size(), info.space.size());
    for (size_t k = 0; k < info.space.size(); ++k) {
      const auto& p = info.space[k];
      // MASE's index parameters: IntDistribution(low=0, high=len-1, step=1, log=False).
      EXPECT_EQ(o["distributions"][p.name], json({"IntDistribution", 0, p.dist.high, 1, false}))
          << p.name;
      EXPECT_EQ(o["params"][p.name].get<double>(), t.params[k]) << p.name;
    }
    for (const char* key :
         {"software_metrics", "hardware_metrics", "scaled_metrics", "sampled_config"}) {
      ASSERT_TRUE(o["user_attrs"].contains(key)) << key;
      EXPECT_EQ(o["user_attrs"][key], json::parse(t.user_attrs.at(key))) << key;
    }
    EXPECT_TRUE(o["complete_after_start"].get<bool>());
  }
  // study.best_trials is best.json's Pareto front.
  std::vector<int> front;
  const json best = read_json(out + "/best.json");
  for (const auto& [row, v] : best.items()) front.push_back(v["number"]);
  std::sort(front.begin(), front.end());
  EXPECT_EQ(seen["best_trials"].get<std::vector<int>>(), front);
  EXPECT_FALSE(front.empty());
  EXPECT_EQ(seen["dataframe"][0], 8);
  const auto columns = seen["dataframe"][1].get<std::vector<std::string>>();
  for (const char* c : {"number", "state", "values_0", "values_1", "params_fc1/config/weight_width",
                        "user_attrs_software_metrics"}) {
    EXPECT_NE(std::find(columns.begin(), columns.end(), c), columns.end()) << c;
  }
  if (seen["pareto_plot"] == "no plotly") {
    std::cerr << "note: plotly is missing; optuna.visualization.plot_pareto_front not built\n";
  } else {
    EXPECT_EQ(seen["pareto_plot"], "built");
  }

  // Optuna adds a trial; qsearch resumes the study, sees it and numbers on after it.
  const json added = run_python(dir, "add.py", kAddTrial, "'" + url + "' mlp");
  ASSERT_EQ(added.value("number", -1), 8) << added.dump();
  r = run("search --config " + cfg + " --out " + out +
          " --study mlp --sampler nsgaii --trials 11 --seed 3 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto resumed = trials_of(out);
  ASSERT_EQ(resumed.size(), 11u);
  EXPECT_EQ(resumed[8].state, search::TrialState::kComplete);
  EXPECT_EQ(resumed[8].values, (std::vector<double>{1.0, 0.1}));
  for (size_t k = 0; k < info.space.size(); ++k) {
    EXPECT_EQ(resumed[8].params[k], info.space[k].dist.high);
  }
  for (int n = 9; n < 11; ++n) EXPECT_EQ(resumed[n].number, n);
  // It dominates every trial, so it is the whole front now.
  std::vector<int> new_front;
  const json new_best = read_json(out + "/best.json");
  for (const auto& [row, v] : new_best.items()) new_front.push_back(v["number"]);
  EXPECT_EQ(new_front, std::vector<int>{8});
  // And Optuna reads qsearch's new trials too.
  const json again = run_python(dir, "read2.py", kReadStudy, "'" + url + "' mlp");
  ASSERT_EQ(again["trials"].size(), 11u);
  EXPECT_EQ(again["best_trials"], json({8}));
}

// A study.db Optuna itself created: qsearch reports on it (its space taken from the trials'
// params) but refuses to resume the study.
constexpr const char* kOptunaMakesAStudy = R"py(
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(study_name="by-optuna", storage=sys.argv[1],
                            directions=["maximize", "minimize"],
                            sampler=optuna.samplers.RandomSampler(seed=1))
def objective(trial):
    w = trial.suggest_int("fc1/config/weight_width", 0, 2)
    d = trial.suggest_int("fc1/config/data_in_width", 0, 1)
    trial.set_user_attr("software_metrics", {"loss": 1.0 - 0.1 * w, "accuracy": 0.5 + 0.1 * w})
    return 0.5 + 0.1 * w, 2.0 + w + 3 * d
study.optimize(objective, n_trials=8)
print(json.dumps({"best": sorted(t.number for t in study.best_trials)}))
)py";

TEST(OptunaE2E, AStudyOptunaCreatedIsReportedButNotResumed) {
  if (!python_has("optuna")) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import optuna: install python3-optuna "
                    "(scripts/setup.sh) to run Optuna against qsearch's study.db";
  }
  ScratchDir dir("optuna_made");
  const std::string db = dir / "optuna.db";
  const std::string url = "sqlite:///" + db;
  const json made = run_python(dir, "make.py", kOptunaMakesAStudy, "'" + url + "'");
  ASSERT_TRUE(made.contains("best")) << made.dump();

  Result r = run("report --out " + (dir / "rep") + " --storage " + url + " --study by-optuna");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<int> front;
  const json best = json::parse(read_file(dir / "rep/best.json"));
  for (const auto& [row, v] : best.items()) front.push_back(v["number"]);
  EXPECT_EQ(json(front), made["best"]);
  EXPECT_NE(read_file(dir / "rep/trials.csv").find("fc1/config/weight_width"), std::string::npos);
  // qsearch's indexes and WAL, added when it opened the file, do not bother Optuna.
  EXPECT_EQ(run_python(dir, "add.py", kAddTrial, "'" + url + "' by-optuna").value("number", -1), 8);

  const std::string cfg = write(dir, "c.toml", mlp_by_name_config(256));
  r = run("search --config " + cfg + " --storage " + url + " --study by-optuna --out " +
          (dir / "s") + " --trials 2 --quiet");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("was not created by qsearch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(db), std::string::npos) << r.err;
  EXPECT_EQ(storage::open_storage(url)
                ->get_trials(*storage::open_storage(url)->find_study("by-optuna"))
                .size(),
            9u);  // nothing added by the refused search
}

}  // namespace
}  // namespace qsearch::e2e
