// The registry and scoring concurrency without the transport, so that
// ThreadSanitizer sees only our code (scripts/test-tsan; gRPC's libraries
// are not instrumented, so calls through them would be reported as races
// that are not there): scorer threads run the Score path (ScoreHandler over
// the Registry) while a publisher imports and deletes versions and moves an
// alias through the ModelManager and the store poller rescans. Zero failed
// scores, every result from a version that was published, and the retired
// compiled models are freed.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/model_file.h"
#include "server/model_manager.h"
#include "server/score_handler.h"
#include "tests/server/server_env.h"

namespace anorand::testing {
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

}  // namespace
}  // namespace anorand::testing
