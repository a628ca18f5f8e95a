#include "server/scoring_service.h"

#include <chrono>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/refused_call.h"
#include "server/status_util.h"

namespace anorand {

absl::Status ScoringService::Handle(ScoreMethod method, const v1::ScoreRequest& request,
                                    v1::ScoreResponse* response) const {
  const ScoreHandler* handler = method == ScoreMethod::kScore ? handler_ : stream_handler_;
  if (!on_scored_) return handler->Score(request, response);
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = handler->Score(request, response);
  on_scored_(method, request,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return s;
}

grpc::ServerUnaryReactor* ScoringService::Score(grpc::CallbackServerContext* context,
                                                const v1::ScoreRequest* request,
                                                v1::ScoreResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (auth_ != nullptr) {
    if (grpc::Status s = auth_->Check(*context); !s.ok()) {
      reactor->Finish(s);
      return reactor;
    }
  }
  reactor->Finish(ToGrpcStatus(Handle(ScoreMethod::kScore, *request, response)));
  return reactor;
}

class ScoringService::StreamReactor final
    : public grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse> {
 public:
  explicit StreamReactor(ScoringService* service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (finished_) return;  // a failed write already ended the call
    if (!ok) {  // the client finished writing (or the call ended)
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    pending_.Clear();
    absl::Status s = service_->Handle(ScoreMethod::kStreamScore, request_, &pending_);
    if (!s.ok()) {
      final_status_ = grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                                   absl::StrCat("request ", index_, ": ", s.message()));
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    ++index_;
    has_pending_ = true;
    if (!writing_) WritePendingLocked();
    // else: OnWriteDone writes it and starts the next read (backpressure).
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {  // the client went away
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream closed by the client");
      reads_done_ = true;
      has_pending_ = false;
    }
    if (has_pending_) {
      WritePendingLocked();
      return;
    }
    MaybeFinishLocked();
  }

  void OnDone() override {
    service_->active_streams_.fetch_sub(1);
    if (service_->on_stream_change_) service_->on_stream_change_(-1);
    delete this;
  }

  void OnCancel() override {}

 private:
  void WritePendingLocked() {
    writing_response_.Swap(&pending_);
    has_pending_ = false;
    writing_ = true;
    StartWrite(&writing_response_);
    if (!reads_done_) StartRead(&request_);
  }

  void MaybeFinishLocked() {
    if (finished_ || writing_ || has_pending_ || !reads_done_) return;
    finished_ = true;
    Finish(final_status_);
  }

  ScoringService* service_;
  std::mutex mu_;
  v1::ScoreRequest request_;
  v1::ScoreResponse pending_, writing_response_;
  bool has_pending_ = false, writing_ = false, reads_done_ = false, finished_ = false;
  int64_t index_ = 0;
  grpc::Status final_status_ = grpc::Status::OK;
};


grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>* ScoringService::StreamScore(
    grpc::CallbackServerContext* context) {
  if (auth_ != nullptr) {
    if (grpc::Status s = auth_->Check(*context); !s.ok()) {
      return RefusedCall<grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>>(s);
    }
  }
  if (active_streams_.fetch_add(1) >= max_streams_) {
    active_streams_.fetch_sub(1);
    return RefusedCall<grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>>(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("too many open streams (limit ", max_streams_,
                                  ", --max_streams); close one or retry later")));
  }
  if (on_stream_change_) on_stream_change_(+1);
  return new StreamReactor(this);
}

}  // namespace anorand
