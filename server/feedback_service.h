// File: feedback_service.h
//
// anorand.v1.Feedback on the gRPC callback API: the edge over
// FeedbackStore (feedback_store.h). Every call passes the bearer-token
// check (auth.h) and is parsed from bytes (raw_call.h); the work (checks
// against the registry, reading and appending the store's file) runs on
// `work`, off the callback threads. AddFeedback validates the whole
// request before the store sees it: the width against the model's newest
// READY version, every value, label and id.
#ifndef ANORAND_SERVER_FEEDBACK_SERVICE_H_
#define ANORAND_SERVER_FEEDBACK_SERVICE_H_

#include "anorand/v1/feedback.grpc.pb.h"
#include "server/auth.h"
#include "server/feedback_store.h"
#include "server/registry.h"
#include "server/work_queue.h"

namespace anorand {

using RawFeedbackService = v1::Feedback::WithRawCallbackMethod_AddFeedback<
    v1::Feedback::WithRawCallbackMethod_ListFeedback<
        v1::Feedback::WithRawCallbackMethod_ExportFeedback<v1::Feedback::Service>>>;

// Records per ExportFeedback message.
inline constexpr int kFeedbackExportRecords = 1000;

class FeedbackService final : public RawFeedbackService {
 public:
  // Every pointer must outlive the calls.
  FeedbackService(FeedbackStore* store, const Registry* registry, const TokenAuth* auth,
                  WorkQueue* work)
      : store_(store), registry_(registry), auth_(auth), work_(work) {}

  using Bytes = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* AddFeedback(grpc::CallbackServerContext*, const Bytes*,
                                        Bytes*) override;
  grpc::ServerUnaryReactor* ListFeedback(grpc::CallbackServerContext*, const Bytes*,
                                         Bytes*) override;
  grpc::ServerWriteReactor<Bytes>* ExportFeedback(grpc::CallbackServerContext*,
                                                  const Bytes*) override;

 private:
  absl::Status Add(const v1::AddFeedbackRequest& req, v1::AddFeedbackResponse* resp);
  absl::Status List(const v1::ListFeedbackRequest& req, v1::ListFeedbackResponse* resp);
  // NOT_FOUND unless the registry has the model.
  absl::Status CheckModel(const std::string& name) const;
  void FillCounts(const std::string& model, const FeedbackTally& t, v1::FeedbackCounts* c) const;

  FeedbackStore* store_;
  const Registry* registry_;
  const TokenAuth* auth_;
  WorkQueue* work_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_FEEDBACK_SERVICE_H_
