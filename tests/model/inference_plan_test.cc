// The compiled plan runs each call on the calling thread alone, whatever
// that thread's OpenMP setting: a server thread (OpenMP's default is one
// thread per core) must not fork every layer onto the other cores, and the
// caller's own setting is left as it was.
#include <dirent.h>
#include <omp.h>

#include <cmath>
#include <thread>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/inference_plan.h"
#include "model/normalizer.h"
#include "model/trainer.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

// The default preset, one epoch: an ensemble of `members` networks.
v1::TrainingParams Quick(int members) {
  v1::TrainingParams p;
  p.set_max_epochs(1);
  p.set_min_steps(0);
  p.set_ensemble_size(members);
  return p;
}

int ThreadsOfThisProcess() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

TEST(InferencePlanTest, ScoringStartsNoOpenMpThreadsAndKeepsTheCallersSetting) {
  Dataset d = DemoData(400, 6, 2);
  v1::TrainingParams p = Quick(2);
  auto m = TrainModel(d, p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto c = CompiledModel::Create(*m);
  ASSERT_TRUE(c.ok()) << c.status().message();

  // A fresh thread asking for 4 OpenMP threads, as a server thread on a
  // 4-core machine would have by default. libgomp keeps a thread's workers
  // alive while it lives, so any parallel region shows in the task count.
  int before = 0, after = 0, setting_after = 0;
  std::thread scorer([&] {
    omp_set_num_threads(4);
    std::vector<float> score(256);
    ScoreOutputs out;
    out.score = score.data();
    before = ThreadsOfThisProcess();
    for (int64_t rows : {1, 7, 64, 256}) {
      ASSERT_TRUE((*c)->Score(d.x.data(), rows, out).ok());
    }
    after = ThreadsOfThisProcess();
    setting_after = omp_get_max_threads();
  });
  scorer.join();
  ASSERT_GT(before, 0);
  EXPECT_EQ(after, before) << "scoring started OpenMP worker threads";
  EXPECT_EQ(setting_after, 4);
}

// One thread serving many plans of different widths, in turn, more of them
// than its per-thread cache keeps: every call gives the scores each model
// gives on a thread of its own.
TEST(InferencePlanTest, AThreadServingManyPlansInTurnScoresEachAsAlone) {
  std::vector<std::shared_ptr<const CompiledModel>> models;
  std::vector<v1::ModelFile> files;
  std::vector<Dataset> data;
  for (int cols : {3, 41, 7}) {
    Dataset d = DemoData(300, cols, cols);
    v1::TrainingParams p = Quick(1);
    auto m = TrainModel(d, p);
    ASSERT_TRUE(m.ok()) << m.status().message();
    files.push_back(*m);
    auto c = CompiledModel::Create(*m);
    ASSERT_TRUE(c.ok()) << c.status().message();
    models.push_back(*c);
    data.push_back(std::move(d));
  }
  auto score = [&](size_t i, int64_t rows) {
    std::vector<float> s(rows);
    ScoreOutputs out;
    out.score = s.data();
    EXPECT_TRUE(models[i]->Score(data[i].x.data(), rows, out).ok());
    return s;
  };
  std::vector<std::vector<float>> alone;
  for (size_t i = 0; i < models.size(); ++i) {
    std::thread t([&] { alone.push_back(score(i, 300)); });
    t.join();
  }
  // 3 models x 30 copies = 90 plans (compiled again: each its own plan).
  std::vector<std::shared_ptr<const CompiledModel>> copies;
  std::vector<size_t> of;
  for (int k = 0; k < 30; ++k) {
    for (size_t i = 0; i < models.size(); ++i) {
      auto c = CompiledModel::Create(files[i]);
      ASSERT_TRUE(c.ok());
      copies.push_back(*c);
      of.push_back(i);
    }
  }
  std::thread serving([&] {
    for (int round = 0; round < 2; ++round) {
      for (size_t j = 0; j < copies.size(); ++j) {
        const size_t i = of[j];
        for (int64_t rows : {1, 300}) {
          std::vector<float> s(rows);
          ScoreOutputs out;
          out.score = s.data();
          ASSERT_TRUE(copies[j]->Score(data[i].x.data(), rows, out).ok());
          for (int64_t r = 0; r < rows; ++r) ASSERT_FLOAT_EQ(s[r], alone[i][r]) << j << " " << r;
        }
      }
    }
  });
  serving.join();
}

// A group plan (an ensemble's networks side by side, one batched matmul per
// layer) gives each member exactly what that member's own plan gives.
TEST(InferencePlanTest, AGroupPlanRunsEachMemberAsItsOwnPlanDoes) {
  const int d = 9;
  Dataset data = DemoData(600, d, 4);
  v1::TrainingParams p = Quick(3);
  auto m = TrainModel(data, p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::vector<const v1::Network*> nets = {&m->network()};
  for (const auto& e : m->ensemble()) nets.push_back(&e.network());
  const int G = static_cast<int>(nets.size());
  auto group = InferencePlan::CompileGroup(nets);
  ASSERT_TRUE(group.ok()) << group.status().message();
  EXPECT_EQ((*group)->groups(), G);
  std::vector<std::unique_ptr<InferencePlan>> alone;
  for (const v1::Network* n : nets) {
    auto plan = InferencePlan::Compile(*n);
    ASSERT_TRUE(plan.ok());
    alone.push_back(*std::move(plan));
  }
  for (int64_t rows : {1, 3, 16, 300, 600}) {
    // Member g gets its own rows (shifted data), as members scaled their own way would.
    std::vector<float> x(static_cast<size_t>(G) * rows * d);
    for (int g = 0; g < G; ++g)
      for (int64_t i = 0; i < rows * d; ++i) x[g * rows * d + i] = data.x[i] * (1.0f + 0.1f * g);
    std::vector<float> yg(G * rows), xg(x.size());
    ASSERT_TRUE((*group)->Run(x.data(), rows, yg.data(), xg.data()).ok());
    for (int g = 0; g < G; ++g) {
      std::vector<float> y1(rows), x1(rows * d);
      ASSERT_TRUE(alone[g]->Run(&x[g * rows * d], rows, y1.data(), x1.data()).ok());
      for (int64_t r = 0; r < rows; ++r) ASSERT_NEAR(yg[g * rows + r], y1[r], 1e-5) << g << " " << r;
      for (int64_t i = 0; i < rows * d; ++i) ASSERT_NEAR(xg[g * rows * d + i], x1[i], 1e-5) << g << " " << i;
    }
  }
  // Networks of different shapes cannot share a plan.
  v1::TrainingParams q = p;
  q.set_ensemble_size(1);
  q.clear_encoder_widths();
  q.add_encoder_widths(32);
  q.add_encoder_widths(8);
  auto other = TrainModel(data, q);
  ASSERT_TRUE(other.ok()) << other.status().message();
  auto mixed = InferencePlan::CompileGroup({nets[0], &other->network()});
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
}

// CompiledModel runs an ensemble's batches of up to 16 records through its
// group plan and larger ones member by member: both give the same outputs.
TEST(InferencePlanTest, AnEnsembleScoresSmallBatchesAsLargeOnes) {
  const int d = 7;
  Dataset data = DemoData(500, d, 6);
  v1::TrainingParams p = Quick(4);
  auto m = TrainModel(data, p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto c = CompiledModel::Create(*m);
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto score = [&](int64_t rows) {
    std::vector<float> s(rows), nd(rows), err(rows), contrib(rows * d);
    ScoreOutputs out;
    out.score = s.data();
    out.noise_probability = nd.data();
    out.reconstruction_error = err.data();
    out.contributions = contrib.data();
    EXPECT_TRUE((*c)->Score(data.x.data(), rows, out).ok());
    s.insert(s.end(), nd.begin(), nd.end());
    s.insert(s.end(), err.begin(), err.end());
    s.insert(s.end(), contrib.begin(), contrib.begin() + rows * d);
    return s;
  };
  const std::vector<float> large = score(300);
  for (int64_t rows : {1, 5, 16}) {
    const std::vector<float> small = score(rows);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(small[r], large[r], 1e-5) << rows << " score " << r;
      EXPECT_NEAR(small[rows + r], large[300 + r], 1e-5) << rows << " nd " << r;
      EXPECT_NEAR(small[2 * rows + r], large[600 + r], 1e-4 * (1 + std::abs(large[600 + r])))
          << rows << " error " << r;
      for (int k = 0; k < d; ++k)
        EXPECT_NEAR(small[3 * rows + r * d + k], large[900 + r * d + k], 1e-4) << rows;
    }
  }
}

}  // namespace
}  // namespace anorand::test_support
