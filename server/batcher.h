// File: batcher.h
//
// Dynamic batching of unary Score requests (--enable_batching): requests
// for the same model version that wait at the same time share one forward
// pass. No extra thread and no hand-off: the request that finds a free
// slot for its model scores, on its own gRPC thread, itself and whatever
// queued behind it, until the queue is empty; the others wait in the queue.
// A model version gets at most max_parallel such passes at once (0 = one per
// core),
// so requests merge only when every slot is busy: at low load a request
// scores at once, as without batching. With max_delay_us > 0 a pass also
// waits up to that long after its oldest request for the batch to fill
// (throughput for latency, as TF Serving's batch_timeout_micros).
//
// Limits: a pass takes at most max_records records (a larger request goes
// alone); at most max_queued_records wait across all models, beyond that a
// request is refused with RESOURCE_EXHAUSTED (a request that finds nothing
// waiting is always taken, however large). A request whose deadline
// passed while it waited gets DEADLINE_EXCEEDED without being scored.
// Requests with explain = true are scored alone. Validation and model
// resolution happen before queueing, on the caller's thread (same checks,
// codes and messages as an unbatched Score).
#ifndef ANORAND_SERVER_BATCHER_H_
#define ANORAND_SERVER_BATCHER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/score_handler.h"
#include "server/scoring_load.h"

namespace anorand {

struct BatchingOptions {
  int64_t max_records = 256;
  int64_t max_delay_us = 0;
  int64_t max_queued_records = 65536;
  int max_parallel = 0;  // forward passes at once per model version; 0 = cores
};

// Ranges; INVALID_ARGUMENT names the flag.
absl::Status ValidateBatchingOptions(const BatchingOptions& options);

class DynamicBatcher {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(const absl::Status&)>;

  // `on_pass` (may be empty) is called after each forward pass with its
  // request and record counts (metrics). Each request counts into `load`
  // (may be null) from Submit until it is answered (the training throttle
  // reads it).
  DynamicBatcher(const ScoreHandler* handler, BatchingOptions options,
                 std::function<void(int requests, int64_t records)> on_pass = nullptr,
                 ScoringLoad* load = nullptr);
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Scores `request` into `response` (both must stay valid until `done`)
  // and calls `done` once with the outcome, on this thread or on the
  // thread of a request it was batched with. Not scored after `deadline`.
  void Submit(const v1::ScoreRequest* request, v1::ScoreResponse* response,
              Clock::time_point deadline, Done done);

  int64_t queued_records() const;

 private:
  struct Pending {
    ScoreItem item;
    Clock::time_point deadline, enqueued;
    Done done;
  };
  struct Queue {
    std::deque<std::unique_ptr<Pending>> items;
    int64_t records = 0;
    int leaders = 0;  // passes running or about to
    int waiting = 0;  // leaders waiting out max_delay_us for the batch to fill
  };
  void Lead(const CompiledModel* key) ABSL_LOCKS_EXCLUDED(mu_);
  void Execute(std::vector<std::unique_ptr<Pending>> batch);
  void Answer(Pending* p) const;

  const ScoreHandler* handler_;
  const BatchingOptions options_;
  const std::function<void(int, int64_t)> on_pass_;
  ScoringLoad* const load_;
  const int max_parallel_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // a queue grew (leaders waiting out max_delay_us)
  std::unordered_map<const CompiledModel*, Queue> queues_ ABSL_GUARDED_BY(mu_);
  int64_t queued_records_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_BATCHER_H_
