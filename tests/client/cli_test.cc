// The anorand command line against a real server on loopback: output and
// exit code of each command, server errors, an unreachable server, a
// deadline, a wrong token, `score` keeping order and count on 100,000
// rows, the input readers' line limit and header rule, and score-local
// printing what score prints.
#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"
#include "model/data/synthetic_data.h"
#include "tests/server/server_env.h"
#include "tests/support/subprocess.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
constexpr int kD = 6;

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return static_cast<bool>(out);
}

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> f;
  std::istringstream in(line);
  for (std::string x; std::getline(in, x, ',');) f.push_back(x);
  return f;
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.poll_seconds = 0;
    o.auth_token = "tok";
    o.metrics_address = "";
    o.reservoir_records = {{"rs", 100}};
    env_ = new ServerEnv(o);
    env_->token = "tok";
    if (!env_->Import("m", TinyModel(kD, 1), 0, "production").ok()) abort();
  }
  static void TearDownTestSuite() { delete env_; }

  int Run(std::vector<std::string> args, std::string* out, std::string* err,
          const std::string& stdin_path = "/dev/null") {
    args.insert(args.begin(), ClientBinary());
    return RunCommand(args, out, err, 300, stdin_path);
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(env_->server().port()); }

  static ServerEnv* env_;
  TempDir dir_;
  std::string out_, err_;
};
ServerEnv* CliTest::env_ = nullptr;

TEST_F(CliTest, HealthExitsZeroWhenServingAndThreeWhenUnreachable) {
  std::string out, err;
  EXPECT_EQ(Run({"health", "--address", Address()}, &out, &err), 0) << err;
  EXPECT_EQ(out, "SERVING\n");
  EXPECT_EQ(Run({"health", "--address", "127.0.0.1:1", "--timeout", "2"}, &out, &err), 3);
  EXPECT_THAT(err, HasSubstr("anorand: UNAVAILABLE: "));
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "one readable line: " << err;
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  std::string out, err;
  EXPECT_EQ(Run({"score"}, &out, &err), 2);
  EXPECT_EQ(Run({"score", "--model", "m", "--bogus", "1"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("unknown flag --bogus"));
  EXPECT_EQ(Run({"nosuchcommand"}, &out, &err), 2);
  EXPECT_EQ(Run({"eval", "--data", "x.npz", "--max-rows", "-1"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--max-rows must be"));
  for (const char* bad : {"-0.5", "1.01", "abc", "nan"}) {
    EXPECT_EQ(Run({"eval", "--data", "x.npz", "--labeled-anomalies", bad}, &out, &err), 2) << bad;
    EXPECT_THAT(err, HasSubstr("--labeled-anomalies must be a fraction in [0, 1]")) << bad;
  }
  EXPECT_EQ(Run({"--help"}, &out, &err), 0);
  EXPECT_THAT(out, HasSubstr("Exit codes"));
  EXPECT_EQ(Run({"train", "--help"}, &out, &err), 0);
  EXPECT_THAT(out, HasSubstr("--promote"));
}

TEST_F(CliTest, EvalWithLabelledAnomaliesNamesTheFractionAndCountPerSeed) {
  std::string out, err;
  const std::string csv = dir_.File("labelled.csv");
  ASSERT_EQ(Run({"demo-data", "--out", csv, "--rows", "1500", "--features", "3", "--labels"}, &out,
                &err),
            0)
      << err;
  ASSERT_EQ(Run({"eval", "--data", csv, "--label-column", "label", "--seeds", "1,2",
                 "--labeled-anomalies", "0.5", "--param", "max_epochs=1", "--param",
                 "ensemble_size=1", "--quiet"},
                &out, &err),
            0)
      << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["labeled_anomaly_fraction"].get<double>(), 0.5);
  ASSERT_EQ(j["seeds"].size(), 2u);
  for (const auto& s : j["seeds"]) EXPECT_GE(s["labeled_anomalies"].get<int64_t>(), 1) << s.dump();
  ASSERT_EQ(Run({"eval", "--data", csv, "--label-column", "label", "--seeds", "1",
                 "--param", "max_epochs=1", "--param", "ensemble_size=1", "--quiet"},
                &out, &err),
            0)
      << err;
  const auto unsupervised = nlohmann::json::parse(out);
  EXPECT_EQ(unsupervised["labeled_anomaly_fraction"].get<double>(), 0.0);
  EXPECT_EQ(unsupervised["seeds"][0]["labeled_anomalies"].get<int64_t>(), 0);
}

TEST_F(CliTest, HelpPrintsUsageToStdoutAndExitsZero) {
  std::string out, err;
  for (const char* help : {"--help", "-h", "help"}) {
    EXPECT_EQ(Run({help}, &out, &err), 0) << help;
    EXPECT_THAT(out, HasSubstr("usage: anorand COMMAND")) << help;
    EXPECT_EQ(err, "") << help;
  }
  for (const char* command : {"fit", "eval", "score-local", "demo-data", "health", "score",
                              "models", "train", "jobs", "retrain", "feedback"}) {
    EXPECT_EQ(Run({command, "--help"}, &out, &err), 0) << command << ": " << err;
    EXPECT_THAT(out, HasSubstr("--")) << command << " --help lists no flags";
  }
  EXPECT_EQ(Run({}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("usage: anorand COMMAND"));
}

TEST_F(CliTest, ScoreKeepsOrderAndCountOnAHundredThousandRows) {
  SyntheticOptions so;
  so.rows = 100000;
  so.cols = kD;
  Dataset d = MakeSyntheticData(so);
  ASSERT_TRUE(WriteCsv(d, dir_.File("big.csv"), false).ok());
  std::string out, err;
  ASSERT_EQ(Run({"score", "--model", "m", "--data", dir_.File("big.csv"), "--batch", "4096",
                 "--address", Address(), "--timeout", "120"},
                &out, &err),
            0)
      << err;
  std::istringstream lines(out);
  std::string line;
  std::getline(lines, line);  // no header in csv output? first record line
  int64_t expected = 0;
  do {
    ASSERT_EQ(line.substr(0, line.find(',')), std::to_string(expected)) << line;
    ++expected;
  } while (std::getline(lines, line));
  EXPECT_EQ(expected, 100000);
  EXPECT_THAT(err, HasSubstr("records 100000"));
}

TEST_F(CliTest, ScoreReadsCsvFromStdinAndExplains) {
  Dataset d = DemoData(20, kD, 2);
  ASSERT_TRUE(WriteCsv(d, dir_.File("small.csv"), false).ok());
  std::string out, err;
  ASSERT_EQ(Run({"score", "--model", "m", "--alias", "production", "--explain", "--format", "jsonl",
                 "--address", Address()},
                &out, &err, dir_.File("small.csv")),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("\"contributions\""));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 20);
}

// `tail -f records.csv | anorand score`: when the server closes the stream
// for being idle (--stream_idle_seconds), the next input opens a new one.
TEST_F(CliTest, ScoreFromStdinSurvivesTheServersIdleClose) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.stream_idle_seconds = 0.3;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", TinyModel(kD, 1)).ok());
  Dataset d = DemoData(12, kD, 3);
  ASSERT_TRUE(WriteCsv(d, dir_.File("rows.csv"), false).ok());
  std::vector<std::string> lines;
  {
    std::ifstream in(dir_.File("rows.csv"));
    for (std::string line; std::getline(in, line);) lines.push_back(line + "\n");
  }
  std::signal(SIGPIPE, SIG_IGN);  // a client that exits early fails the test, not kills it
  const std::string fifo = dir_.File("stdin.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::thread feeder([&] {
    std::ofstream out(fifo);
    for (size_t i = 0; i < lines.size(); ++i) {
      out << lines[i] << std::flush;
      // Two pauses of several idle periods: the server closes the stream.
      // (A sleep on purpose: the passing of time is what is tested.)
      if (i == 4 || i == 8) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
  });
  std::string out, err;
  const int code = Run({"score", "--model", "m", "--address",
                        "127.0.0.1:" + std::to_string(env.server().port())},
                       &out, &err, fifo);
  feeder.join();
  ASSERT_EQ(code, 0) << err;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 12) << out;
  EXPECT_THAT(err, HasSubstr("records 12"));
}

TEST_F(CliTest, ServerErrorsArePrintedAsOneLineWithExitOne) {
  Dataset d = DemoData(5, 3, 2);  // wrong width
  ASSERT_TRUE(WriteCsv(d, dir_.File("narrow.csv"), false).ok());
  std::string out, err;
  EXPECT_EQ(Run({"score", "--model", "m", "--data", dir_.File("narrow.csv"), "--address", Address()},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("INVALID_ARGUMENT: request 0: model 'm' version 1 takes 6 features"));
  EXPECT_EQ(Run({"score", "--model", "nope", "--data", dir_.File("narrow.csv"), "--address",
                 Address()},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, ModelsCommandsAndTheToken) {
  std::string out, err;
  EXPECT_EQ(Run({"models", "list", "--address", Address()}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(Run({"models", "list", "--address", Address(), "--token", "wrong"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("UNAUTHENTICATED: invalid token"));
  ASSERT_EQ(Run({"models", "list", "--address", Address(), "--token", "tok"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("production"));
  ASSERT_EQ(Run({"models", "export", "m", "--out", dir_.File("m.anorand"), "--address", Address(),
                 "--token", "tok"},
                &out, &err),
            0)
      << err;
  ASSERT_EQ(Run({"models", "import", "copy", "--file", dir_.File("m.anorand"), "--alias", "canary",
                 "--address", Address(), "--token", "tok"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("imported copy version 1"));
  ASSERT_EQ(Run({"models", "show", "copy", "--format", "json", "--address", Address(), "--token",
                 "tok"},
                &out, &err),
            0);
  EXPECT_THAT(out, HasSubstr("\"canary\""));
}

TEST_F(CliTest, ModelsShadowCompareAndUnshadow) {
  ASSERT_TRUE(env_->Import("sh", TinyModel(kD, 1)).ok());
  ASSERT_TRUE(env_->Import("sh", TinyModel(kD, 1)).ok());
  auto run = [&](std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.end(), {"--address", Address(), "--token", "tok"});
    return Run(args, out, err);
  };
  std::string out, err;
  EXPECT_EQ(run({"models", "shadow", "sh", "--sample", "0.5"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("exactly one of --version and --alias"));
  EXPECT_EQ(run({"models", "shadow", "sh", "--version", "2", "--sample", "1.5"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--sample F with F in (0, 1]"));
  EXPECT_EQ(run({"models", "shadow", "sh", "--version", "7", "--sample", "1"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("NOT_FOUND: model 'sh' has no version 7"));
  ASSERT_EQ(run({"models", "shadow", "sh", "--version", "2", "--sample", "1"}, &out, &err), 0)
      << err;
  EXPECT_THAT(out, HasSubstr("shadow: version 2, sample 1"));
  ASSERT_EQ(run({"models", "show", "sh"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("shadow: version 2, sample 1"));
  Dataset d = DemoData(20, kD, 4);
  ASSERT_TRUE(WriteCsv(d, dir_.File("records.csv"), false).ok());
  ASSERT_EQ(run({"score", "--model", "sh", "--version", "1", "--data", dir_.File("records.csv")},
                &out, &err),
            0)
      << err;
  EXPECT_TRUE(WaitUntil([&] {
    return run({"models", "compare", "sh", "--format", "json"}, &out, &err) == 0 &&
           out.find("\"compared_records\": \"20\"") != std::string::npos;
  }, 30)) << out << err;
  ASSERT_EQ(run({"models", "compare", "sh"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("SPEARMAN"));
  EXPECT_THAT(out, HasSubstr("1.0000"));
  ASSERT_EQ(run({"models", "unshadow", "sh"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("sh has no shadow"));
}

TEST_F(CliTest, ModelsDriftPrintsTheWorstFeatures) {
  ASSERT_TRUE(env_->Import("dr", TinyModel(kD, 1)).ok());
  auto run = [&](std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.end(), {"--address", Address(), "--token", "tok"});
    return Run(args, out, err);
  };
  std::string out, err;
  Dataset d = DemoData(300, kD, 4);
  ASSERT_TRUE(WriteCsv(d, dir_.File("records.csv"), false).ok());
  ASSERT_EQ(run({"score", "--model", "dr", "--data", dir_.File("records.csv")}, &out, &err), 0)
      << err;
  ASSERT_EQ(run({"models", "drift", "dr", "--top", "2"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("dr version 1"));
  EXPECT_THAT(out, HasSubstr("records: 300 observed"));
  EXPECT_THAT(out, HasSubstr("score PSI: "));
  EXPECT_THAT(out, HasSubstr("INDEX  FEATURE"));
  ASSERT_EQ(run({"models", "drift", "dr", "--format", "json"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("\"observed_records\": \"300\""));
  EXPECT_THAT(out, HasSubstr("\"worst_features\""));
  EXPECT_EQ(run({"models", "drift", "dr", "--top", "0"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--top must be an integer in [1, 100000]"));
  EXPECT_EQ(run({"models", "drift", "dr", "--format", "xml"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--format must be table or json; got 'xml'"));
  EXPECT_EQ(run({"models", "drift", "nosuch"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("NOT_FOUND: model 'nosuch' not found"));
}

TEST_F(CliTest, TrainWaitThenJobsListShowAndDeadline) {
  Dataset d = DemoData(400, kD, 3);
  ASSERT_TRUE(WriteCsv(d, dir_.File("train.csv"), false).ok());
  std::string out, err;
  ASSERT_EQ(Run({"train", "--name", "trained", "--data", dir_.File("train.csv"), "--param",
                 "max_epochs=3", "--param", "min_steps=0", "--promote", "production", "--wait",
                 "--address", Address(), "--token", "tok"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("SUCCEEDED: trained version 1"));
  EXPECT_THAT(err, HasSubstr("epoch 3/3"));  // plain progress lines: stderr is not a terminal
  const std::string id = out.substr(0, out.find('\n'));
  ASSERT_EQ(Run({"jobs", "list", "--model", "trained", "--address", Address(), "--token", "tok"},
                &out, &err),
            0);
  EXPECT_THAT(out, HasSubstr(id));
  EXPECT_THAT(out, HasSubstr("SUCCEEDED"));
  ASSERT_EQ(Run({"jobs", "show", id, "--address", Address(), "--token", "tok"}, &out, &err), 0);
  EXPECT_THAT(out, HasSubstr("\"published_version\": \"1\""));
  EXPECT_EQ(Run({"jobs", "cancel", id, "--address", Address(), "--token", "tok"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_EQ(Run({"train", "--name", "bad", "--data", dir_.File("train.csv"), "--param",
                 "dropout=7", "--address", Address(), "--token", "tok"},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("dropout must be in [0, 1)"));
  // A deadline too short for the call: exit 3 with DEADLINE_EXCEEDED.
  EXPECT_EQ(Run({"train", "--name", "slow", "--data", dir_.File("train.csv"), "--address",
                 Address(), "--token", "tok", "--timeout", "0.000001"},
                &out, &err),
            3);
  EXPECT_THAT(err, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(CliTest, TrainFromReservoirRetrainsOnTheRecordsScored) {
  ASSERT_TRUE(env_->Import("rs", TinyModel(kD, 2)).ok());
  auto run = [&](std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.end(), {"--address", Address(), "--token", "tok"});
    return Run(args, out, err);
  };
  std::string out, err;
  ASSERT_TRUE(WriteCsv(DemoData(30, kD, 5), dir_.File("recent.csv"), false).ok());
  ASSERT_EQ(run({"score", "--model", "rs", "--data", dir_.File("recent.csv")}, &out, &err), 0)
      << err;
  ASSERT_EQ(run({"train", "--name", "rs", "--from-reservoir", "--param", "max_epochs=2", "--param",
                 "min_steps=0", "--wait"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("SUCCEEDED: rs version 2"));
  const std::string id = out.substr(0, out.find('\n'));
  ASSERT_EQ(run({"jobs", "show", id}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("\"from_reservoir\": true"));
  EXPECT_THAT(out, HasSubstr("\"data_rows\": \"30\""));
  EXPECT_EQ(run({"train", "--name", "rs", "--from-reservoir", "--data", dir_.File("recent.csv")},
                &out, &err),
            2);
  EXPECT_THAT(err, HasSubstr("give one of --data, --data-path or --from-reservoir"));
  EXPECT_EQ(run({"train", "--name", "nokeep", "--from-reservoir"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(err, HasSubstr("--reservoir_records nokeep=ROWS"));
}

TEST_F(CliTest, RetrainSetsShowsAndClearsAPolicyAndListsItsHistory) {
  ASSERT_TRUE(env_->Import("rt", TinyModel(kD, 3), 0, "production").ok());
  auto run = [&](std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.end(), {"--address", Address(), "--token", "tok"});
    return Run(args, out, err);
  };
  std::string out, err;
  ASSERT_EQ(run({"retrain", "set", "rt", "--alias", "production", "--psi", "0.4", "--for", "600",
                 "--min-correlation", "0.2"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("rt: watching"));
  EXPECT_THAT(out, HasSubstr("alias production, score PSI > 0.4 for 600 s; shadow sample 0.1"));
  EXPECT_THAT(out, HasSubstr("rank correlation >= 0.2 and candidate-only flags <= 0.05"));
  ASSERT_EQ(run({"retrain", "set", "rt", "--alias", "production", "--paused"}, &out, &err), 0)
      << err;
  ASSERT_EQ(run({"retrain", "status", "rt", "--format", "json"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("\"stage\": \"RETRAIN_STAGE_PAUSED\""));
  ASSERT_EQ(run({"models", "show", "rt"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("retrain policy: paused"));
  EXPECT_EQ(run({"retrain", "set", "rt", "--alias", "production", "--sample", "2"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("policy.shadow_sample_fraction must be in (0, 1]"));
  EXPECT_EQ(run({"retrain", "set", "rt"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("retrain set needs --alias A"));
  ASSERT_EQ(run({"retrain", "clear", "rt"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("rt has no retrain policy"));
  ASSERT_EQ(run({"retrain", "history", "rt"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("policy_set"));
  EXPECT_THAT(out, HasSubstr("paused"));
  EXPECT_THAT(out, HasSubstr("policy_cleared"));
  EXPECT_EQ(run({"retrain", "history", "nope"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, FeedbackAddListExportAndTrainIncludingIt) {
  ASSERT_TRUE(env_->Import("fb", TinyModel(kD, 4)).ok());
  auto run = [&](std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.end(), {"--address", Address(), "--token", "tok"});
    return Run(args, out, err);
  };
  const Dataset d = DemoData(200, kD, 6);
  const int64_t anomalies = std::count(d.labels.begin(), d.labels.end(), 1);
  ASSERT_GT(anomalies, 0);
  ASSERT_TRUE(WriteCsv(d, dir_.File("labelled.csv"), true).ok());
  std::string out, err;
  ASSERT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("labelled.csv"),
                 "--label-column", "label"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("added 200, already stored 0; fb holds ", anomalies,
                                          " anomalies and ", 200 - anomalies, " normal")));
  // The same file again stores nothing twice; the same rows under another
  // label are refused.
  ASSERT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("labelled.csv"),
                 "--label-column", "label"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("added 0, already stored 200"));
  ASSERT_TRUE(WriteCsv(d, dir_.File("plain.csv"), false).ok());
  EXPECT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("plain.csv"), "--label",
                 "anomaly"},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("ALREADY_EXISTS"));
  EXPECT_THAT(err, HasSubstr("another label"));
  // The label column read as a feature: the width is wrong.
  EXPECT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("labelled.csv"),
                 "--label", "normal"},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("the feedback has 7 features per record; model 'fb' version 1 takes 6"));
  EXPECT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("labelled.csv")}, &out,
                &err),
            2);
  EXPECT_THAT(err, HasSubstr("give --label anomaly|normal"));
  EXPECT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("labelled.csv"),
                 "--label", "maybe"},
                &out, &err),
            2);
  ASSERT_EQ(run({"feedback", "list"}, &out, &err), 0) << err;
  EXPECT_THAT(out, ::testing::ContainsRegex(absl::StrCat("fb +", kD, " +", anomalies, " +",
                                                         200 - anomalies, " +100000 +0")));
  ASSERT_EQ(run({"feedback", "export", "--model", "fb", "--out", dir_.File("export.csv")}, &out,
                &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("wrote 200 records"));
  // The export reads back as the same records.
  ASSERT_EQ(run({"feedback", "add", "--model", "fb", "--data", dir_.File("export.csv"),
                 "--label-column", "label"},
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("added 0, already stored 200"));

  ASSERT_TRUE(WriteCsv(DemoData(300, kD, 7), dir_.File("base.csv"), false).ok());
  ASSERT_EQ(run({"train", "--name", "fb", "--data", dir_.File("base.csv"), "--include-feedback",
                 "--param", "max_epochs=2", "--param", "min_steps=0", "--wait"},
                &out, &err),
            0)
      << err;
  const std::string id = out.substr(0, out.find('\n'));
  ASSERT_EQ(run({"jobs", "show", id}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("\"include_feedback\": true"));
  EXPECT_THAT(out, HasSubstr("\"data_feedback_rows\": \"200\""));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("\"data_labeled_anomalies\": \"", anomalies, "\"")));
}

TEST_F(CliTest, DemoDataShiftMovesTheSameRows) {
  std::string out, err;
  ASSERT_EQ(Run({"demo-data", "--out", dir_.File("a.csv"), "--rows", "20", "--features", "3"},
                &out, &err),
            0)
      << err;
  ASSERT_EQ(Run({"demo-data", "--out", dir_.File("b.csv"), "--rows", "20", "--features", "3",
                 "--shift", "4"},
                &out, &err),
            0)
      << err;
  auto a = ReadFileBounded(dir_.File("a.csv"), 1 << 20);
  auto b = ReadFileBounded(dir_.File("b.csv"), 1 << 20);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->substr(0, a->find('\n')), b->substr(0, b->find('\n')));  // the same header
  EXPECT_EQ(Run({"demo-data", "--out", dir_.File("c.csv"), "--shift", "nan"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--shift must be a number in [-1000, 1000]"));
}

// A 1 GB file of zero bytes (sparse: no disk) has no line end: every reader
// of the CLI stops after the 16 MiB line limit and says so, instead of
// reading the whole input into memory first.
TEST_F(CliTest, OneGigabyteLineIsRefusedByEveryInputPathWithTheLimitNamed) {
  const std::string sparse = dir_.File("sparse.csv");
  { std::ofstream create(sparse); }
  ASSERT_EQ(::truncate(sparse.c_str(), int64_t{1} << 30), 0);
  ASSERT_EQ(Run({"models", "export", "m", "--out", dir_.File("m.anorand"), "--address", Address(),
                 "--token", "tok"},
                &out_, &err_),
            0)
      << err_;
  EXPECT_EQ(Run({"score", "--model", "m", "--address", Address()}, &out_, &err_, sparse), 1);
  EXPECT_THAT(err_, HasSubstr("anorand: stdin: line 1: line is longer than 16777216 bytes"));
  EXPECT_EQ(out_, "");
  EXPECT_EQ(Run({"score", "--model", "m", "--data", sparse, "--address", Address()}, &out_, &err_),
            1);
  EXPECT_THAT(err_, HasSubstr(sparse + ": line 1: line is longer than 16777216 bytes"));
  EXPECT_EQ(Run({"score-local", "--model", dir_.File("m.anorand"), "--data", sparse}, &out_, &err_),
            1);
  EXPECT_THAT(err_, HasSubstr(sparse + ": line 1: line is longer than 16777216 bytes"));
  EXPECT_EQ(Run({"score-local", "--model", dir_.File("m.anorand"), "--data", "-"}, &out_, &err_,
                sparse),
            1);
  EXPECT_THAT(err_, HasSubstr("anorand: stdin: line 1: line is longer than 16777216 bytes"));
}

// `tail -f records.csv | anorand score`: the first line is a header only by
// the library's rule (a field that is not a number, not empty, not a
// true/false label). A first record whose label reads `true` is scored.
TEST_F(CliTest, ScoreFromStdinScoresAFirstRecordWhoseLabelIsTrue) {
  ASSERT_TRUE(WriteText(dir_.File("labelled.csv"),
                                     "0.1,0.2,0.3,0.4,0.5,0.6,true\n"
                                     "0.2,0.3,0.4,0.5,0.6,0.7,false\n"
                                     "0.3,0.4,0.5,0.6,0.7,0.8,false\n"));
  ASSERT_EQ(Run({"score", "--model", "m", "--label-column", "6", "--address", Address()}, &out_,
                &err_, dir_.File("labelled.csv")),
            0)
      << err_;
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 3) << out_;
  EXPECT_EQ(out_.substr(0, 2), "0,") << out_;
  EXPECT_THAT(err_, HasSubstr("records 3"));
}

// An empty field on the first line is an error naming it, not a header
// that drops the record.
TEST_F(CliTest, ScoreFromStdinRefusesAFirstLineWithAnEmptyField) {
  ASSERT_TRUE(WriteText(dir_.File("hole.csv"), "0.1,,0.3,0.4,0.5,0.6\n"
                                                            "0.2,0.3,0.4,0.5,0.6,0.7\n"));
  EXPECT_EQ(Run({"score", "--model", "m", "--address", Address()}, &out_, &err_,
                dir_.File("hole.csv")),
            1);
  EXPECT_THAT(err_, HasSubstr("anorand: stdin: line 1, column 2: empty value"));
  EXPECT_EQ(out_, "");
}

// score-local streams a CSV file in batches and prints with the same
// printer as score: a header line, then the lines `score` prints.
TEST_F(CliTest, ScoreLocalStreamsInBatchesAndPrintsTheLinesScorePrints) {
  ASSERT_EQ(Run({"models", "export", "m", "--out", dir_.File("m.anorand"), "--address", Address(),
                 "--token", "tok"},
                &out_, &err_),
            0)
      << err_;
  Dataset d = DemoData(2500, kD, 4);
  ASSERT_TRUE(WriteCsv(d, dir_.File("records.csv"), false).ok());
  ASSERT_EQ(Run({"score-local", "--model", dir_.File("m.anorand"), "--data",
                 dir_.File("records.csv"), "--batch", "700"},
                &out_, &err_),
            0)
      << err_;
  std::string local = out_;
  const std::string header =
      "index,score,is_anomaly,noise_probability,reconstruction_probability\n";
  ASSERT_EQ(local.substr(0, header.size()), header);
  local = local.substr(header.size());
  ASSERT_EQ(Run({"score", "--model", "m", "--data", dir_.File("records.csv"), "--batch", "700",
                 "--address", Address()},
                &out_, &err_),
            0)
      << err_;
  std::istringstream l(local), r(out_);
  std::string local_line, remote_line;
  int64_t n = 0;
  while (std::getline(l, local_line)) {
    ASSERT_TRUE(std::getline(r, remote_line)) << "score printed fewer lines, at " << n;
    // Same index and flag, five fields each (the values are the server's
    // own computation of the same model).
    const std::vector<std::string> lf = Fields(local_line), rf = Fields(remote_line);
    ASSERT_EQ(lf.size(), 5u) << local_line;
    ASSERT_EQ(rf.size(), 5u) << remote_line;
    ASSERT_EQ(lf[0], std::to_string(n));
    ASSERT_EQ(rf[0], lf[0]);
    ASSERT_EQ(rf[2], lf[2]) << "record " << n;
    ++n;
  }
  EXPECT_EQ(n, 2500);
  EXPECT_FALSE(std::getline(r, remote_line)) << "score printed more lines";
}

// A bad record ends the command with exit 1 and the reader's message; the
// records before it have been scored and printed, none after it.
TEST_F(CliTest, RecordsBeforeABadLineArePrintedThenTheCommandFails) {
  ASSERT_EQ(Run({"models", "export", "m", "--out", dir_.File("m.anorand"), "--address", Address(),
                 "--token", "tok"},
                &out_, &err_),
            0)
      << err_;
  ASSERT_TRUE(WriteText(dir_.File("bad.csv"), "0.1,0.2,0.3,0.4,0.5,0.6\n"
                                              "0.2,0.3,0.4,0.5,0.6,0.7\n"
                                              "0.3,0.4,x,0.6,0.7,0.8\n"
                                              "0.4,0.5,0.6,0.7,0.8,0.9\n"));
  EXPECT_EQ(Run({"score", "--model", "m", "--address", Address()}, &out_, &err_,
                dir_.File("bad.csv")),
            1);
  EXPECT_THAT(err_, HasSubstr("anorand: stdin: line 3, column 3: non-numeric value \"x\""));
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 2) << out_;
  EXPECT_EQ(Run({"score-local", "--model", dir_.File("m.anorand"), "--data", dir_.File("bad.csv")},
                &out_, &err_),
            1);
  EXPECT_THAT(err_, HasSubstr(dir_.File("bad.csv") + ": line 3, column 3: non-numeric value"));
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 3) << "header and two records: " << out_;
}

}  // namespace
}  // namespace anorand::test_support
