// File: job_manager.h
//
// Training jobs, with no gRPC in sight: a bounded FIFO queue, a fixed pool
// of training threads (never the threads that serve scoring), progress
// fan-out to any number of watchers, and cooperative cancellation. The
// records live in a JobStore (job_store.h: JSON under <model_dir>/.jobs/,
// written atomically); restart recovery is job_recovery.h; ListJobs'
// filters and pages are job_query.h.
//
// Lifecycle: Submit -> QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED.
// A successful job publishes its model through ModelManager::Publish (the
// same validated, atomic path as an import) and then moves
// spec.promote_to_alias. After a restart, a job that was QUEUED or RUNNING
// is settled by SettleInterruptedJob: SUCCEEDED when its version was
// published before the stop, else FAILED. Finished ones are listed as they
// were. Thread-safe.
#ifndef ANORAND_SERVER_JOB_MANAGER_H_
#define ANORAND_SERVER_JOB_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/training.pb.h"
#include "model/dataset.h"
#include "server/job_store.h"
#include "server/model_manager.h"
#include "server/training_throttle.h"

namespace anorand {

// Counts for metrics: jobs per state, queue depth, and a finished job's
// duration. on_counts is called under the manager's lock (it must only set
// gauges); on_finished under none.
struct JobEvents {
  std::function<void(const std::map<v1::JobState, int>& counts, int queue_depth)> on_counts;
  std::function<void(v1::JobState final_state, double seconds)> on_finished;
};

struct JobOptions {
  std::string jobs_dir;     // where job records live
  int max_queued_jobs = 16;
  int training_threads = 1;  // jobs running at once
  int omp_threads = 1;       // oneDNN/OpenMP threads per running job
  // Training threads (and the OpenMP workers they start) run at SCHED_IDLE
  // (thread_priority.h), so scoring wins the CPU.
  bool low_priority = true;
  // Pauses training between mini-batches while scoring is busy
  // (training_throttle.h); null = never. Must outlive the manager.
  const TrainingThrottle* throttle = nullptr;
  // Called on the training thread once a job is PUBLISHING (CancelJob is
  // then refused), before its version is written, with no lock held.
  // Empty = nothing; tests hold a publish here.
  std::function<void(const std::string& job_id)> before_publish;
  JobEvents events;  // each member may be empty
};

class JobManager {
 public:
  JobManager(ModelManager* models, JobOptions options);
  ~JobManager();  // Stop()

  // Takes the jobs folder's lock (<jobs_dir>/.lock, held for the process's
  // life), loads the persisted records (settling the interrupted ones as
  // above; the store's first scan must have run) and starts the training
  // threads. When another process holds the lock, this manager touches no
  // record and every call (Submit, CheckQueueRoom, Get, List, Cancel,
  // Watch) is FAILED_PRECONDITION naming the folder (after the checks that
  // come first: an empty id, a stopping or non-training server): the
  // records have one owner, so a server that shares the folder cannot mark
  // another's running jobs interrupted.
  absl::Status Start();
  // false after Start when another process holds the folder's lock.
  bool owns_records() const { return owner_; }
  // Cancels running jobs (each ends CANCELLED within its next cancellation
  // poll, never half-published: a job already publishing finishes that
  // first), fails queued ones ("server stopped"), joins.
  void Stop();

  // `spec.params` is resolved here (every field set, as the record shows);
  // `data` is the parsed training set. INVALID_ARGUMENT for bad parameters
  // or data (include_feedback without use_labels among them),
  // RESOURCE_EXHAUSTED when the queue is full. `feedback_rows` of the data
  // came from stored feedback (Job.data_feedback_rows).
  absl::StatusOr<v1::Job> Submit(v1::JobSpec spec, Dataset data, int64_t feedback_rows = 0);
  // RESOURCE_EXHAUSTED if a submit would be refused now (checked when a
  // submission's header arrives, before its data is read).
  absl::Status CheckQueueRoom() const;

  absl::StatusOr<v1::Job> Get(const std::string& id) const;
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request) const;
  absl::StatusOr<v1::Job> Cancel(const std::string& id);

  // Calls `on_progress` with the current snapshot at once, then with every
  // update until (and including) the terminal one. Returns a token for
  // Unwatch, or NOT_FOUND. Callbacks run on training threads, on the
  // thread that cancels a queued job or stops the manager, or on the
  // caller's for the snapshot (under the manager's lock); they must not
  // block or call back into the manager.
  using Watcher = std::function<void(const v1::JobProgress&)>;
  absl::StatusOr<uint64_t> Watch(const std::string& id, Watcher on_progress);
  void Unwatch(uint64_t token);

 private:
  struct Entry {
    v1::Job job;
    Dataset data;                    // released when the job starts
    std::atomic<bool> cancel{false};
    std::atomic<int64_t> throttled_ns{0};  // paused for scoring so far
    bool publishing = false;
  };

  void WorkerLoop();
  void Run(const std::shared_ptr<Entry>& entry);
  // Persists and notifies; takes mu_ only to copy what it needs.
  void Update(const std::shared_ptr<Entry>& entry, const std::function<void(v1::Job&)>& change);
  void NotifyCounts() ABSL_LOCKS_EXCLUDED(mu_);
  // A cancelled job's error: `what`, plus the shutdown when that caused it.
  std::string CancelReason(const std::string& what) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status QueueRoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status NotOwner() const;

  ModelManager* models_;
  const JobOptions options_;
  JobStore store_;
  bool owner_ = true;  // set by Start, before any other call

  // Guards the maps and the queue below, and each Entry's `job` and
  // `publishing` (an Entry's fields cannot name it in an annotation).
  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // the queue grew, or stopping_
  std::map<std::string, std::shared_ptr<Entry>> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Entry>> queue_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::pair<std::string, Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_JOB_MANAGER_H_
