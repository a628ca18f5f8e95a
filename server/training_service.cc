#include "server/training_service.h"

namespace anorand {
namespace {

grpc::Status NotYet(const char* rpc) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      std::string("Training.") + rpc +
                          " is not implemented in this release; train locally with `anorand fit` "
                          "and publish with `anorand models import`");
}

template <typename Reactor>
Reactor* Refuse(const char* rpc) {
  class R final : public Reactor {
   public:
    explicit R(const char* rpc) { this->Finish(NotYet(rpc)); }
    void OnDone() override { delete this; }
  };
  return new R(rpc);
}

grpc::ServerUnaryReactor* RefuseUnary(grpc::CallbackServerContext* ctx, const char* rpc) {
  auto* r = ctx->DefaultReactor();
  r->Finish(NotYet(rpc));
  return r;
}

}  // namespace

grpc::ServerReadReactor<v1::SubmitJobRequest>* TrainingService::SubmitJob(
    grpc::CallbackServerContext*, v1::Job*) {
  return Refuse<grpc::ServerReadReactor<v1::SubmitJobRequest>>("SubmitJob");
}
grpc::ServerUnaryReactor* TrainingService::GetJob(grpc::CallbackServerContext* ctx,
                                                  const v1::GetJobRequest*, v1::Job*) {
  return RefuseUnary(ctx, "GetJob");
}
grpc::ServerUnaryReactor* TrainingService::ListJobs(grpc::CallbackServerContext* ctx,
                                                    const v1::ListJobsRequest*,
                                                    v1::ListJobsResponse*) {
  return RefuseUnary(ctx, "ListJobs");
}
grpc::ServerUnaryReactor* TrainingService::CancelJob(grpc::CallbackServerContext* ctx,
                                                     const v1::CancelJobRequest*, v1::Job*) {
  return RefuseUnary(ctx, "CancelJob");
}
grpc::ServerWriteReactor<v1::JobProgress>* TrainingService::WatchJob(
    grpc::CallbackServerContext*, const v1::WatchJobRequest*) {
  return Refuse<grpc::ServerWriteReactor<v1::JobProgress>>("WatchJob");
}

}  // namespace anorand
