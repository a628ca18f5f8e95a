// A version compiles with no administrative lock held (model_manager.h):
// while a load is held in the before_model_load hook, scoring the other
// versions, health checks, listings and administrative calls answer, and
// the rules for a LOADING version hold (Unload/Delete refused, LoadVersion
// waits for the load in flight, the byte cap counts it, an alias another
// replica moved to it keeps serving the old version).
#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/model_store.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

constexpr int kD = 6;

// Holds the load of one model version until released; counts its loads.
struct LoadGate {
  std::string model;
  int64_t version = 0;
  absl::Notification started, released;
  std::atomic<int> loads{0};

  void Hook(const std::string& m, int64_t v) {
    if (m != model || v != version) return;
    if (loads.fetch_add(1) == 0) {
      started.Notify();
      released.WaitForNotification();
    }
  }
  void Release() {
    if (!released.HasBeenNotified()) released.Notify();
  }
};

// Releases the gate before the server stops (its poller may be in the hook).
struct ReleaseOnExit {
  LoadGate* gate;
  ~ReleaseOnExit() { gate->Release(); }
};

std::unique_ptr<ServerEnv> StartWithGate(const std::shared_ptr<LoadGate>& gate,
                                         ServerOptions o = {}) {
  o.before_model_load = [gate](const std::string& m, int64_t v) { gate->Hook(m, v); };
  return std::make_unique<ServerEnv>(o);
}

std::unique_ptr<grpc::ClientContext> WithDeadline() {
  // Bounds a call that would block on a held load: it then fails with
  // DEADLINE_EXCEEDED instead of hanging the test.
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

v1::VersionState StateOf(ServerEnv& env, const std::string& model, int64_t version) {
  v1::GetModelRequest req;
  req.mutable_model()->set_name(model);
  v1::ModelInfo info;
  auto ctx = WithDeadline();
  EXPECT_TRUE(env.models()->GetModel(ctx.get(), req, &info).ok());
  for (const auto& v : info.versions()) {
    if (v.version() == version) return v.state();
  }
  return v1::VERSION_STATE_UNSPECIFIED;
}

grpc::Status Score(ServerEnv& env, const std::string& model, int64_t version,
                   const std::string& alias, v1::ScoreResponse* resp) {
  v1::ScoreRequest req = MakeRequest(model, 4, kD);
  if (version) req.mutable_model()->set_version(version);
  if (!alias.empty()) req.mutable_model()->set_alias(alias);
  auto ctx = WithDeadline();
  return env.scoring()->Score(ctx.get(), req, resp);
}

grpc::Status LoadVersion(ServerEnv& env, const std::string& model, int64_t version) {
  v1::LoadVersionRequest req;
  req.set_model_name(model);
  req.set_version(version);
  v1::VersionInfo info;
  auto ctx = WithDeadline();
  return env.models()->LoadVersion(ctx.get(), req, &info);
}

TEST(ModelLoadingTest, ServesScoresHealthAndAdminCallsWhileANewVersionCompiles) {
  auto gate = std::make_shared<LoadGate>();
  gate->model = "m";
  gate->version = 2;
  ServerOptions o;
  o.poll_seconds = 0.05;
  auto env = StartWithGate(gate, o);
  ReleaseOnExit release{gate.get()};
  ASSERT_TRUE(env->Import("m", TinyModel(kD, 1)).ok());
  // Another replica publishes version 2; this server's poller loads it.
  ASSERT_TRUE(ModelStore(env->model_dir()).Publish("m", 2, SerializeModel(TinyModel(kD, 2))).ok());
  gate->started.WaitForNotification();

  v1::ScoreResponse resp;
  ASSERT_TRUE(Score(*env, "m", 1, "", &resp).ok());
  EXPECT_EQ(resp.model_version(), 1);
  ASSERT_TRUE(Score(*env, "m", 0, "", &resp).ok());
  EXPECT_EQ(resp.model_version(), 1) << "the newest READY version serves meanwhile";
  EXPECT_EQ(Score(*env, "m", 2, "", &resp).error_code(), grpc::StatusCode::UNAVAILABLE);

  auto health = grpc::health::v1::Health::NewStub(env->channel());
  grpc::health::v1::HealthCheckRequest hreq;
  hreq.set_service("anorand.v1.Scoring");
  grpc::health::v1::HealthCheckResponse hresp;
  auto hctx = WithDeadline();
  ASSERT_TRUE(health->Check(hctx.get(), hreq, &hresp).ok());
  EXPECT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  EXPECT_EQ(StateOf(*env, "m", 2), v1::VERSION_STATE_LOADING);

  // Administrative calls that need the manager's lock do not wait for the
  // compile.
  {
    v1::SetAliasRequest req;
    req.set_model_name("m");
    req.set_alias("prod");
    req.set_version(1);
    v1::ModelInfo info;
    auto ctx = WithDeadline();
    grpc::Status s = env->models()->SetAlias(ctx.get(), req, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_TRUE(env->Import("other", TinyModel(kD, 3)).ok());
  {
    v1::UnloadVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    v1::VersionInfo info;
    auto ctx = WithDeadline();
    grpc::Status s = env->models()->UnloadVersion(ctx.get(), req, &info);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_NE(s.error_message().find("is loading"), std::string::npos) << s.error_message();
  }
  {
    v1::DeleteVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    req.set_force(true);
    v1::DeleteVersionResponse r;
    auto ctx = WithDeadline();
    grpc::Status s = env->models()->DeleteVersion(ctx.get(), req, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  }

  // LoadVersion of the version in flight waits for that load, which is the
  // only compile of it.
  grpc::Status loaded;
  std::thread loader([&] { loaded = LoadVersion(*env, "m", 2); });
  gate->Release();
  loader.join();
  EXPECT_TRUE(loaded.ok()) << loaded.error_message();
  EXPECT_EQ(gate->loads.load(), 1);
  EXPECT_EQ(StateOf(*env, "m", 2), v1::VERSION_STATE_READY);
  ASSERT_TRUE(Score(*env, "m", 2, "", &resp).ok());
  EXPECT_EQ(resp.model_version(), 2);
}

TEST(ModelLoadingTest, StoreWritesDoNotWaitForALoadVersionCallThatCompiles) {
  // LoadVersion compiles on an intake thread (one here), the store writes
  // run on their own thread: with a LoadVersion call held in its compile,
  // alias and shadow calls answer (version 3 serves, version 1 shadows
  // it), and scoring goes on.
  auto gate = std::make_shared<LoadGate>();
  gate->model = "m";
  gate->version = 2;
  ServerOptions o;
  o.poll_seconds = 0;
  o.intake_threads = 1;
  auto env = StartWithGate(gate, o);
  ReleaseOnExit release{gate.get()};
  ASSERT_TRUE(env->Import("m", TinyModel(kD, 1)).ok());
  ASSERT_TRUE(env->Import("m", TinyModel(kD, 2)).ok());
  ASSERT_TRUE(env->Import("m", TinyModel(kD, 3)).ok());
  {
    v1::UnloadVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    v1::VersionInfo info;
    auto ctx = WithDeadline();
    ASSERT_TRUE(env->models()->UnloadVersion(ctx.get(), req, &info).ok());
  }
  grpc::Status loaded;
  std::thread loader([&] { loaded = LoadVersion(*env, "m", 2); });
  gate->started.WaitForNotification();
  {
    v1::SetAliasRequest req;
    req.set_model_name("m");
    req.set_alias("prod");
    req.set_version(1);
    v1::ModelInfo info;
    auto ctx = WithDeadline();
    grpc::Status s = env->models()->SetAlias(ctx.get(), req, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(info.aliases().count("prod") ? info.aliases().at("prod") : 0, 1);
  }
  {
    v1::SetShadowRequest req;
    req.set_model_name("m");
    req.set_version(1);
    req.set_sample_fraction(0.5);
    v1::ModelInfo info;
    auto ctx = WithDeadline();
    grpc::Status s = env->models()->SetShadow(ctx.get(), req, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::ClearShadowRequest clear;
    clear.set_model_name("m");
    auto cctx = WithDeadline();
    s = env->models()->ClearShadow(cctx.get(), clear, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  v1::ScoreResponse resp;
  EXPECT_TRUE(Score(*env, "m", 0, "prod", &resp).ok());
  EXPECT_EQ(StateOf(*env, "m", 2), v1::VERSION_STATE_LOADING);
  gate->Release();
  loader.join();
  EXPECT_TRUE(loaded.ok()) << loaded.error_message();
  EXPECT_EQ(StateOf(*env, "m", 2), v1::VERSION_STATE_READY);
}

TEST(ModelLoadingTest, ALoadingVersionCountsAgainstTheLoadedBytesCap) {
  const std::string bytes = SerializeModel(TinyModel(kD, 1));
  auto gate = std::make_shared<LoadGate>();
  gate->model = "m";
  gate->version = 2;
  ServerOptions o;
  o.poll_seconds = 0;
  // Room for two models, not three.
  o.max_loaded_model_bytes = static_cast<int64_t>(bytes.size()) * 5 / 2;
  auto env = StartWithGate(gate, o);
  ReleaseOnExit release{gate.get()};
  ASSERT_TRUE(env->ImportBytes("m", bytes).ok());
  ASSERT_TRUE(env->ImportBytes("m", bytes).ok());
  {
    v1::UnloadVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    v1::VersionInfo info;
    auto ctx = WithDeadline();
    ASSERT_TRUE(env->models()->UnloadVersion(ctx.get(), req, &info).ok());
  }
  grpc::Status loaded;
  std::thread loader([&] { loaded = LoadVersion(*env, "m", 2); });
  gate->started.WaitForNotification();
  // Version 1 is READY and version 2 LOADING: a third model passes the cap.
  grpc::Status third = env->ImportBytes("m", bytes);
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << third.error_message();
  EXPECT_NE(third.error_message().find("--max_loaded_model_bytes"), std::string::npos);
  gate->Release();
  loader.join();
  EXPECT_TRUE(loaded.ok()) << loaded.error_message();
  EXPECT_EQ(StateOf(*env, "m", 2), v1::VERSION_STATE_READY);
}

TEST(ModelLoadingTest, AnAliasMovedToALoadingVersionKeepsServingTheOldOneUntilItIsReady) {
  auto gate = std::make_shared<LoadGate>();
  gate->model = "m";
  gate->version = 2;
  ServerOptions o;
  o.poll_seconds = 0.05;
  auto env = StartWithGate(gate, o);
  ReleaseOnExit release{gate.get()};
  ASSERT_TRUE(env->Import("m", TinyModel(kD, 1), 0, "prod").ok());
  // Another replica publishes version 2 and moves the alias to it.
  ModelStore store(env->model_dir());
  ASSERT_TRUE(store.Publish("m", 2, SerializeModel(TinyModel(kD, 2))).ok());
  {
    auto lock = store.LockAliases();
    ASSERT_TRUE(lock.ok());
    ASSERT_TRUE(store.WriteAliases("m", {{"prod", 2}}, *lock).ok());
  }
  gate->started.WaitForNotification();
  v1::ScoreResponse resp;
  grpc::Status s = Score(*env, "m", 0, "prod", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.model_version(), 1);
  gate->Release();
  EXPECT_TRUE(LoadVersion(*env, "m", 2).ok());
}

}  // namespace
}  // namespace anorand::test_support
