// File: retrain_store.h
//
// A model's retraining policy and history in the model store
// (model_store.h), as protobuf JSON:
//   <model_dir>/<name>/retrain_policy.json   the RetrainPolicy in force,
//                                            replaced atomically
//   <model_dir>/<name>/history.jsonl         one ModelEvent per line,
//                                            appended and fsynced, each
//                                            append its own line between
//                                            two newlines
// Every replica on the store reads both; events are appended by the replica
// that takes the step (O_APPEND: lines of two writers never interleave). A
// torn or unparsable line (a crash mid-append, a hand edit) is skipped by
// the reader, never fatal. No gRPC. Thread-safe: no state beyond the store.
#ifndef ANORAND_SERVER_RETRAIN_STORE_H_
#define ANORAND_SERVER_RETRAIN_STORE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/models.pb.h"
#include "server/model_store.h"

namespace anorand {

// The policy with every 0 field replaced by its default (models.proto
// RetrainPolicy).
v1::RetrainPolicy WithRetrainDefaults(v1::RetrainPolicy policy);
// INVALID_ARGUMENT naming the first field out of range (after defaults).
absl::Status ValidateRetrainPolicy(const v1::RetrainPolicy& policy);

class RetrainStore {
 public:
  explicit RetrainStore(ModelStore store) : store_(std::move(store)) {}

  // nullopt when the model has none; DATA_LOSS (naming the file) when it is
  // not a valid policy.
  absl::StatusOr<std::optional<v1::RetrainPolicy>> ReadPolicy(const std::string& model) const;
  // Writes (or with nullopt removes) the policy.
  absl::Status WritePolicy(const std::string& model,
                           const std::optional<v1::RetrainPolicy>& policy) const;

  absl::Status Append(const std::string& model, const v1::ModelEvent& event) const;
  // The last `limit` events, oldest first ({} when there is no history),
  // read from the file's last 64 MiB as it was when opened: an append by
  // another thread or replica during the read is not an error.
  absl::StatusOr<std::vector<v1::ModelEvent>> History(const std::string& model,
                                                      int limit) const;

 private:
  const ModelStore store_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_RETRAIN_STORE_H_
