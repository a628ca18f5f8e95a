// WorkQueue: work runs in submission order on its threads, the load
// observer sees every queued and running count in order, Stop runs what
// is queued, and work handed over after Stop still runs.
#include "server/work_queue.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace anorand {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(WorkQueueTest, OneThreadRunsWorkInSubmissionOrder) {
  std::vector<int> order;
  {
    WorkQueue queue(1);
    for (int i = 0; i < 50; ++i) queue.Run([&order, i] { order.push_back(i); });
  }  // the destructor runs what is queued
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(WorkQueueTest, TheLoadObserverSeesQueuedAndRunningWork) {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> seen;
  WorkQueue queue(1, [&](int64_t queued, int64_t running) {
    std::lock_guard lock(mu);
    seen.emplace_back(queued, running);
  });
  absl::Notification started, release, second_done;
  queue.Run([&] {
    started.Notify();
    release.WaitForNotification();
  });
  started.WaitForNotification();
  queue.Run([&] { second_done.Notify(); });  // waits behind the first
  release.Notify();
  second_done.WaitForNotification();
  queue.Stop();
  std::lock_guard lock(mu);
  // First queued, first running, second queued, first done, second
  // running, second done.
  EXPECT_THAT(seen, ElementsAre(Pair(1, 0), Pair(0, 1), Pair(1, 1), Pair(1, 0),
                                Pair(0, 1), Pair(0, 0)));
}

TEST(WorkQueueTest, WorkAfterStopRunsOnTheCallersThread) {
  WorkQueue queue(2);
  queue.Stop();
  std::thread::id ran_on;
  queue.Run([&ran_on] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

}  // namespace
}  // namespace anorand
