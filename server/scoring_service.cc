#include "server/scoring_service.h"

#include <chrono>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/refused_call.h"
#include "server/status_util.h"

namespace anorand {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void ScoringService::ReportScored(ScoreMethod method, const v1::ScoreRequest& request,
                                  std::chrono::steady_clock::time_point start) const {
  if (!on_scored_) return;
  on_scored_(method, request,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

absl::Status ScoringService::Handle(ScoreMethod method, const v1::ScoreRequest& request,
                                    v1::ScoreResponse* response) const {
  const ScoreHandler* handler = method == ScoreMethod::kScore ? handler_ : stream_handler_;
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = handler->Score(request, response);
  ReportScored(method, request, start);
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
  if (context->deadline() < std::chrono::system_clock::now()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                 "the call's deadline passed before scoring started; give "
                                 "the call more time"));
    return reactor;
  }
  if (batcher_ == nullptr) {
    reactor->Finish(ToGrpcStatus(Handle(ScoreMethod::kScore, *request, response)));
    return reactor;
  }
  // The call's deadline on the batcher's clock (none: never).
  auto deadline = DynamicBatcher::Clock::time_point::max();
  if (context->deadline() != std::chrono::system_clock::time_point::max()) {
    deadline = DynamicBatcher::Clock::now() +
               std::chrono::duration_cast<DynamicBatcher::Clock::duration>(
                   context->deadline() - std::chrono::system_clock::now());
  }
  const auto start = std::chrono::steady_clock::now();
  batcher_->Submit(request, response, deadline,
                   [this, reactor, request, start](const absl::Status& s) {
                     ReportScored(ScoreMethod::kScore, *request, start);
                     reactor->Finish(ToGrpcStatus(s));
                   });
  return reactor;
}

class ScoringService::StreamReactor final
    : public grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse> {
 public:
  StreamReactor(ScoringService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    Touch();
    StartRead(&request_);
  }

  // The reaper, under streams_mu_ (so `this` is alive): ends the stream if
  // nothing completed for idle_ns. A stream that cannot even deliver its
  // end (the client stopped reading, so the status is queued behind
  // responses it will never take) is cancelled one idle period later.
  void ExpireIfIdle(int64_t now_ns, int64_t idle_ns, double idle_seconds) {
    if (now_ns - last_activity_ns_.load() < idle_ns) return;
    std::lock_guard lock(mu_);
    if (cancelled_ || now_ns - last_activity_ns_.load() < idle_ns) return;
    if (finished_ || writing_) {
      // The write cannot complete or the end cannot be delivered: cancel;
      // pending operations then fail and OnDone follows.
      if (writing_ || now_ns - finished_ns_ >= idle_ns) {
        cancelled_ = true;
        context_->TryCancel();
      }
      return;
    }
    finished_ = true;
    finished_ns_ = now_ns;
    Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("no request for ", idle_seconds,
                                     " s (--stream_idle_seconds); open a new stream when "
                                     "there are records to score")));
  }

  void OnReadDone(bool ok) override {
    Touch();
    std::lock_guard lock(mu_);
    if (finished_) return;  // a failed write or the reaper already ended the call
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
    Touch();
    std::lock_guard lock(mu_);
    writing_ = false;
    if (finished_) return;
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
    {
      std::lock_guard lock(service_->streams_mu_);
      service_->streams_.erase(this);
    }
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
    finished_ns_ = NowNs();
    Finish(final_status_);
  }

  void Touch() { last_activity_ns_ = NowNs(); }

  ScoringService* service_;
  grpc::CallbackServerContext* context_;
  std::atomic<int64_t> last_activity_ns_{0};
  std::mutex mu_;
  v1::ScoreRequest request_;
  v1::ScoreResponse pending_, writing_response_;
  bool has_pending_ = false, writing_ = false, reads_done_ = false, finished_ = false;
  bool cancelled_ = false;   // by the reaper
  int64_t finished_ns_ = 0;  // when Finish was called
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
  auto* reactor = new StreamReactor(this, context);
  std::lock_guard lock(streams_mu_);
  streams_.insert(reactor);
  return reactor;
}

ScoringService::~ScoringService() {
  {
    std::lock_guard lock(streams_mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
}

void ScoringService::set_stream_idle_seconds(double seconds) {
  idle_seconds_ = seconds;
  if (seconds > 0 && !reaper_.joinable()) reaper_ = std::thread([this] { ReapIdleStreams(); });
}

void ScoringService::ReapIdleStreams() {
  const int64_t idle_ns = static_cast<int64_t>(idle_seconds_ * 1e9);
  // Check a few times per idle period, at most once per 10 ms.
  const auto period = std::chrono::nanoseconds(std::max<int64_t>(idle_ns / 4, 10'000'000));
  std::unique_lock lock(streams_mu_);
  while (!reaper_cv_.wait_for(lock, period, [this] { return stopping_; })) {
    const int64_t now = NowNs();
    for (StreamReactor* r : streams_) r->ExpireIfIdle(now, idle_ns, idle_seconds_);
  }
}

}  // namespace anorand
