// File: retrain_loop.h
//
// Closing the loop (models.proto SetRetrainPolicy): a thread that, every
// check period, reads each model's retraining policy and history from the
// store (retrain_store.h) and takes the next step of the model's stage:
//   WATCHING   the score PSI of the alias's version (its drift window, at
//              least half full) above the threshold for sustained_seconds:
//              submit a job on the model's reservoir with that version's
//              params, plus the operators' feedback when the model has
//              some (feedback_store.h) of the reservoir's width and the
//              params use labels -> TRAINING (or, when the submit fails,
//              wait as long again)
//   TRAINING   the job SUCCEEDED: set its version as the shadow ->
//              SHADOWING; it FAILED or was CANCELLED: -> WATCHING, waiting
//              sustained_seconds again
//   SHADOWING  min_compared_records compared between the alias's version
//              and the candidate: within the thresholds, move the alias and
//              clear the shadow -> WATCHING; else -> HELD. The shadow or the
//              alias changed by hand: -> WATCHING
//   HELD, PAUSED: nothing
// The stage is the one the model's last history event leaves it in, so
// every replica shows the same stage and a restart resumes where the last
// step left off (a TRAINING job the restart interrupted reads FAILED). Only
// the replica that owns the jobs folder (job_manager.h) takes steps, on the
// drift and the shadow comparison of its own traffic; the others only
// report. Steps run on the loop's thread, never on a gRPC thread; the
// cache behind Status() is a copy under a mutex. No gRPC. Thread-safe.
#ifndef ANORAND_SERVER_RETRAIN_LOOP_H_
#define ANORAND_SERVER_RETRAIN_LOOP_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/models.pb.h"
#include "server/job_manager.h"
#include "server/model_manager.h"
#include "server/feedback_store.h"
#include "server/reservoirs.h"
#include "server/retrain_store.h"
#include "server/shadow.h"

namespace anorand {

struct RetrainLoopOptions {
  double check_seconds = 30;  // --retrain_check_seconds, > 0
  std::string replica;        // ModelEvent.replica
};

// The comparison a SHADOWING candidate is judged on: OK to promote, or
// FAILED_PRECONDITION saying which threshold it missed.
absl::Status JudgeCandidate(const v1::RetrainPolicy& policy, const ShadowComparisonStats& c);

class RetrainLoop {
 public:
  // Every pointer must stay valid from Start until Stop returns (the server
  // constructs the loop before them and stops it before they go); `store`
  // is the model store's root.
  // `feedback` (may be null): the operators' feedback a job includes when
  // the model has some of the reservoir's width and its params use labels.
  RetrainLoop(ModelStore store, ModelManager* manager, JobManager* jobs, ReservoirSet* reservoirs,
              const ShadowScorer* shadow, RetrainLoopOptions options,
              const FeedbackStore* feedback = nullptr);
  ~RetrainLoop();  // Stop()
  RetrainLoop(const RetrainLoop&) = delete;
  RetrainLoop& operator=(const RetrainLoop&) = delete;

  // Starts the thread: a check at once, then one every check_seconds.
  void Start();
  void Stop();

  // Validates, fills defaults, writes the policy and a POLICY_SET event.
  // NOT_FOUND for a model the registry does not know.
  absl::StatusOr<v1::RetrainStatus> SetPolicy(const std::string& model, v1::RetrainPolicy policy)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Removes it (and records POLICY_CLEARED); none is OK.
  absl::Status ClearPolicy(const std::string& model) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<v1::ModelEvent>> History(const std::string& model,
                                                      int limit) const;

  // The model's policy and stage as of the last check (or Set/Clear).
  std::optional<v1::RetrainStatus> Status(const std::string& model) const
      ABSL_LOCKS_EXCLUDED(mu_);
  std::map<std::string, v1::RetrainStatus> StatusAll() const ABSL_LOCKS_EXCLUDED(mu_);
  // Events this process recorded since it started, per (model, kind).
  std::map<std::pair<std::string, v1::ModelEventKind>, int64_t> EventCounts() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // One check of every model (the thread's body; tests call it directly).
  void Check() ABSL_LOCKS_EXCLUDED(step_mu_, mu_);

 private:
  // Steps taken for one model with its policy in force and the stage its
  // history gives.
  void Step(const std::string& model, const v1::RetrainStatus& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void Watch(const std::string& model, const v1::RetrainPolicy& policy)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void Submit(const std::string& model, const v1::RetrainPolicy& policy, int64_t version,
              const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void FollowJob(const std::string& model, const v1::RetrainPolicy& policy,
                 const v1::RetrainStatus& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void JudgeShadow(const std::string& model, const v1::RetrainPolicy& policy,
                   const v1::RetrainStatus& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  // Appends the event (stamped with the time and replica) and counts it.
  void Record(const std::string& model, v1::ModelEvent event) ABSL_LOCKS_EXCLUDED(mu_);
  // The policy and the stage of the last event; nullopt without a policy.
  absl::StatusOr<std::optional<v1::RetrainStatus>> ReadStatus(const std::string& model) const;
  void Loop();

  ModelManager* manager_;
  JobManager* jobs_;
  ReservoirSet* reservoirs_;
  const FeedbackStore* feedback_;  // null: jobs never include feedback
  const ShadowScorer* shadow_;
  const RetrainLoopOptions options_;
  const RetrainStore store_;

  // Held through a check and through Set/Clear, so a step never races a
  // policy change of the same model.
  absl::Mutex step_mu_;
  // WATCHING: since when (steady ms) the PSI has stayed above the threshold
  // (reset to now after a failed submit or job: a whole period again).
  std::map<std::string, int64_t> above_since_ ABSL_GUARDED_BY(step_mu_);
  std::map<std::string, std::string> reported_ ABSL_GUARDED_BY(step_mu_);  // damaged files

  mutable absl::Mutex mu_;
  std::map<std::string, v1::RetrainStatus> status_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, v1::ModelEventKind>, int64_t> counts_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_RETRAIN_LOOP_H_
