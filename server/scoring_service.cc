#include "server/scoring_service.h"

#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/raw_call.h"
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
                                                const grpc::ByteBuffer* request_bytes,
                                                grpc::ByteBuffer* response_bytes) {
  if (auth_ != nullptr) {
    if (grpc::Status s = auth_->Check(*context); !s.ok()) {
      grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
      reactor->Finish(s);
      return reactor;
    }
  }
  using Call = UnaryCall<v1::ScoreRequest, v1::ScoreResponse>;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Call* call = Call::Start(reactor, request_bytes, response_bytes);
  if (call == nullptr) return reactor;  // finished: the bytes did not parse
  if (context->deadline() < std::chrono::system_clock::now()) {
    call->Reply(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                             "the call's deadline passed before scoring started; give "
                             "the call more time"));
    return reactor;
  }
  if (batcher_ == nullptr) {
    call->Reply(ToGrpcStatus(Handle(ScoreMethod::kScore, call->request(), call->response())));
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
  batcher_->Submit(&call->request(), call->response(), deadline,
                   [this, call, start](const absl::Status& s) {
                     ReportScored(ScoreMethod::kScore, call->request(), start);
                     call->Reply(ToGrpcStatus(s));
                   });
  return reactor;
}

// Reads, scores and writes with one read and one write in flight. State
// shared with OnWriteDone, the reaper and BeginShutdown is guarded by mu_;
// parsing, scoring and serialising run with mu_ released (scoring_ marks
// that phase, so neither the reaper nor a shutdown ends the call under it).
// Deleted when OnDone and every snapshot holder (Ref) are done with it.
class ScoringService::StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(ScoringService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    Touch();
    StartRead(&request_bytes_);
  }

  void Ref() { refs_.fetch_add(1); }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  // The reaper (holding a Ref): ends the stream if nothing completed for
  // idle_ns. A stream that cannot even deliver its end (the client stopped
  // reading, so the status is queued behind responses it will never take)
  // is cancelled one idle period later.
  void ExpireIfIdle(int64_t now_ns, int64_t idle_ns, double idle_seconds) {
    if (now_ns - last_activity_ns_.load() < idle_ns) return;
    absl::MutexLock lock(&mu_);
    if (done_ || cancelled_ || scoring_ || now_ns - last_activity_ns_.load() < idle_ns) return;
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

  // BeginShutdown (holding a Ref): no further reads; the stream ends with
  // UNAVAILABLE once the request being scored and the response being
  // written, if any, are done.
  void EndForShutdown() {
    absl::MutexLock lock(&mu_);
    if (done_ || finished_) return;
    if (final_status_.ok()) final_status_ = ShuttingDownStatus();
    reads_done_ = true;
    MaybeFinishLocked();
  }

  static grpc::Status ShuttingDownStatus() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "server shutting down; reconnect (requests not answered on this "
                        "stream were not scored: send them again)");
  }

  void OnReadDone(bool ok) override {
    Touch();
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || reads_done_) return;  // the call ended or is ending
      if (!ok) {  // the client finished writing (or the call ended)
        reads_done_ = true;
        MaybeFinishLocked();
        return;
      }
      scoring_ = true;
    }
    // Only this reaction touches request_, scored_ and scored_bytes_: one
    // read is in flight, and the next starts after this one is handed off.
    grpc::Status s = ParseRequest(&request_bytes_, index_, &request_);
    if (s.ok()) {
      scored_.Clear();
      absl::Status scored = service_->Handle(ScoreMethod::kStreamScore, request_, &scored_);
      if (!scored.ok()) {
        s = ToGrpcStatus(absl::Status(scored.code(),
                                      absl::StrCat("request ", index_, ": ", scored.message())));
      }
    }
    if (s.ok()) s = SerializeResponse(scored_, &scored_bytes_);
    Touch();
    absl::MutexLock lock(&mu_);
    scoring_ = false;
    if (finished_) return;  // a failed write ended the call meanwhile
    if (!s.ok()) {
      final_status_ = s;
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    ++index_;
    pending_bytes_.Swap(&scored_bytes_);
    has_pending_ = true;
    if (!writing_) {
      WritePendingLocked();
    } else {
      // OnWriteDone writes it and starts the next read (backpressure).
    }
  }

  void OnWriteDone(bool ok) override {
    Touch();
    absl::MutexLock lock(&mu_);
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
      absl::MutexLock lock(&service_->streams_mu_);
      service_->streams_.erase(this);
    }
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    service_->active_streams_.fetch_sub(1);
    if (service_->on_stream_change_) service_->on_stream_change_(-1);
    Unref();
  }

  void OnCancel() override {}

 private:
  void WritePendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_bytes_.Swap(&pending_bytes_);
    has_pending_ = false;
    writing_ = true;
    StartWrite(&writing_bytes_);
    if (!reads_done_) StartRead(&request_bytes_);
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || scoring_ || writing_ || has_pending_ || !reads_done_) return;
    finished_ = true;
    finished_ns_ = NowNs();
    Finish(final_status_);
  }

  void Touch() { last_activity_ns_ = NowNs(); }

  ScoringService* service_;
  grpc::CallbackServerContext* context_;
  std::atomic<int> refs_{1};  // OnDone's, plus one per snapshot holder
  std::atomic<int64_t> last_activity_ns_{0};
  // Owned by the read path (see OnReadDone).
  grpc::ByteBuffer request_bytes_;
  v1::ScoreRequest request_;
  v1::ScoreResponse scored_;
  grpc::ByteBuffer scored_bytes_;
  int64_t index_ = 0;
  absl::Mutex mu_;
  grpc::ByteBuffer pending_bytes_ ABSL_GUARDED_BY(mu_), writing_bytes_ ABSL_GUARDED_BY(mu_);
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool scoring_ ABSL_GUARDED_BY(mu_) = false;    // the read path is parsing or scoring
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // by the reaper
  bool done_ ABSL_GUARDED_BY(mu_) = false;       // OnDone ran: context_ is gone
  int64_t finished_ns_ ABSL_GUARDED_BY(mu_) = 0;  // when Finish was called
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ScoringService::StreamScore(
    grpc::CallbackServerContext* context) {
  using Reactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;
  if (auth_ != nullptr) {
    if (grpc::Status s = auth_->Check(*context); !s.ok()) return RefusedCall<Reactor>(s);
  }
  if (active_streams_.fetch_add(1) >= max_streams_) {
    active_streams_.fetch_sub(1);
    return RefusedCall<Reactor>(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("too many open streams (limit ", max_streams_,
                                  ", --max_streams); close one or retry later")));
  }
  absl::MutexLock lock(&streams_mu_);
  if (shutting_down_) {
    active_streams_.fetch_sub(1);
    return RefusedCall<Reactor>(StreamReactor::ShuttingDownStatus());
  }
  if (on_stream_change_) on_stream_change_(+1);
  auto* reactor = new StreamReactor(this, context);
  streams_.insert(reactor);
  return reactor;
}

std::vector<ScoringService::StreamReactor*> ScoringService::SnapshotStreams() {
  absl::MutexLock lock(&streams_mu_);
  std::vector<StreamReactor*> streams(streams_.begin(), streams_.end());
  for (StreamReactor* r : streams) r->Ref();
  return streams;
}

void ScoringService::BeginShutdown() {
  {
    absl::MutexLock lock(&streams_mu_);
    shutting_down_ = true;
  }
  for (StreamReactor* r : SnapshotStreams()) {
    r->EndForShutdown();
    r->Unref();
  }
}

ScoringService::ScoringService(const ScoreHandler* handler, ScoringServiceOptions options)
    : handler_(handler),
      stream_handler_(options.stream_handler ? options.stream_handler : handler),
      max_streams_(options.max_streams),
      auth_(options.auth),
      batcher_(options.batcher),
      on_stream_change_(std::move(options.on_stream_change)),
      on_scored_(std::move(options.on_scored)),
      idle_seconds_(options.stream_idle_seconds) {
  if (idle_seconds_ > 0) reaper_ = std::thread([this] { ReapIdleStreams(); });
}

ScoringService::~ScoringService() {
  {
    absl::MutexLock lock(&streams_mu_);
    stopping_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
}

void ScoringService::ReapIdleStreams() {
  const int64_t idle_ns = static_cast<int64_t>(idle_seconds_ * 1e9);
  // Check a few times per idle period, at most once per 10 ms.
  const auto period = std::chrono::nanoseconds(std::max<int64_t>(idle_ns / 4, 10'000'000));
  while (true) {
    {
      absl::MutexLock lock(&streams_mu_);
      if (streams_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(period))) {
        return;
      }
    }
    ReapIdleStreamsOnce();
  }
}

void ScoringService::ReapIdleStreamsOnce() {
  if (idle_seconds_ <= 0) return;
  const int64_t idle_ns = static_cast<int64_t>(idle_seconds_ * 1e9);
  const int64_t now = NowNs();
  for (StreamReactor* r : SnapshotStreams()) {
    r->ExpireIfIdle(now, idle_ns, idle_seconds_);
    r->Unref();
  }
}

}  // namespace anorand
