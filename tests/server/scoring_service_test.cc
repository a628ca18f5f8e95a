// Scoring over real gRPC on loopback: results, every bad input and limit by
// status code and message, stream order, per-message model resolution.
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.grpc.pb.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

constexpr int kD = 8;

class ScoringTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new v1::ModelFile(TinyModel(kD, 1)); }
  static void TearDownTestSuite() { delete model_; }
  void SetUp() override {
    ServerOptions o;
    o.max_batch_records = 1000;
    o.max_streams = 3;
    o.poll_seconds = 0;
    env_ = std::make_unique<ServerEnv>(o);
    ASSERT_TRUE(env_->Import("fraud", *model_, 0, "production").ok());
  }

  grpc::Status Score(const v1::ScoreRequest& req, v1::ScoreResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return env_->scoring()->Score(&ctx, req, resp);
  }

  static v1::ModelFile* model_;
  std::unique_ptr<ServerEnv> env_;
};
v1::ModelFile* ScoringTest::model_ = nullptr;

TEST_F(ScoringTest, ScoreReturnsOneResultPerRecordLikeTheLocalModel) {
  v1::ScoreRequest req = MakeRequest("fraud", 300, kD);
  for (int i = 0; i < 300; ++i) req.mutable_batch()->add_ids("r" + std::to_string(i));
  req.set_request_id("abc");
  req.set_explain(true);
  v1::ScoreResponse resp;
  ASSERT_TRUE(Score(req, &resp).ok());
  EXPECT_EQ(resp.model_name(), "fraud");
  EXPECT_EQ(resp.model_version(), 1);
  EXPECT_EQ(resp.request_id(), "abc");
  ASSERT_EQ(resp.scores_size(), 300);
  ASSERT_EQ(resp.is_anomaly_size(), 300);
  ASSERT_EQ(resp.contributions_size(), 300 * kD);
  EXPECT_EQ(resp.ids(299), "r299");
  auto local = CompiledModel::Create(*model_);
  ASSERT_TRUE(local.ok());
  std::vector<float> expect(300);
  ScoreOutputs out;
  out.score = expect.data();
  ASSERT_TRUE((*local)->Score(req.batch().values().data(), 300, out).ok());
  for (int i = 0; i < 300; ++i) {
    EXPECT_FLOAT_EQ(resp.scores(i), expect[i]);
    EXPECT_EQ(resp.is_anomaly(i), resp.scores(i) >= resp.threshold());
    float sum = 0;
    for (int c = 0; c < kD; ++c) sum += resp.contributions(i * kD + c);
    EXPECT_NEAR(sum, 1.0f, 1e-4);
  }
}

struct BadCase {
  const char* name;
  std::function<void(v1::ScoreRequest*)> mutate;
  grpc::StatusCode code;
  const char* message;
};

TEST_F(ScoringTest, EveryBadInputGetsItsCodeAndAMessageThatSaysWhatToFix) {
  const std::vector<BadCase> cases = {
      {"empty name", [](auto* r) { r->mutable_model()->set_name(""); },
       grpc::StatusCode::INVALID_ARGUMENT, "is invalid: it is empty"},
      {"traversal", [](auto* r) { r->mutable_model()->set_name("../etc"); },
       grpc::StatusCode::INVALID_ARGUMENT, "must start with a letter or digit"},
      {"slash", [](auto* r) { r->mutable_model()->set_name("a/b"); },
       grpc::StatusCode::INVALID_ARGUMENT, "outside the allowed set"},
      {"unknown model", [](auto* r) { r->mutable_model()->set_name("nope"); },
       grpc::StatusCode::NOT_FOUND, "model 'nope' not found"},
      {"unknown version", [](auto* r) { r->mutable_model()->set_version(9); },
       grpc::StatusCode::NOT_FOUND, "has no version 9"},
      {"negative version", [](auto* r) { r->mutable_model()->set_version(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "versions start at 1"},
      {"unknown alias", [](auto* r) { r->mutable_model()->set_alias("canary"); },
       grpc::StatusCode::NOT_FOUND, "has no alias 'canary'"},
      {"bad alias", [](auto* r) { r->mutable_model()->set_alias("Bad Alias"); },
       grpc::StatusCode::INVALID_ARGUMENT, "alias 'Bad Alias' is invalid"},
      {"no features", [](auto* r) { r->mutable_batch()->set_num_features(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "num_features is 0"},
      {"empty batch", [](auto* r) { r->mutable_batch()->clear_values(); },
       grpc::StatusCode::INVALID_ARGUMENT, "the batch is empty"},
      {"ragged", [](auto* r) { r->mutable_batch()->add_values(1.0f); },
       grpc::StatusCode::INVALID_ARGUMENT, "not a multiple of num_features"},
      {"wrong width",
       [](auto* r) {
         r->mutable_batch()->set_num_features(4);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "takes 8 features per record; the batch has 4"},
      {"nan", [](auto* r) { r->mutable_batch()->set_values(13, NAN); },
       grpc::StatusCode::INVALID_ARGUMENT, "record 1, feature 5 is nan"},
      {"inf", [](auto* r) { r->mutable_batch()->set_values(2, INFINITY); },
       grpc::StatusCode::INVALID_ARGUMENT, "record 0, feature 2 is inf"},
      {"ids mismatch", [](auto* r) { r->mutable_batch()->add_ids("only-one"); },
       grpc::StatusCode::INVALID_ARGUMENT, "batch.ids has 1 entries for 4 records"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ScoreRequest req = MakeRequest("fraud", 4, kD);
    c.mutate(&req);
    v1::ScoreResponse resp;
    grpc::Status s = Score(req, &resp);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  // The server is unharmed: a good request still scores.
  v1::ScoreResponse resp;
  EXPECT_TRUE(Score(MakeRequest("fraud", 4, kD), &resp).ok());
}

TEST_F(ScoringTest, BatchOverTheLimitIsResourceExhausted) {
  v1::ScoreResponse resp;
  grpc::Status s = Score(MakeRequest("fraud", 1001, kD), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("the limit is 1000 (--max_batch_records)"));
}

TEST_F(ScoringTest, MessageOverTheSizeLimitIsRefusedByTransport) {
  ServerOptions o;
  o.max_message_bytes = 64 << 10;
  o.poll_seconds = 0;
  ServerEnv small(o);
  ASSERT_TRUE(small.Import("m", *model_).ok());
  grpc::ClientContext ctx;
  v1::ScoreResponse resp;
  grpc::Status s = small.scoring()->Score(&ctx, MakeRequest("m", 3000, kD), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(ScoringTest, StreamAnswersEveryRequestInOrderAndResolvesPerMessage) {
  grpc::ClientContext ctx;
  auto stream = env_->scoring()->StreamScore(&ctx);
  for (int i = 0; i < 50; ++i) {
    v1::ScoreRequest req = MakeRequest("fraud", 1 + i % 7, kD, i);
    req.set_request_id(std::to_string(i));
    ASSERT_TRUE(stream->Write(req));
    if (i == 25) {  // publish version 2 mid-stream; later messages use it
      ASSERT_TRUE(env_->Import("fraud", TinyModel(kD, 2)).ok());
    }
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.request_id(), std::to_string(i));
    EXPECT_EQ(resp.scores_size(), 1 + i % 7);
    EXPECT_EQ(resp.model_version(), i <= 25 ? 1 : 2);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ScoringTest, StreamErrorEndsTheStreamAndNamesTheRequest) {
  grpc::ClientContext ctx;
  auto stream = env_->scoring()->StreamScore(&ctx);
  ASSERT_TRUE(stream->Write(MakeRequest("fraud", 2, kD)));
  v1::ScoreResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  v1::ScoreRequest bad = MakeRequest("fraud", 2, kD);
  bad.mutable_batch()->set_num_features(3);
  stream->Write(bad);
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("request 1: "));
}

TEST_F(ScoringTest, StreamsBeyondTheLimitAreRefused) {
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::ScoreRequest, v1::ScoreResponse>>> open;
  auto stub = env_->scoring();
  for (int i = 0; i < 3; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    open.push_back(stub->StreamScore(ctxs.back().get()));
    ASSERT_TRUE(open.back()->Write(MakeRequest("fraud", 1, kD)));
    v1::ScoreResponse resp;
    ASSERT_TRUE(open.back()->Read(&resp));  // the stream is really open
  }
  grpc::ClientContext ctx;
  auto extra = stub->StreamScore(&ctx);
  extra->Write(MakeRequest("fraud", 1, kD));
  v1::ScoreResponse resp;
  EXPECT_FALSE(extra->Read(&resp));
  grpc::Status s = extra->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_streams"));
  for (auto& st : open) {
    st->WritesDone();
    EXPECT_TRUE(st->Finish().ok());
  }
}

// Resource safety: an idle stream is closed, a client that stops reading
// is cut off (its stream slot comes back), an expired deadline is not scored.
class StreamIdleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.max_streams = 1;
    o.poll_seconds = 0;
    o.stream_idle_seconds = 0.5;
    env_ = std::make_unique<ServerEnv>(o);
    ASSERT_TRUE(env_->Import("fraud", TinyModel(kD, 1)).ok());
  }
  // Opens a stream and checks that it answers: the one slot is free again
  // (the server releases it when the closed call's last callback has run,
  // just after the client saw the end, so a refusal is retried for a while).
  void ExpectStreamServes() {
    grpc::Status last;
    const bool served = WaitUntil(
        [&] {
          grpc::ClientContext ctx;
          auto stream = env_->scoring()->StreamScore(&ctx);
          v1::ScoreResponse resp;
          if (stream->Write(MakeRequest("fraud", 2, kD)) && stream->Read(&resp)) {
            EXPECT_EQ(resp.scores_size(), 2);
            stream->WritesDone();
            last = stream->Finish();
            EXPECT_TRUE(last.ok()) << last.error_message();
            return true;
          }
          last = stream->Finish();
          // Only a refusal for want of a slot is retried.
          return last.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED;
        },
        60, 50);
    EXPECT_TRUE(served && last.ok()) << "the stream slot was never released: "
                                     << last.error_code() << " " << last.error_message();
  }
  std::unique_ptr<ServerEnv> env_;
};

TEST_F(StreamIdleTest, IdleStreamIsClosedWithDeadlineExceededAndItsSlotFreed) {
  grpc::ClientContext ctx;
  auto stream = env_->scoring()->StreamScore(&ctx);
  // Active: requests every 100 ms for 1.5 s (three idle periods) keep it open.
  for (int i = 0; i < 15; ++i) {
    ASSERT_TRUE(stream->Write(MakeRequest("fraud", 1, kD))) << i;
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp)) << i;
    // Time is what this test is about: gaps shorter than the idle period.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Then silent: the server ends it.
  v1::ScoreResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("--stream_idle_seconds"));
  ExpectStreamServes();
}

TEST_F(StreamIdleTest, ClientThatStopsReadingIsCutOff) {
  grpc::ClientContext ctx;
  auto stream = env_->scoring()->StreamScore(&ctx);
  // Large responses that are never read fill the flow-control windows; the
  // server then cannot write (or cannot deliver its end) and cancels the
  // stream within two idle periods, which makes the client's writes fail.
  const v1::ScoreRequest big = MakeRequest("fraud", 1000, kD);
  bool writes_failed = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    if (!stream->Write(big)) {
      writes_failed = true;
      break;
    }
  }
  ASSERT_TRUE(writes_failed) << "the stalled stream was never cut off";
  v1::ScoreResponse resp;
  while (stream->Read(&resp)) {  // what the transport had buffered
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ExpectStreamServes();
}

TEST_F(StreamIdleTest, ScoreWhoseDeadlineHasPassedIsNotScored) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  v1::ScoreResponse resp;
  grpc::Status s = env_->scoring()->Score(&ctx, MakeRequest("fraud", 1, kD), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(resp.scores_size(), 0);
}

// A long pass on one stream, held after scoring and before its answer on
// the thread that scored it, blocks no other call: a new stream opens and
// is answered, the health check answers, an import compiles and publishes,
// a listing answers. Each of them would wait behind the pass if scoring held
// the stream's lock or a service-wide one, or if they ran on its thread.
TEST(LongPassTest, ANewStreamHealthAndAnImportAreAnsweredWhileAPassRuns) {
  constexpr int64_t kLarge = 20000;
  struct Hold {
    absl::Notification started, release;
  };
  auto hold = std::make_shared<Hold>();
  ServerOptions o;
  o.poll_seconds = 0;
  o.max_batch_records = kLarge;
  o.stream_idle_seconds = 30;  // the reaper runs, and closes nothing here
  o.after_score = [hold](int64_t records) {
    if (records == kLarge) {
      hold->started.Notify();
      hold->release.WaitForNotification();
    }
  };
  ServerEnv env(o);
  struct ReleaseOnExit {
    Hold* hold;
    ~ReleaseOnExit() {
      if (!hold->release.HasBeenNotified()) hold->release.Notify();
    }
  } release_on_exit{hold.get()};
  ASSERT_TRUE(env.Import("m", TinyModel(kD, 1)).ok());
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(60); };

  grpc::ClientContext long_ctx;
  long_ctx.set_deadline(deadline());
  auto long_stream = env.scoring()->StreamScore(&long_ctx);
  ASSERT_TRUE(long_stream->Write(MakeRequest("m", kLarge, kD)));
  ASSERT_TRUE(hold->started.WaitForNotificationWithTimeout(absl::Seconds(60)));

  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    auto stream = env.scoring()->StreamScore(&ctx);
    ASSERT_TRUE(stream->Write(MakeRequest("m", 3, kD)));
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.scores_size(), 3);
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
  {
    auto health = grpc::health::v1::Health::NewStub(env.channel());
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("anorand.v1.Scoring");
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  int64_t published = 0;
  ASSERT_TRUE(env.Import("other", TinyModel(64, 2, 2000, 2), 0, "", &published).ok());
  EXPECT_EQ(published, 1);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    v1::ListModelsRequest req;
    v1::ListModelsResponse resp;
    ASSERT_TRUE(env.models()->ListModels(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.models_size(), 2);
  }
  // All of the above ran while the pass was held; now it may answer.
  hold->release.Notify();
  v1::ScoreResponse long_resp;
  ASSERT_TRUE(long_stream->Read(&long_resp));
  EXPECT_EQ(long_resp.scores_size(), kLarge);
  long_stream->WritesDone();
  EXPECT_TRUE(long_stream->Finish().ok());
}

}  // namespace
}  // namespace anorand::test_support
