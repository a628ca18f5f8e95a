// File: work_queue.h
//
// A fixed set of threads that runs closures in submission order. gRPC
// reactions hand it their slow work (parsing a training upload or a
// data_path file, compiling and writing an imported model) so that the
// callback threads, which also serve Score and health checks, never block
// on it; the work itself calls the reactor's Finish.
//
// Thread safety: Run and Stop may be called from any thread. Stop runs
// what is queued, then joins; a Run after Stop runs its work on the
// calling thread, so no reactor is left without its Finish. The load
// observer is called with the queue's lock held, after every change of the
// counts (so in order); it must be quick, e.g. set two gauges.
#ifndef ANORAND_SERVER_WORK_QUEUE_H_
#define ANORAND_SERVER_WORK_QUEUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace anorand {

class WorkQueue {
 public:
  // Work waiting for a thread and work running (the intake gauge).
  using LoadObserver = std::function<void(int64_t queued, int64_t running)>;

  // `threads` >= 1 workers, started now. `on_load` (may be empty) is called
  // with the counts whenever they change, under the queue's lock: it must
  // only set gauges.
  explicit WorkQueue(int threads, LoadObserver on_load = nullptr);
  ~WorkQueue();  // Stop()
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Run(std::function<void()> work) ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  bool ReadyLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ReportLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  const LoadObserver on_load_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // written by the constructor and Stop only
  absl::Mutex stop_mu_;               // serialises Stop's join
};

}  // namespace anorand

#endif  // ANORAND_SERVER_WORK_QUEUE_H_
