// File: training_service.h
//
// anorand.v1.Training. Remote training (the Training issue) is not built
// yet: every RPC answers UNIMPLEMENTED with a message that says what to use
// instead (`anorand fit` locally, then `anorand models import`).
#ifndef ANORAND_SERVER_TRAINING_SERVICE_H_
#define ANORAND_SERVER_TRAINING_SERVICE_H_

#include "anorand/v1/training.grpc.pb.h"

namespace anorand {

class TrainingService final : public v1::Training::CallbackService {
 public:
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
};

}  // namespace anorand

#endif  // ANORAND_SERVER_TRAINING_SERVICE_H_
