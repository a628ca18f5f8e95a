// LowerCurrentThreadPriority: the calling thread runs at SCHED_IDLE, the
// OpenMP workers it then starts inherit it, and other threads keep theirs.
#include "server/thread_priority.h"

#include <omp.h>
#include <sched.h>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace anorand {
namespace {

TEST(ThreadPriorityTest, CallingThreadAndItsOpenMpWorkersRunAtSchedIdle) {
  std::vector<int> policies;
  std::set<int> thread_ids;
  int caller_policy = -1;
  std::thread training([&] {
    ASSERT_TRUE(LowerCurrentThreadPriority().ok());
    caller_policy = sched_getscheduler(0);
    std::mutex mu;
    omp_set_num_threads(2);
#pragma omp parallel num_threads(2)
    {
      const int policy = sched_getscheduler(0);
      std::lock_guard lock(mu);
      policies.push_back(policy);
      thread_ids.insert(omp_get_thread_num());
    }
  });
  training.join();
  EXPECT_EQ(caller_policy, SCHED_IDLE);
  ASSERT_EQ(policies.size(), 2u);  // the caller and one OpenMP worker
  EXPECT_EQ(thread_ids.size(), 2u);
  for (int p : policies) EXPECT_EQ(p, SCHED_IDLE);
  // The process's other threads are untouched.
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
}

}  // namespace
}  // namespace anorand
