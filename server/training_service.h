// File: training_service.h
//
// anorand.v1.Training on the gRPC callback API: the edge over JobManager.
// SubmitJob collects the header and the data chunks (bounded by
// --max_upload_bytes), resolves a data_path safely inside --data_dir, parses
// the data, and submits; GetJob/ListJobs/CancelJob are thin; WatchJob keeps
// one write in flight and, for a slow reader, replaces a pending
// intermediate message by the newest one (the terminal one is never
// dropped). Every call passes the bearer-token check (auth.h).
#ifndef ANORAND_SERVER_TRAINING_SERVICE_H_
#define ANORAND_SERVER_TRAINING_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "anorand/v1/training.grpc.pb.h"
#include "model/dataset.h"
#include "server/auth.h"
#include "server/job_manager.h"

namespace anorand {

struct TrainingLimits {
  std::string data_dir;            // "" = uploads only
  int64_t max_upload_bytes = 1ll << 30;
};

// Resolves `relative` inside `data_dir`: PERMISSION_DENIED for absolute
// paths and anything that resolves (after "..", and after symbolic links)
// outside it, NOT_FOUND for a missing file, FAILED_PRECONDITION when there
// is no data_dir.
absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir,
                                            const std::string& relative);

class TrainingService final : public v1::Training::CallbackService {
 public:
  TrainingService(JobManager* jobs, const TokenAuth* auth, TrainingLimits limits)
      : jobs_(jobs), auth_(auth), limits_(std::move(limits)) {}

  grpc::ServerReadReactor<v1::SubmitJobRequest>* SubmitJob(grpc::CallbackServerContext*,
                                                           v1::Job*) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext*, const v1::GetJobRequest*,
                                   v1::Job*) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext*, const v1::ListJobsRequest*,
                                     v1::ListJobsResponse*) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext*, const v1::CancelJobRequest*,
                                      v1::Job*) override;
  grpc::ServerWriteReactor<v1::JobProgress>* WatchJob(grpc::CallbackServerContext*,
                                                      const v1::WatchJobRequest*) override;

 private:
  class SubmitReader;
  class Watcher;
  JobManager* jobs_;
  const TokenAuth* auth_;
  TrainingLimits limits_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_TRAINING_SERVICE_H_
