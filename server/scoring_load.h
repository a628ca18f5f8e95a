// File: scoring_load.h
//
// Scoring's in-flight work, for the training throttle (training_throttle.h)
// to read between training mini-batches. The scoring side counts: Begin
// when a Score request or StreamScore message starts being scored (or joins
// the dynamic batcher's queue), End once it is answered. Besides the count
// it remembers when the count was last at or above `busy_at`, so a reader
// that looks only now and then still sees a burst that came and went
// between two looks.
//
// Lock-free and cheap on the scoring path: one relaxed atomic add per
// Begin and End, plus a steady-clock read while the count is at or above
// busy_at. Thread-safe.
#ifndef ANORAND_SERVER_SCORING_LOAD_H_
#define ANORAND_SERVER_SCORING_LOAD_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace anorand {

class ScoringLoad {
 public:
  // busy_at = 0: count only (last_busy_ns stays 0).
  explicit ScoringLoad(int busy_at) : busy_at_(busy_at) {}
  ScoringLoad(const ScoringLoad&) = delete;
  ScoringLoad& operator=(const ScoringLoad&) = delete;

  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void Begin() {
    const int now = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (busy_at_ > 0 && now >= busy_at_) last_busy_ns_.store(NowNs(), std::memory_order_relaxed);
  }
  void End() {
    const int before = in_flight_.fetch_sub(1, std::memory_order_relaxed);
    // The count was at or above busy_at until this moment.
    if (busy_at_ > 0 && before >= busy_at_) {
      last_busy_ns_.store(NowNs(), std::memory_order_relaxed);
    }
  }

  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  int busy_at() const { return busy_at_; }
  // NowNs() when the count was last seen at or above busy_at (0 = never).
  int64_t last_busy_ns() const { return last_busy_ns_.load(std::memory_order_relaxed); }
  // Busy: the count at or above busy_at now, or within `window_ns` before
  // now_ns. Never with busy_at 0.
  bool BusyWithin(int64_t now_ns, int64_t window_ns) const {
    if (busy_at_ <= 0) return false;
    if (in_flight() >= busy_at_) return true;
    const int64_t last = last_busy_ns();
    return last > 0 && now_ns - last < window_ns;
  }

  // Begin on construction, End on destruction; a null load counts nothing.
  class Scope {
   public:
    explicit Scope(ScoringLoad* load) : load_(load) {
      if (load_) load_->Begin();
    }
    ~Scope() {
      if (load_) load_->End();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ScoringLoad* load_;
  };

 private:
  const int busy_at_;
  std::atomic<int> in_flight_{0};
  std::atomic<int64_t> last_busy_ns_{0};
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SCORING_LOAD_H_
