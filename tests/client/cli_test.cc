// The anorand command line against a real server on loopback: output and
// exit code of each command, server errors, an unreachable server, a
// deadline, a wrong token, and `score` keeping order and count on 100,000
// rows.
#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/stat.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/synthetic_data.h"
#include "tests/server/server_env.h"
#include "tests/support/subprocess.h"

namespace anorand::testing {
namespace {

using ::testing::HasSubstr;
constexpr int kD = 6;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.poll_seconds = 0;
    o.auth_token = "tok";
    o.metrics_address = "";
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
  EXPECT_EQ(Run({"--help"}, &out, &err), 0);
  EXPECT_THAT(out, HasSubstr("Exit codes"));
  EXPECT_EQ(Run({"train", "--help"}, &out, &err), 0);
  EXPECT_THAT(out, HasSubstr("--promote"));
}

TEST_F(CliTest, HelpPrintsUsageToStdoutAndExitsZero) {
  std::string out, err;
  for (const char* help : {"--help", "-h", "help"}) {
    EXPECT_EQ(Run({help}, &out, &err), 0) << help;
    EXPECT_THAT(out, HasSubstr("usage: anorand COMMAND")) << help;
    EXPECT_EQ(err, "") << help;
  }
  for (const char* command : {"fit", "eval", "score-local", "demo-data", "health", "score",
                              "models", "train", "jobs"}) {
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

}  // namespace
}  // namespace anorand::testing
