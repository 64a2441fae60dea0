// End to end: `qsearch objective`, the JSON-lines evaluator other programs drive (bench/
// search_efficiency.py runs Optuna through it). It must answer each request before the next is
// written (flushed per line), survive bad requests, exit 0 at end of input, and give exactly the
// values `qsearch search` stores for the same configuration.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

using nlohmann::json;

// `qsearch <args>` started from the source directory with its stdin and stdout on pipes, for a
// request/answer conversation. stderr goes to a file.
class Conversation {
 public:
  explicit Conversation(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      int err = ::open("/dev/null", O_WRONLY);
      ::dup2(err, 2);
      ::close(in[0]);
      ::close(in[1]);
      ::close(out[0]);
      ::close(out[1]);
      if (::chdir(source_dir().c_str()) != 0) ::_exit(126);
      std::vector<std::string> argv_s = {bin()};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~Conversation() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }

  // Writes one request line and reads the answer line. The answer must come while the request
  // pipe is still open (an evaluator that buffers its output would never answer: the 120 s
  // guard turns that deadlock into a failure instead of a hung test).
  std::string ask(const std::string& request) {
    std::string line = request + "\n";
    if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "";
    std::string answer;
    char c;
    while (true) {
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, 120000) <= 0) return "<no answer>";
      if (::read(from_, &c, 1) != 1) return "<eof>";
      if (c == '\n') return answer;
      answer += c;
    }
  }
  // Closes stdin (EOF) and returns the exit status; whatever else it printed goes to *rest.
  int finish(std::string* rest) {
    ::close(to_);
    to_ = -1;
    char buf[4096];
    ssize_t k;
    while ((k = ::read(from_, buf, sizeof buf)) > 0) rest->append(buf, static_cast<size_t>(k));
    int status = 0;
    ::waitpid(pid_, &status, 0);
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  bool waited_ = false;
};

const char* kConfig = "configs/lenet5_mixed.toml";

TEST(ObjectiveE2E, AnswersEachRequestLikeTheSearchAndSurvivesBadOnes) {
  ScratchDir dir("objective");
  const std::string out = dir / "out";
  Result r = run(std::string("search --config ") + kConfig +
                 " --sampler random --seed 3 --trials 3 --num-samples 128 --quiet --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto trials = trials_of(out);
  ASSERT_EQ(trials.size(), 3u);

  Result d = run(std::string("objective --config ") + kConfig + " --num-samples 128 --describe");
  ASSERT_EQ(d.code, 0) << d.err;
  const json space = json::parse(d.out);
  const json& params = space["parameters"];
  ASSERT_EQ(params.size(), trials[0].params.size());

  Conversation c({"objective", "--config", kConfig, "--num-samples", "128"});
  ASSERT_TRUE(c.started());
  // Trial 0 by choice indices, trial 1 by parameter name and choice value.
  json by_index = json::array();
  for (double v : trials[0].params) by_index.push_back(static_cast<int>(v));
  json a0 = json::parse(c.ask(json{{"index", by_index}, {"id", "t0"}}.dump()));
  json by_name = json::object();
  for (size_t i = 0; i < params.size(); ++i) {
    by_name[params[i]["name"].get<std::string>()] =
        params[i]["choices"][static_cast<size_t>(trials[1].params[i])];
  }
  json a1 = json::parse(c.ask(json{{"params", by_name}}.dump()));

  // Bad requests: an unknown parameter, a value that is not a choice, a wrong index, not JSON.
  json typo = by_name;
  typo["conv1/config/weight_widht"] = 3;
  json e0 = json::parse(c.ask(json{{"params", typo}}.dump()));
  json off = by_name;
  off["conv2/config/weight_width"] = 7;
  json e1 = json::parse(c.ask(json{{"params", off}}.dump()));
  json e2 = json::parse(c.ask(R"({"index": [0, 1]})"));
  json e3 = json::parse(c.ask("{not json"));
  // Still alive: the configuration of trial 2.
  json by_index2 = json::array();
  for (double v : trials[2].params) by_index2.push_back(static_cast<int>(v));
  json a2 = json::parse(c.ask(json{{"index", by_index2}}.dump()));
  std::string rest;
  EXPECT_EQ(c.finish(&rest), 0);
  EXPECT_EQ(rest, "");

  EXPECT_EQ(a0["id"], "t0");
  ASSERT_TRUE(a0.contains("values")) << a0.dump();
  EXPECT_EQ(a0["values"].get<std::vector<double>>(), trials[0].values);
  EXPECT_EQ(a0["index"], by_index);
  ASSERT_TRUE(a1.contains("values")) << a1.dump();
  EXPECT_EQ(a1["values"].get<std::vector<double>>(), trials[1].values);
  ASSERT_TRUE(a2.contains("values")) << a2.dump();
  EXPECT_EQ(a2["values"].get<std::vector<double>>(), trials[2].values);
  // All metrics, as the search stores them.
  EXPECT_EQ(a1["software_metrics"], json::parse(trials[1].user_attrs.at("software_metrics")));
  EXPECT_EQ(a1["hardware_metrics"], json::parse(trials[1].user_attrs.at("hardware_metrics")));
  EXPECT_EQ(a1["scaled_metrics"]["accuracy"].get<double>(), trials[1].values[0]);

  EXPECT_NE(e0.value("error", "").find("unknown parameter 'conv1/config/weight_widht'"),
            std::string::npos)
      << e0.dump();
  EXPECT_NE(e0.value("error", "").find("did you mean 'conv1/config/weight_width'"),
            std::string::npos)
      << e0.dump();
  EXPECT_NE(e1.value("error", "").find("'conv2/config/weight_width' = 7 is not one of its choices"),
            std::string::npos)
      << e1.dump();
  EXPECT_NE(e2.value("error", "").find("\"index\" must be an array of"), std::string::npos)
      << e2.dump();
  EXPECT_NE(e3.value("error", "").find("not a JSON object"), std::string::npos) << e3.dump();
  for (const json* e : {&e0, &e1, &e2, &e3}) EXPECT_FALSE(e->contains("values"));
}

TEST(ObjectiveE2E, DescribeListsTheSpaceAndObjectives) {
  Result d = run(std::string("objective --config ") + kConfig + " --describe");
  ASSERT_EQ(d.code, 0) << d.err;
  const json s = json::parse(d.out);
  EXPECT_EQ(s["size"], 24 * 24 * 24 * 24 * 24);
  ASSERT_EQ(s["objectives"].size(), 2u);
  EXPECT_EQ(s["objectives"][0]["name"], "accuracy");
  EXPECT_EQ(s["objectives"][0]["direction"], "maximize");
  EXPECT_EQ(s["objectives"][1]["name"], "average_bitwidth");
  EXPECT_EQ(s["objectives"][1]["direction"], "minimize");
  EXPECT_EQ(s["objectives"][1]["scale"], 0.2);
  EXPECT_EQ(s["samples_per_trial"], 1024);
  bool found = false;
  for (const auto& p : s["parameters"]) {
    if (p["name"] == "fc2/config/weight_width") {
      EXPECT_EQ(p["choices"], json::parse("[2, 3, 4, 5, 6, 8]"));
      found = true;
    }
  }
  EXPECT_TRUE(found) << d.out;
}

TEST(ObjectiveE2E, EndOfInputWithoutRequestsExitsZero) {
  Result r = run(std::string("objective --config ") + kConfig + " --num-samples 64 </dev/null");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace qsearch::e2e
