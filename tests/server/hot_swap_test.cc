// Hot swap under load: streams and unary callers score while 100 versions
// are published and old ones deleted. Zero failed calls, every result
// tagged with a version that had been published, and the retired versions
// are freed.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

constexpr int kD = 6;
constexpr int kSwaps = 100;

TEST(HotSwapTest, HundredSwapsUnderLoadLoseNoCallAndFreeOldVersions) {
  const std::string a = SerializeModel(TinyModel(kD, 1));
  const std::string b = SerializeModel(TinyModel(kD, 2));
  const int64_t baseline = CompiledModel::LiveCount();
  ServerOptions o;
  o.poll_seconds = 0;
  auto env = std::make_unique<ServerEnv>(o);
  ASSERT_TRUE(env->ImportBytes("m", a).ok());

  std::mutex mu;
  std::set<int64_t> published = {1};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0}, failures{0}, untagged{0};
  auto check = [&](const grpc::Status& s, const v1::ScoreResponse& r) {
    calls.fetch_add(1);
    if (!s.ok()) {
      failures.fetch_add(1);
      ADD_FAILURE() << s.error_message();
      return;
    }
    std::lock_guard lock(mu);
    if (!published.count(r.model_version()) || r.scores_size() == 0) untagged.fetch_add(1);
  };
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {  // streams
    load.emplace_back([&, t] {
      grpc::ClientContext ctx;
      auto stub = env->scoring();
      auto stream = stub->StreamScore(&ctx);
      const v1::ScoreRequest req = MakeRequest("m", 16, kD, t);
      v1::ScoreResponse resp;
      while (!stop.load()) {
        if (!stream->Write(req) || !stream->Read(&resp)) break;
        check(grpc::Status::OK, resp);
      }
      stream->WritesDone();
      grpc::Status s = stream->Finish();
      if (!s.ok()) check(s, resp);
    });
  }
  for (int t = 0; t < 2; ++t) {  // unary callers
    load.emplace_back([&, t] {
      auto stub = env->scoring();
      const v1::ScoreRequest req = MakeRequest("m", 4, kD, 10 + t);
      while (!stop.load()) {
        grpc::ClientContext ctx;
        v1::ScoreResponse resp;
        check(stub->Score(&ctx, req, &resp), resp);
      }
    });
  }
  for (int i = 0; i < kSwaps; ++i) {
    // Recorded before the import: a caller may see the version as soon as
    // the registry has it, before ImportBytes returns.
    const int64_t expected = i + 2;
    {
      std::lock_guard lock(mu);
      published.insert(expected);
    }
    int64_t v = 0;
    ASSERT_TRUE(env->ImportBytes("m", i % 2 ? a : b, 0, "", &v).ok());
    ASSERT_EQ(v, expected);
    if (v > 2) {  // keep the two newest
      grpc::ClientContext ctx;
      v1::DeleteVersionRequest del;
      del.set_model_name("m");
      del.set_version(v - 2);
      v1::DeleteVersionResponse r;
      ASSERT_TRUE(env->models()->DeleteVersion(&ctx, del, &r).ok());
    }
  }
  stop.store(true);
  for (auto& t : load) t.join();
  EXPECT_GT(calls.load(), kSwaps);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(untagged.load(), 0);
  // Two versions remain loaded; every retired one has been freed.
  EXPECT_EQ(CompiledModel::LiveCount(), baseline + 2);
  env.reset();
  EXPECT_EQ(CompiledModel::LiveCount(), baseline);
}

}  // namespace
}  // namespace anorand::test_support
