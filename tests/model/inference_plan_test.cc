// The compiled plan runs each call on the calling thread alone, whatever
// that thread's OpenMP setting: a server thread (OpenMP's default is one
// thread per core) must not fork every layer onto the other cores, and the
// caller's own setting is left as it was.
#include <dirent.h>
#include <omp.h>

#include <thread>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/trainer.h"
#include "tests/support/test_util.h"

namespace anorand::testing {
namespace {

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
  v1::TrainingParams p;  // the default preset, shortened
  p.set_max_epochs(1);
  p.set_min_steps(0);
  p.set_ensemble_size(2);
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

}  // namespace
}  // namespace anorand::testing
