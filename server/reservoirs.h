// File: reservoirs.h
//
// The reservoirs of recent traffic (model/reservoir.h) of the models that
// opted in (--reservoir_records NAME=ROWS,...): once a request for one of
// them is scored OK, before its response is sent (on the request's
// thread), Offer() adds its records to the model's reservoir.
// Each process keeps its own sample and writes it, when it changed, every
// flush period and at Stop, to <dir>/<model>/<replica>.rsv (atomically: a
// reader sees the old file or the new one). At Start, this replica's file
// is read back, so a sample survives restarts.
//
// TrainingData() gathers every replica's file of a model (this process's
// written first), keeps the halves within the retention (two periods) and
// returns them as one data set: SubmitJob's from_reservoir source. A
// process that keeps no reservoir (a trainer) reads the files all the same.
// No gRPC. Thread-safe; Offer takes only the one model's reservoir lock.
#ifndef ANORAND_SERVER_RESERVOIRS_H_
#define ANORAND_SERVER_RESERVOIRS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/scoring.pb.h"
#include "model/dataset.h"
#include "model/reservoir.h"

namespace anorand {

struct ReservoirOptions {
  std::string dir;      // <model_dir>/.reservoir
  std::string replica;  // this process's file name (--replica_id)
  std::map<std::string, int64_t> records;  // model -> rows kept (opt-in)
  int64_t max_bytes = int64_t{64} << 20;   // per model (--reservoir_max_bytes)
  int64_t period_seconds = 43200;          // --reservoir_period_seconds
  int64_t flush_seconds = 60;              // --reservoir_flush_seconds
};

// One entry of --reservoir_records: a valid model name, rows in
// [2, 100000000]; INVALID_ARGUMENT naming the flag otherwise.
absl::Status ValidateReservoirEntry(const std::string& name, int64_t rows);

// Parses --reservoir_records: "NAME=ROWS[,NAME=ROWS...]", each entry valid
// as above and each name given once; "" = none.
absl::StatusOr<std::map<std::string, int64_t>> ParseReservoirRecords(const std::string& text);

// `id`, or the host name when it is empty.
std::string ReplicaId(const std::string& id);
// --replica_id names this process's reservoir files: 1-64 of [A-Za-z0-9._-],
// not starting with '.'.
absl::Status ValidateReplicaId(const std::string& id);

// What the metrics show per model.
struct ReservoirStats {
  std::string model;
  int64_t rows = 0;   // records kept now
  int64_t seen = 0;   // records offered in the two halves' periods
  int64_t bytes = 0;  // of the values kept
};

class ReservoirSet {
 public:
  explicit ReservoirSet(ReservoirOptions options);
  ~ReservoirSet();  // Stop()

  // Reads back this replica's files (a damaged one is reported and
  // replaced by an empty sample), removes the temporary files of its
  // writes that a crash interrupted, and starts the writer thread.
  absl::Status Start();
  // Writes every changed reservoir and joins the writer.
  void Stop();

  // The request was answered OK: its records join its model's reservoir,
  // if that model keeps one.
  void Offer(const v1::ScoreRequest& request);

  // FAILED_PRECONDITION (saying what to do) when no replica kept records of
  // `model` within the retention; INTERNAL when a file cannot be read.
  absl::StatusOr<Dataset> TrainingData(const std::string& model);

  std::vector<ReservoirStats> Stats();
  const ReservoirOptions& options() const { return options_; }

 private:
  struct Slot {
    std::unique_ptr<Reservoir> reservoir;
    uint64_t written = 0;  // changes() when last written; guarded by write_mu_
  };
  std::string PathOf(const std::string& model) const;
  void WriteChanged() ABSL_LOCKS_EXCLUDED(write_mu_);
  void WriterLoop();

  const ReservoirOptions options_;
  const int64_t period_ms_;
  std::map<std::string, Slot> slots_;  // fixed after construction

  absl::Mutex write_mu_;  // one writer of the files at a time
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_RESERVOIRS_H_
