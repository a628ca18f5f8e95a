// File: training_service.h
//
// anorand.v1.Training on the gRPC callback API: the edge over JobManager.
// SubmitJob collects the header and the data chunks (bounded by
// --max_upload_bytes) on the callback threads, then hands the rest to a
// WorkQueue: resolving a data_path safely inside --data_dir, parsing the
// data (CSV polls the call's cancellation every 4,096 rows; a cancelled
// call submits no job) or gathering a from_reservoir job's records
// (reservoirs.h), adding the model's stored feedback when the spec asks
// (feedback_store.h), and submitting; GetJob/ListJobs/CancelJob are thin; WatchJob keeps
// one write in flight and, for a slow reader, replaces a pending
// intermediate message by the newest one (the terminal one is never
// dropped). Every call passes the bearer-token check (auth.h), then its
// bytes are parsed (raw_call.h): a malformed request, or SubmitJobRequest
// i of an upload, is INVALID_ARGUMENT naming it, and no job is submitted.
#ifndef ANORAND_SERVER_TRAINING_SERVICE_H_
#define ANORAND_SERVER_TRAINING_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "anorand/v1/training.grpc.pb.h"
#include "model/dataset.h"
#include "server/upload_limits.h"
#include "server/auth.h"
#include "server/feedback_store.h"
#include "server/job_manager.h"
#include "server/reservoirs.h"
#include "server/work_queue.h"

namespace anorand {

struct TrainingLimits {
  std::string data_dir;            // "" = uploads only
  UploadLimits upload;
};

// Resolves `relative` inside `data_dir`: PERMISSION_DENIED for absolute
// paths and anything that resolves (after "..", and after symbolic links)
// outside it, NOT_FOUND for a missing file, FAILED_PRECONDITION when there
// is no data_dir.
absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir,
                                            const std::string& relative);

using RawTrainingService = v1::Training::WithRawCallbackMethod_SubmitJob<
    v1::Training::WithRawCallbackMethod_GetJob<v1::Training::WithRawCallbackMethod_ListJobs<
        v1::Training::WithRawCallbackMethod_CancelJob<
            v1::Training::WithRawCallbackMethod_WatchJob<v1::Training::Service>>>>>;

class TrainingService final : public RawTrainingService {
 public:
  // `work` runs each submission's parse and submit; it must outlive the
  // calls (stop it after the gRPC server has shut down). `reservoirs`
  // gives from_reservoir jobs their data, `feedback` the rows of jobs that
  // include_feedback (null: such jobs are FAILED_PRECONDITION).
  TrainingService(JobManager* jobs, const TokenAuth* auth, TrainingLimits limits,
                  WorkQueue* work, ReservoirSet* reservoirs, FeedbackStore* feedback = nullptr)
      : jobs_(jobs), auth_(auth), limits_(std::move(limits)), work_(work),
        reservoirs_(reservoirs), feedback_(feedback) {}

  using Bytes = grpc::ByteBuffer;
  grpc::ServerReadReactor<Bytes>* SubmitJob(grpc::CallbackServerContext*, Bytes*) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext*, const Bytes*,
                                      Bytes*) override;
  grpc::ServerWriteReactor<Bytes>* WatchJob(grpc::CallbackServerContext*, const Bytes*) override;

 private:
  class SubmitReader;
  class WatchJobWriter;  // the WatchJob reactor
  JobManager* jobs_;
  const TokenAuth* auth_;
  TrainingLimits limits_;
  WorkQueue* work_;
  ReservoirSet* reservoirs_;
  FeedbackStore* feedback_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_TRAINING_SERVICE_H_
