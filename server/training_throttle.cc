#include "server/training_throttle.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/time/clock.h"

namespace anorand {

absl::Status ValidateThrottleOptions(const ThrottleOptions& o) {
  if (o.yield_inflight < 0 || o.yield_inflight > 1000000) {
    return absl::InvalidArgumentError(
        "--training_yield_inflight must be in [0, 1000000] (0 = training never yields)");
  }
  if (o.max_pause < absl::Milliseconds(1) || o.max_pause > absl::Seconds(60)) {
    return absl::InvalidArgumentError("--training_yield_max_pause_ms must be in [1, 60000]");
  }
  if (o.slice <= absl::ZeroDuration() || o.slice > o.max_pause) {
    return absl::InvalidArgumentError("the throttle's slice must be in (0, max_pause]");
  }
  return absl::OkStatus();
}

TrainingThrottle::TrainingThrottle(ThrottleOptions options,
                                   std::function<void(const TrainingPause&)> on_pause)
    : options_(options),
      slice_ns_(absl::ToInt64Nanoseconds(options.slice)),
      max_pause_ns_(absl::ToInt64Nanoseconds(options.max_pause)),
      load_(options.yield_inflight),
      on_pause_(std::move(on_pause)) {}

bool TrainingThrottle::Busy(int64_t now_ns) const { return load_.BusyWithin(now_ns, slice_ns_); }

std::function<bool()> TrainingThrottle::Wrap(std::function<bool()> cancelled,
                                             std::atomic<int64_t>* paused_ns) const {
  if (!enabled()) return cancelled;
  // When the job's last pause ended (only the job's thread touches it).
  auto resumed_ns = std::make_shared<int64_t>(0);
  return [this, cancelled = std::move(cancelled), paused_ns, resumed_ns] {
    if (cancelled()) return true;
    const int64_t now = ScoringLoad::NowNs();
    if (now - *resumed_ns < slice_ns_ || !Busy(now)) return false;
    paused_ns->fetch_add(Pause(cancelled, now), std::memory_order_relaxed);
    *resumed_ns = ScoringLoad::NowNs();
    return cancelled();
  };
}

int64_t TrainingThrottle::Pause(const std::function<bool()>& cancelled, int64_t start_ns) const {
  if (on_pause_) on_pause_(TrainingPause{});
  TrainingPause end;
  end.ended = true;
  int64_t now = start_ns;
  while (true) {
    absl::SleepFor(absl::Nanoseconds(std::min(slice_ns_, start_ns + max_pause_ns_ - now)));
    now = ScoringLoad::NowNs();
    if (cancelled()) {
      end.why = TrainingPause::End::kCancelled;
      break;
    }
    if (!Busy(now)) {
      end.why = TrainingPause::End::kScoringQuiet;
      break;
    }
    if (now - start_ns >= max_pause_ns_) {
      end.why = TrainingPause::End::kMaxPause;
      break;
    }
  }
  end.seconds = static_cast<double>(now - start_ns) * 1e-9;
  if (on_pause_) on_pause_(end);
  return now - start_ns;
}

}  // namespace anorand
