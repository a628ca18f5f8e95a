// The registry and scoring concurrency without the transport, so that
// ThreadSanitizer sees only our code (scripts/test-tsan; gRPC's libraries
// are not instrumented, so calls through them would be reported as races
// that are not there): scorer threads run the Score path (ScoreHandler over
// the Registry) while a publisher imports and deletes versions and moves an
// alias through the ModelManager and the store poller rescans. Zero failed
// scores, every result from a version that was published, and the retired
// compiled models are freed.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/model_file.h"
#include "server/batcher.h"
#include "server/model_manager.h"
#include "server/score_handler.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

constexpr int kD = 6;

TEST(RegistryConcurrencyTest, ScoringDuringPublishesDeletesAndAliasMoves) {
  const std::string a = SerializeModel(TinyModel(kD, 1));
  const std::string b = SerializeModel(TinyModel(kD, 2));
  const int64_t baseline = CompiledModel::LiveCount();
  TempDir dir;
  {
    Registry registry;
    ModelManager manager(ModelStore(dir.path() + "/models"), &registry);
    ASSERT_TRUE(manager.Start(/*poll_seconds=*/0.01).ok());
    ASSERT_TRUE(manager.Import("m", 0, a, "production").ok());
    ScoreHandler handler(&registry, ScoreLimits{});

    std::mutex mu;
    std::set<int64_t> published = {1};
    std::atomic<bool> stop{false};
    std::atomic<int64_t> scores{0};
    auto scorer = [&](bool by_alias, uint64_t seed) {
      v1::ScoreRequest req = MakeRequest("m", 4, kD, seed);
      if (by_alias) req.mutable_model()->set_alias("production");
      while (!stop.load()) {
        v1::ScoreResponse resp;
        absl::Status s = handler.Score(req, &resp);
        ASSERT_TRUE(s.ok()) << s;
        ASSERT_EQ(resp.scores_size(), 4);
        std::lock_guard lock(mu);
        ASSERT_TRUE(published.count(resp.model_version())) << resp.model_version();
        scores.fetch_add(1);
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back(scorer, i == 0, 10 + i);

    for (int swap = 0; swap < 40; ++swap) {
      const bool aliased = swap % 2 == 0;
      {
        std::lock_guard lock(mu);  // published before any scorer can see it
        auto v = manager.Import("m", 0, swap % 2 ? a : b, aliased ? "production" : "");
        ASSERT_TRUE(v.ok()) << v.status();
        published.insert(*v);
      }
      // Retire the oldest version that no alias points at, leaving two.
      auto model = registry.GetModel("m");
      ASSERT_TRUE(model.has_value());
      if (model->versions.size() > 2) {
        for (const auto& [version, entry] : model->versions) {
          bool aliased_version = false;
          for (const auto& [alias, target] : model->aliases) aliased_version |= target == version;
          if (aliased_version) continue;
          ASSERT_TRUE(manager.DeleteVersion("m", version, /*force=*/false).ok());
          break;
        }
      }
    }
    stop = true;
    for (auto& t : threads) t.join();
    EXPECT_GT(scores.load(), 40);
    manager.Stop();
  }
  EXPECT_EQ(CompiledModel::LiveCount(), baseline) << "retired versions were not freed";
}

// The dynamic batcher (batcher.h) the same way: submitters on six threads,
// each waiting for its answer, while versions are published and retired;
// one forward pass per model at a time, so requests queue and merge. Every
// request is answered exactly once, with its own number of results, from a
// published version, and the retired models are freed.
TEST(RegistryConcurrencyTest, BatcherUnderConcurrentSubmitsAndPublishes) {
  const std::string a = SerializeModel(TinyModel(kD, 1));
  const std::string b = SerializeModel(TinyModel(kD, 2));
  const int64_t baseline = CompiledModel::LiveCount();
  TempDir dir;
  for (int64_t delay_us : {0, 300}) {
    Registry registry;
    ModelManager manager(ModelStore(dir.path() + "/models" + std::to_string(delay_us)), &registry);
    ASSERT_TRUE(manager.Start(/*poll_seconds=*/0).ok());
    ASSERT_TRUE(manager.Import("m", 0, a, "").ok());
    ScoreHandler handler(&registry, ScoreLimits{});
    BatchingOptions options;
    options.max_parallel = 1;
    options.max_delay_us = delay_us;
    options.max_records = 16;
    std::atomic<int64_t> passes{0}, merged{0};
    DynamicBatcher batcher(&handler, options, [&](int requests, int64_t) {
      passes.fetch_add(1);
      merged.fetch_add(requests);
    });
    std::mutex mu;
    std::set<int64_t> published = {1};
    std::atomic<bool> stop{false};
    std::atomic<int64_t> answered{0};
    auto submitter = [&](uint64_t seed) {
      int i = 0;
      while (!stop.load()) {
        const int rows = 1 + (i++ % 3);
        v1::ScoreRequest req = MakeRequest("m", rows, kD, seed + i);
        v1::ScoreResponse resp;
        std::mutex done_mu;
        std::condition_variable done_cv;
        int calls = 0;
        absl::Status status;
        batcher.Submit(&req, &resp, DynamicBatcher::Clock::time_point::max(),
                       [&](const absl::Status& s) {
                         std::lock_guard lock(done_mu);
                         status = s;
                         ++calls;
                         done_cv.notify_all();
                       });
        std::unique_lock lock(done_mu);
        done_cv.wait(lock, [&] { return calls > 0; });
        ASSERT_EQ(calls, 1);
        ASSERT_TRUE(status.ok()) << status;
        ASSERT_EQ(resp.scores_size(), rows);
        std::lock_guard plock(mu);
        ASSERT_TRUE(published.count(resp.model_version())) << resp.model_version();
        answered.fetch_add(1);
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) threads.emplace_back(submitter, 1000 * i);
    for (int swap = 0; swap < 20; ++swap) {
      {
        std::lock_guard lock(mu);
        auto v = manager.Import("m", 0, swap % 2 ? a : b, "");
        ASSERT_TRUE(v.ok()) << v.status();
        published.insert(*v);
      }
      auto model = registry.GetModel("m");
      ASSERT_TRUE(model.has_value());
      if (model->versions.size() > 2) {
        ASSERT_TRUE(manager.DeleteVersion("m", model->versions.begin()->first, false).ok());
      }
    }
    stop = true;
    for (auto& t : threads) t.join();
    EXPECT_GT(answered.load(), 20);
    EXPECT_EQ(merged.load(), answered.load());
    if (delay_us > 0) {
      EXPECT_LT(passes.load(), answered.load()) << "nothing was merged";
    }
    EXPECT_EQ(batcher.queued_records(), 0);
    manager.Stop();
  }
  EXPECT_EQ(CompiledModel::LiveCount(), baseline) << "retired versions were not freed";
}

}  // namespace
}  // namespace anorand::test_support
