// Dynamic batching of unary Score (--enable_batching, server/batcher.h),
// over real gRPC on loopback: concurrent requests share forward passes
// (seen on the real metrics endpoint) and each still gets exactly its own
// results; a full queue, a bad record inside a merged pass, a deadline
// spent waiting and explain requests each get their own answer; merged
// passes feed the drift window with every record once; bad
// batching flags are refused with a message naming the flag.
#include <atomic>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

constexpr int kD = 6;

// One sample of the metrics endpoint, by its exact printed name; NaN when
// absent.
double Scrape(int port, const std::string& sample) {
  std::istringstream in(HttpGetRaw(port, "/metrics"));
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, sample.size() + 1, sample + " ") == 0)
      return std::strtod(line.c_str() + sample.size() + 1, nullptr);
  }
  return std::nan("");
}

class BatchingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new v1::ModelFile(TinyModel(kD, 3)); }
  static void TearDownTestSuite() { delete model_; }

  void StartServer(BatchingOptions b) {
    ServerOptions o;
    o.poll_seconds = 0;
    o.enable_batching = true;
    o.batching = b;
    o.drift_sample = 1;
    o.metrics_address = "127.0.0.1:0";
    env_ = std::make_unique<ServerEnv>(o);
    ASSERT_TRUE(env_->Import("m", *model_).ok());
  }

  grpc::Status Score(const v1::ScoreRequest& req, v1::ScoreResponse* resp,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    return env_->scoring()->Score(&ctx, req, resp);
  }

  // Scores of `req`'s records by the model in this process.
  std::vector<float> Local(const v1::ScoreRequest& req) {
    auto local = CompiledModel::Create(*model_);
    EXPECT_TRUE(local.ok());
    const int64_t rows = req.batch().values_size() / kD;
    std::vector<float> score(rows);
    ScoreOutputs out;
    out.score = score.data();
    EXPECT_TRUE((*local)->Score(req.batch().values().data(), rows, out).ok());
    return score;
  }

  static v1::ModelFile* model_;
  std::unique_ptr<ServerEnv> env_;
};
v1::ModelFile* BatchingTest::model_ = nullptr;

TEST_F(BatchingTest, ConcurrentRequestsShareForwardPassesAndEachGetsItsOwnResults) {
  BatchingOptions b;
  b.max_delay_us = 20000;  // wait 20 ms for company: merging is certain
  b.max_records = 64;
  StartServer(b);
  constexpr int kThreads = 8, kCalls = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const int rows = 1 + (t + i) % 5;
        v1::ScoreRequest req = MakeRequest("m", rows, kD, 100 + t * kCalls + i);
        req.set_request_id("t" + std::to_string(t) + "-" + std::to_string(i));
        for (int r = 0; r < rows; ++r) req.mutable_batch()->add_ids(req.request_id() + "/" + std::to_string(r));
        v1::ScoreResponse resp;
        grpc::Status s = Score(req, &resp);
        const std::vector<float> expect = Local(req);
        bool ok = s.ok() && resp.request_id() == req.request_id() &&
                  resp.model_version() == 1 && resp.scores_size() == rows &&
                  resp.is_anomaly_size() == rows && resp.noise_probability_size() == rows &&
                  resp.reconstruction_error_size() == rows && resp.ids_size() == rows;
        for (int r = 0; ok && r < rows; ++r) {
          ok = std::abs(resp.scores(r) - expect[r]) <= 1e-5f &&
               resp.ids(r) == req.batch().ids(r) &&
               resp.is_anomaly(r) == (resp.scores(r) >= resp.threshold());
        }
        if (!ok) {
          ++failures;
          ADD_FAILURE() << req.request_id() << ": " << s.error_message();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const int port = env_->server().metrics_port();
  const double served = Scrape(port, "anorand_batched_requests_sum");
  const double passes = Scrape(port, "anorand_batched_requests_count");
  EXPECT_EQ(served, kThreads * kCalls);
  EXPECT_LT(passes, kThreads * kCalls / 2) << "requests were not merged";
  EXPECT_EQ(Scrape(port, "anorand_scored_records_total{model=\"m\",version=\"1\"}"),
            [] {
              double n = 0;
              for (int t = 0; t < kThreads; ++t)
                for (int i = 0; i < kCalls; ++i) n += 1 + (t + i) % 5;
              return n;
            }());
}

TEST_F(BatchingTest, ABadRecordFailsOnlyItsOwnRequestAndExplainStillExplains) {
  BatchingOptions b;
  b.max_delay_us = 50000;
  StartServer(b);
  constexpr int kThreads = 6;
  std::vector<grpc::Status> status(kThreads);
  std::vector<v1::ScoreResponse> resp(kThreads);
  std::vector<v1::ScoreRequest> req(kThreads);
  for (int t = 0; t < kThreads; ++t) req[t] = MakeRequest("m", 3, kD, 40 + t);
  req[2].mutable_batch()->set_values(2 * kD + 4, std::nanf(""));  // record 2, feature 4
  req[4].set_explain(true);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] { status[t] = Score(req[t], &resp[t]); });
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    if (t == 2) {
      EXPECT_EQ(status[t].error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_THAT(status[t].error_message(), HasSubstr("record 2, feature 4"));
      continue;
    }
    ASSERT_TRUE(status[t].ok()) << t << ": " << status[t].error_message();
    const std::vector<float> expect = Local(req[t]);
    for (int r = 0; r < 3; ++r) EXPECT_NEAR(resp[t].scores(r), expect[r], 1e-5f);
    EXPECT_EQ(resp[t].contributions_size(), t == 4 ? 3 * kD : 0);
  }
}

TEST_F(BatchingTest, AFullQueueRefusesWithResourceExhaustedAndServesTheRest) {
  BatchingOptions b;
  b.max_delay_us = 400000;  // the first pass waits 0.4 s: the queue fills meanwhile
  b.max_queued_records = 2;
  StartServer(b);
  constexpr int kThreads = 6;
  std::vector<grpc::Status> status(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      v1::ScoreResponse resp;
      status[t] = Score(MakeRequest("m", 1, kD, t), &resp);
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0, refused = 0;
  for (const grpc::Status& s : status) {
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      EXPECT_THAT(s.error_message(), HasSubstr("--batch_max_queued_records"));
      ++refused;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(refused, 1);
  // The queue drains: the next request is served.
  v1::ScoreResponse resp;
  EXPECT_TRUE(Score(MakeRequest("m", 1, kD), &resp).ok());
}

TEST_F(BatchingTest, ADeadlineSpentWaitingIsNotScored) {
  BatchingOptions b;
  b.max_delay_us = 1000000;  // far longer than the call's deadline
  StartServer(b);
  v1::ScoreResponse resp;
  grpc::Status s = Score(MakeRequest("m", 2, kD), &resp, std::chrono::milliseconds(200));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // Nothing was scored for it; the server's own count says so.
  const int port = env_->server().metrics_port();
  WaitUntil(  // the server answers just after the client gave up
      [&] {
        return Scrape(port, "anorand_score_requests_total{code=\"DEADLINE_EXCEEDED\","
                            "method=\"Score\",model=\"m\",version=\"1\"}") == 1;
      },
      60);
  EXPECT_EQ(Scrape(port, "anorand_score_requests_total{code=\"DEADLINE_EXCEEDED\",method=\"Score\","
                         "model=\"m\",version=\"1\"}"),
            1);
  EXPECT_TRUE(std::isnan(Scrape(port, "anorand_scored_records_total{model=\"m\",version=\"1\"}")) ||
              Scrape(port, "anorand_scored_records_total{model=\"m\",version=\"1\"}") == 0);
}

TEST_F(BatchingTest, MergedPassesFeedTheDriftWindowWithEveryRecordOnce) {
  BatchingOptions b;
  b.max_delay_us = 20000;
  b.max_records = 64;
  StartServer(b);
  // Every record's feature 0 lies far beyond its training range, so the
  // window's out-of-range share shows that the merged values themselves
  // (not only a count) reached it.
  const float beyond = model_->drift_profile().features(0).max() + 1000;
  constexpr int kThreads = 6, kCalls = 10, kRows = 3;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        v1::ScoreRequest req = MakeRequest("m", kRows, kD, 500 + t * kCalls + i);
        for (int r = 0; r < kRows; ++r) req.mutable_batch()->set_values(r * kD, beyond);
        v1::ScoreResponse resp;
        if (!Score(req, &resp).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  const int port = env_->server().metrics_port();
  EXPECT_LT(Scrape(port, "anorand_batched_requests_count"), kThreads * kCalls / 2)
      << "requests were not merged";
  grpc::ClientContext ctx;
  v1::GetDriftRequest req;
  req.mutable_model()->set_name("m");
  v1::DriftReport r;
  ASSERT_TRUE(env_->models()->GetDrift(&ctx, req, &r).ok());
  ASSERT_TRUE(r.tracked());
  EXPECT_EQ(r.observed_records(), kThreads * kCalls * kRows);
  EXPECT_EQ(r.window_records(), kThreads * kCalls * kRows) << "the window is far from full";
  EXPECT_NEAR(r.out_of_range_ratio(), 1.0, 1e-9);
}

TEST(BatchingFlagsTest, BadValuesAreRefusedNamingTheFlag) {
  struct Case {
    std::function<void(BatchingOptions*)> set;
    const char* flag;
  };
  const std::vector<Case> cases = {
      {[](BatchingOptions* b) { b->max_records = 0; }, "--batch_max_records"},
      {[](BatchingOptions* b) { b->max_delay_us = -1; }, "--batch_max_delay_us"},
      {[](BatchingOptions* b) { b->max_delay_us = 5000000; }, "--batch_max_delay_us"},
      {[](BatchingOptions* b) { b->max_queued_records = 0; }, "--batch_max_queued_records"},
      {[](BatchingOptions* b) { b->max_parallel = -2; }, "--batch_max_parallel"},
  };
  for (const Case& c : cases) {
    ServerOptions o;
    o.enable_batching = true;
    c.set(&o.batching);
    absl::Status s = ValidateServerOptions(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.flag));
  }
}

}  // namespace
}  // namespace anorand::test_support
