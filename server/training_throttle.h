// File: training_throttle.h
//
// Training yields to scoring under load (--training_yield_inflight): a
// job's cancellation poll (TrainOptions::cancelled, polled before every
// mini-batch and between the blocks of the other phases) first pauses the
// training thread while scoring is busy, that is while at least
// `yield_inflight` scoring requests are in flight (ScoringLoad) or were at
// any moment of the last slice. The pause goes in slices of `slice`, and
// ends at the first slice in which scoring was not busy, when the job is
// cancelled (checked every slice, so a cancel takes effect within about a
// slice), or after `max_pause`. After a pause the job trains for at least
// `slice` before it may pause again, so under load that never ends it
// still gets at least slice / (slice + max_pause) of its thread's time.
// When scoring is idle the poll costs two atomic loads and a clock read.
//
// The throttle has no gRPC and no threads of its own: it runs on the job's
// thread, inside the poll. Thread-safe (one throttle serves every job).
#ifndef ANORAND_SERVER_TRAINING_THROTTLE_H_
#define ANORAND_SERVER_TRAINING_THROTTLE_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/scoring_load.h"

namespace anorand {

struct ThrottleOptions {
  int yield_inflight = 0;  // 0 = never pause
  absl::Duration max_pause = absl::Milliseconds(20);  // per poll
  absl::Duration slice = absl::Milliseconds(1);
};

// Ranges; INVALID_ARGUMENT names the flag.
absl::Status ValidateThrottleOptions(const ThrottleOptions& options);

// One pause, as reported to the hook: once when it begins (ended = false),
// once when it ends.
struct TrainingPause {
  enum class End { kScoringQuiet, kMaxPause, kCancelled };
  bool ended = false;
  double seconds = 0;  // how long it lasted (when ended)
  End why = End::kScoringQuiet;
};

class TrainingThrottle {
 public:
  // `on_pause` (may be empty) is called on the training thread when a pause
  // begins and when it ends (metrics, tests); it may block, holding the
  // pause.
  explicit TrainingThrottle(ThrottleOptions options,
                            std::function<void(const TrainingPause&)> on_pause = nullptr);
  TrainingThrottle(const TrainingThrottle&) = delete;
  TrainingThrottle& operator=(const TrainingThrottle&) = delete;

  // False when yield_inflight is 0: Wrap returns the poll unchanged and
  // nothing need count into load().
  bool enabled() const { return options_.yield_inflight > 0; }

  // Where the scoring side counts its in-flight work (scoring_load.h).
  ScoringLoad* load() { return &load_; }

  // A job's cancellation poll with the yield in front of it: the returned
  // callback pauses as above, adds the time paused to *paused_ns, then
  // returns cancelled(). Call the result from one thread at a time (the
  // job's); `paused_ns` must outlive it.
  std::function<bool()> Wrap(std::function<bool()> cancelled,
                             std::atomic<int64_t>* paused_ns) const;

 private:
  bool Busy(int64_t now_ns) const;
  // Pauses from `start_ns` until scoring is quiet for a slice, cancelled()
  // or max_pause; returns the nanoseconds paused.
  int64_t Pause(const std::function<bool()>& cancelled, int64_t start_ns) const;

  const ThrottleOptions options_;
  const int64_t slice_ns_, max_pause_ns_;
  ScoringLoad load_;
  const std::function<void(const TrainingPause&)> on_pause_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_TRAINING_THROTTLE_H_
