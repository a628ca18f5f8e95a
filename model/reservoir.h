// File: reservoir.h
//
// A uniform sample of the records a model scored recently (their raw
// feature values), bounded in rows, for retraining on recent traffic.
//
// The sample has two halves by time. The current half collects for one
// period (reservoir sampling, Algorithm R: each record of the half's period
// is kept with probability half_capacity / records seen so far); then it
// becomes the previous half and a new current one starts. A half is dropped
// once it started two periods ago, so no record kept is older than two
// periods, and the sample never holds more than 2 x half_capacity rows.
// A record of another width than the sample's starts it over at that width
// (a new version with other features).
//
// The file form (SerializeReservoir), little-endian:
//   bytes 0-7    magic "ANORSVR\0"
//   bytes 8-11   format version (uint32, 1)
//   bytes 12-15  features per record (uint32)
//   then the previous half and the current half, each:
//     start_ms (int64, Unix ms), seen (int64, records offered in its
//     period), rows (int64, kept), then rows x features float32, row-major
//   last 4 bytes CRC-32 (zlib) of everything before them.
// No gRPC. Reservoir is thread-safe; the free functions are pure.
#ifndef ANORAND_MODEL_RESERVOIR_H_
#define ANORAND_MODEL_RESERVOIR_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "model/dataset.h"
#include "model/rng.h"

namespace anorand {

struct ReservoirHalf {
  int64_t start_ms = 0;  // when the half's period began
  int64_t seen = 0;      // records offered during it
  std::vector<float> x;  // the rows kept, row-major
};

struct ReservoirSnapshot {
  int cols = 0;  // 0: nothing observed yet
  ReservoirHalf previous, current;
  int64_t rows() const;
  int64_t seen() const { return previous.seen + current.seen; }
};

std::string SerializeReservoir(const ReservoirSnapshot& snapshot);
// INVALID_ARGUMENT naming `source` and what is wrong: bad magic, version,
// sizes, CRC, or a value that is not finite.
absl::StatusOr<ReservoirSnapshot> ParseReservoir(absl::string_view bytes, absl::string_view source);

// The rows of `snapshots` whose half started less than two periods before
// now_ms, as one data set. FAILED_PRECONDITION when none is left, or when
// the snapshots disagree on the features per record.
absl::StatusOr<Dataset> ReservoirRows(const std::vector<ReservoirSnapshot>& snapshots,
                                      int64_t period_ms, int64_t now_ms);

class Reservoir {
 public:
  // capacity >= 2 rows in all (capacity / 2 per half), and at most
  // max_bytes of values in all (fewer rows when records are wide);
  // period_ms >= 1.
  Reservoir(int64_t capacity, int64_t period_ms, uint64_t seed,
            int64_t max_bytes = std::numeric_limits<int64_t>::max());

  // Continues from a persisted state: halves that started two periods
  // before now_ms or more are dropped, and a half holding more rows than
  // this capacity keeps a uniform subset of them.
  void Restore(ReservoirSnapshot snapshot, int64_t now_ms);

  // rows records of `cols` features (finite, row-major) scored at now_ms.
  void Observe(const float* x, int64_t rows, int cols, int64_t now_ms);

  // Starts a new half if the current one's period has ended, then copies.
  ReservoirSnapshot Snapshot(int64_t now_ms);

  // The rows kept and the records seen, without copying (rotating first).
  void Counts(int64_t now_ms, int* cols, int64_t* rows, int64_t* seen);

  // Counts changes (records offered, halves rotated or dropped); a writer
  // compares it with the value it last saved.
  uint64_t changes() const;

  // Rows a half keeps of records `cols` wide.
  int64_t HalfRows(int cols) const;
  int64_t period_ms() const { return period_ms_; }

 private:
  void RotateLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t half_;
  const int64_t max_bytes_;
  const int64_t period_ms_;
  mutable absl::Mutex mu_;
  Rng rng_ ABSL_GUARDED_BY(mu_);
  ReservoirSnapshot state_ ABSL_GUARDED_BY(mu_);
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_RESERVOIR_H_
