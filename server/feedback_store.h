// File: feedback_store.h
//
// Operators' labelled records for a model, in the model store
// (model_store.h) beside its versions:
//   <model_dir>/<name>/feedback.jsonl   one v1::FeedbackRecord in protobuf
//                                       JSON per line
// Appends are one write(2) with O_APPEND, fsynced before Add returns, each
// starting with a newline so that a line torn by a crash ends there and is
// skipped (and counted) instead of swallowing the next record. Every
// replica on the store reads the same file; the first line with an id is
// the record, later lines with that id are ignored.
//
// Each store keeps, per model, an index of the ids it has read and the
// counts, and brings it up to date by reading only the bytes appended
// since (other replicas' records included). Add holds that model's index
// lock from the read through the fsync: adds to one model run one at a
// time, which is what makes the duplicate check and the bound exact within
// a process; adds to other models and readers of Records do not wait for
// it, Count waits for at most one add. No gRPC.
#ifndef ANORAND_SERVER_FEEDBACK_STORE_H_
#define ANORAND_SERVER_FEEDBACK_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/feedback.pb.h"
#include "model/dataset.h"
#include "server/model_store.h"

namespace anorand {

struct FeedbackTally {
  int cols = 0;  // width of the stored records; 0 = none stored
  int64_t anomalies = 0;
  int64_t normal = 0;
  int64_t skipped_lines = 0;
  int64_t records() const { return anomalies + normal; }
};

struct FeedbackAdded {
  int64_t added = 0;
  int64_t duplicates = 0;
  std::vector<std::string> ids;  // one per record given, in order
  FeedbackTally stored;          // after the add
};

// INVALID_ARGUMENT unless `id` matches [A-Za-z0-9._:-]{1,128}.
absl::Status ValidateFeedbackId(const std::string& id);

class FeedbackStore {
 public:
  // max_records: the most records one model may hold (>= 1).
  FeedbackStore(ModelStore store, int64_t max_records)
      : store_(std::move(store)), max_records_(max_records) {}

  int64_t max_records() const { return max_records_; }

  // Stores `records` (label and values of `cols` each set and valid; ids
  // valid or empty, empty ones assigned here), all or none: ALREADY_EXISTS
  // for an id stored with another label or values, FAILED_PRECONDITION when
  // the stored records have another width, RESOURCE_EXHAUSTED past
  // max_records. A record whose id is stored with the same label and
  // values is counted as a duplicate and not stored again.
  absl::StatusOr<FeedbackAdded> Add(const std::string& model, int cols,
                                    std::vector<v1::FeedbackRecord> records);

  // The model's counts, read up to date.
  absl::StatusOr<FeedbackTally> Count(const std::string& model);

  // Every record, oldest first, one per id; the tally of what was read in
  // *tally (may be null).
  absl::StatusOr<std::vector<v1::FeedbackRecord>> Records(const std::string& model,
                                                          FeedbackTally* tally) const;

 private:
  // What has been read of one model's file.
  struct Index {
    absl::Mutex mu;
    int64_t offset ABSL_GUARDED_BY(mu) = 0;
    // id -> (label, hash of the values)
    absl::flat_hash_map<std::string, std::pair<int, size_t>> ids ABSL_GUARDED_BY(mu);
    FeedbackTally tally ABSL_GUARDED_BY(mu);
  };

  std::shared_ptr<Index> IndexOf(const std::string& model) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Refresh(const std::string& model, Index* index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index->mu);

  const ModelStore store_;
  const int64_t max_records_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Index>> indexes_ ABSL_GUARDED_BY(mu_);
};

// Appends `model`'s stored feedback to `data` as training rows: anomalies
// labelled 1, normal records 0 (the data's rows get label 0 if they had
// none). Returns the rows added: 0 when none is stored (nothing changes).
// FAILED_PRECONDITION when its width is not the data's (nothing changes).
absl::StatusOr<int64_t> AppendFeedback(const FeedbackStore& store, const std::string& model,
                                       Dataset* data);

}  // namespace anorand

#endif  // ANORAND_SERVER_FEEDBACK_STORE_H_
