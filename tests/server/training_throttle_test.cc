// Training yields to scoring (--training_yield_inflight,
// server/training_throttle.h), over real gRPC on loopback: a job trained
// while clients keep scoring pauses (its progress and the
// anorand_training_throttled_seconds_total counter say for how long) and
// still finishes; with the flag at 0, or with no scoring, it never pauses;
// a cancel that arrives during a pause ends the pause and the job; bad
// throttle settings are refused naming the flag.
#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
constexpr int kD = 5;

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

constexpr char kThrottled[] = "anorand_training_throttled_seconds_total";

// Clients scoring without a break on their own channels until Stop().
class ScoringLoadClients {
 public:
  ScoringLoadClients(const std::string& address, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, address, t] {
        grpc::ChannelArguments args;
        args.SetInt("anorand.test.channel", t);  // one connection per client
        auto stub = v1::Scoring::NewStub(
            grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
        const v1::ScoreRequest req = MakeRequest("m", 4, kD, 11 + t);
        while (!stop_.load()) {
          grpc::ClientContext ctx;
          v1::ScoreResponse resp;
          if (stub->Score(&ctx, req, &resp).ok()) {
            scored_.fetch_add(1);
            if (!first_seen_.exchange(true)) first_.Notify();  // one of the threads
          } else {
            errors_.fetch_add(1);
          }
        }
      });
    }
  }
  ~ScoringLoadClients() { Stop(); }
  // Blocks until some request has been answered.
  void WaitUntilScoring() { first_.WaitForNotification(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int64_t scored() const { return scored_.load(); }
  int64_t errors() const { return errors_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> scored_{0}, errors_{0};
  std::atomic<bool> first_seen_{false};  // the first successful Score, by any thread
  absl::Notification first_;
  std::vector<std::thread> threads_;
};

class TrainingThrottleTest : public ::testing::Test {
 protected:
  void StartServer(int yield_inflight, absl::Duration max_pause,
                   std::function<void(const TrainingPause&)> hook = {}) {
    ServerOptions o;
    o.poll_seconds = 0;
    o.metrics_address = "127.0.0.1:0";
    o.training_throttle.yield_inflight = yield_inflight;
    o.training_throttle.max_pause = max_pause;
    o.on_training_pause = [this, hook](const TrainingPause& p) {
      {
        absl::MutexLock lock(&mu_);
        (p.ended ? ended_ : begun_).push_back(p);
      }
      if (hook) hook(p);
    };
    env_ = std::make_unique<ServerEnv>(o);
    ASSERT_TRUE(env_->Import("m", TinyModel(kD, 3)).ok());
    stub_ = v1::Training::NewStub(env_->channel());
  }
  std::string Address() { return "127.0.0.1:" + std::to_string(env_->server().port()); }

  // Submits a small network on `rows` demo rows as a dense upload.
  v1::Job Submit(int rows, int epochs) {
    v1::JobSpec spec;
    spec.set_model_name("trained");
    spec.set_upload_format(v1::UPLOAD_FORMAT_DENSE);
    spec.mutable_params()->set_max_epochs(epochs);
    spec.mutable_params()->set_min_steps(0);
    spec.mutable_params()->set_patience(0);
    spec.mutable_params()->add_encoder_widths(8);
    spec.mutable_params()->add_decoder_widths(8);
    const Dataset d = DemoData(rows, kD, 5);
    grpc::ClientContext ctx;
    v1::Job job;
    auto w = stub_->SubmitJob(&ctx, &job);
    v1::SubmitJobRequest head;
    *head.mutable_spec() = spec;
    w->Write(head);
    v1::SubmitJobRequest chunk;
    chunk.mutable_chunk()->set_num_features(kD);
    chunk.mutable_chunk()->mutable_values()->Add(d.x.begin(), d.x.end());
    w->Write(chunk);
    w->WritesDone();
    grpc::Status s = w->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }
  // Every progress message of `id` up to the terminal one.
  std::vector<v1::JobProgress> Watch(const std::string& id) {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_job_id(id);
    auto r = stub_->WatchJob(&ctx, req);
    std::vector<v1::JobProgress> out;
    v1::JobProgress p;
    while (r->Read(&p)) out.push_back(p);
    EXPECT_TRUE(r->Finish().ok());
    return out;
  }
  v1::Job Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(stub_->GetJob(&ctx, req, &job).ok());
    return job;
  }
  size_t Begun() {
    absl::MutexLock lock(&mu_);
    return begun_.size();
  }
  std::vector<TrainingPause> Ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

  std::unique_ptr<ServerEnv> env_;
  std::unique_ptr<v1::Training::Stub> stub_;
  absl::Mutex mu_;
  std::vector<TrainingPause> begun_ ABSL_GUARDED_BY(mu_), ended_ ABSL_GUARDED_BY(mu_);
};

TEST_F(TrainingThrottleTest, PausesUnderSustainedScoringLoadAndStillFinishes) {
  StartServer(/*yield_inflight=*/1, absl::Milliseconds(5));
  ScoringLoadClients load(Address(), 2);
  load.WaitUntilScoring();
  const v1::Job job = Submit(2000, 3);
  const std::vector<v1::JobProgress> progress = Watch(job.id());
  load.Stop();
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().state(), v1::JOB_STATE_SUCCEEDED) << progress.back().message();
  EXPECT_GT(progress.back().throttled_seconds(), 0);
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i].throttled_seconds(), progress[i - 1].throttled_seconds());
  }
  const v1::Job after = Get(job.id());
  EXPECT_GT(after.published_version(), 0);
  EXPECT_EQ(after.progress().throttled_seconds(), progress.back().throttled_seconds());
  EXPECT_LE(after.progress().throttled_seconds(), after.progress().elapsed_seconds());
  EXPECT_EQ(load.errors(), 0);
  // The counter adds up the same pauses as the job's progress.
  const auto ended = Ended();
  ASSERT_FALSE(ended.empty());
  EXPECT_EQ(Begun(), ended.size());
  double sum = 0;
  for (const TrainingPause& p : ended) sum += p.seconds;
  EXPECT_NEAR(sum, after.progress().throttled_seconds(), 1e-6);
  EXPECT_NEAR(Scrape(env_->server().metrics_port(), kThrottled), sum, 1e-6);
}

TEST_F(TrainingThrottleTest, NeverPausesWithTheFlagAtZero) {
  StartServer(/*yield_inflight=*/0, absl::Milliseconds(5));
  ScoringLoadClients load(Address(), 2);
  load.WaitUntilScoring();
  const v1::Job job = Submit(2000, 3);
  const std::vector<v1::JobProgress> progress = Watch(job.id());
  const int64_t scored_while_training = load.scored();
  load.Stop();
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().state(), v1::JOB_STATE_SUCCEEDED) << progress.back().message();
  EXPECT_GT(scored_while_training, 0);
  for (const v1::JobProgress& p : progress) EXPECT_EQ(p.throttled_seconds(), 0);
  EXPECT_EQ(Begun(), 0u);
  // Exported, at zero.
  EXPECT_EQ(Scrape(env_->server().metrics_port(), kThrottled), 0);
}

TEST_F(TrainingThrottleTest, NeverPausesWhileScoringIsIdle) {
  StartServer(/*yield_inflight=*/1, absl::Milliseconds(5));
  const v1::Job job = Submit(2000, 3);
  const std::vector<v1::JobProgress> progress = Watch(job.id());
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().state(), v1::JOB_STATE_SUCCEEDED) << progress.back().message();
  EXPECT_EQ(progress.back().throttled_seconds(), 0);
  EXPECT_EQ(Begun(), 0u);
  EXPECT_EQ(Scrape(env_->server().metrics_port(), kThrottled), 0);
}

TEST_F(TrainingThrottleTest, CancelDuringAPauseEndsThePauseAndTheJob) {
  // The first pause is held (in the hook, on the training thread) until the
  // cancel has been accepted; the load never stops and a pause may last a
  // minute, so only the cancel can end it.
  // The hook may run on more than one thread at once: only the first
  // pause's call notifies.
  absl::Notification paused, cancel_accepted;
  std::atomic<bool> first_pause_seen{false};
  StartServer(/*yield_inflight=*/1, absl::Seconds(60), [&](const TrainingPause& p) {
    if (p.ended || first_pause_seen.exchange(true)) return;
    paused.Notify();
    cancel_accepted.WaitForNotificationWithTimeout(absl::Seconds(60));
  });
  ScoringLoadClients load(Address(), 2);
  load.WaitUntilScoring();
  const v1::Job job = Submit(2000, 100000);
  ASSERT_TRUE(paused.WaitForNotificationWithTimeout(absl::Seconds(120)))
      << "the job never paused under load";
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id(job.id());
    v1::Job cancelled;
    grpc::Status s = stub_->CancelJob(&ctx, req, &cancelled);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  cancel_accepted.Notify();
  const std::vector<v1::JobProgress> progress = Watch(job.id());
  load.Stop();
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_GT(progress.back().throttled_seconds(), 0);
  const auto ended = Ended();
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].why, TrainingPause::End::kCancelled);
  EXPECT_EQ(Get(job.id()).published_version(), 0);
}

TEST(TrainingThrottleOptionsTest, BadSettingsAreRefusedNamingTheFlag) {
  struct Case {
    int yield_inflight;
    absl::Duration max_pause;
    std::string message;
  };
  for (const Case& c : {Case{-1, absl::Milliseconds(20), "--training_yield_inflight must be in"},
                        Case{1000001, absl::Milliseconds(20), "--training_yield_inflight"},
                        Case{1, absl::ZeroDuration(), "--training_yield_max_pause_ms must be in"},
                        Case{1, absl::Seconds(61), "--training_yield_max_pause_ms"}}) {
    TempDir dir;
    ServerOptions o;
    o.grpc_address = "127.0.0.1:0";
    o.model_dir = dir.path();
    o.training_throttle.yield_inflight = c.yield_inflight;
    o.training_throttle.max_pause = c.max_pause;
    auto server = AnorandServer::Start(o);
    ASSERT_FALSE(server.ok()) << c.message;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace anorand::test_support
