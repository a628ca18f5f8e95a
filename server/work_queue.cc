#include "server/work_queue.h"

#include <algorithm>
#include <utility>

namespace anorand {

WorkQueue::WorkQueue(int threads, LoadObserver on_load) : on_load_(std::move(on_load)) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Loop(); });
}

WorkQueue::~WorkQueue() { Stop(); }

void WorkQueue::Run(std::function<void()> work) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(work));
      ReportLocked();
      return;
    }
  }
  work();
}

void WorkQueue::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void WorkQueue::ReportLocked() {
  if (on_load_) on_load_(static_cast<int64_t>(queue_.size()), running_);
}

bool WorkQueue::ReadyLocked() const { return stopping_ || !queue_.empty(); }

void WorkQueue::Loop() {
  while (true) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WorkQueue::ReadyLocked));
      if (queue_.empty()) return;  // stopping, and nothing left to run
      work = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      ReportLocked();
    }
    work();
    absl::MutexLock lock(&mu_);
    --running_;
    ReportLocked();
  }
}

}  // namespace anorand
