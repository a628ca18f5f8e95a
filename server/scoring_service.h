// File: scoring_service.h
//
// anorand.v1.Scoring on the gRPC callback API, taking requests as bytes and
// parsing them itself (raw_call.h), so a malformed message is
// INVALID_ARGUMENT, never a silent end of the stream. Without batching,
// Score answers on the reaction thread (one forward pass of the whole
// batch); with it, possibly on the thread of a request it was merged with. StreamScore keeps
// one read and one write in flight: while response i is being written,
// request i+1 is read and scored; the model is resolved per message, so a
// hot swap takes effect mid-stream. A stream's scoring runs with no lock
// held, so a large pass delays only its own stream. A stream beyond
// --max_streams is refused with RESOURCE_EXHAUSTED; an error in request i
// (including bytes that do not parse) ends the stream with that status and
// "request i" in the message. BeginShutdown ends every open stream with
// UNAVAILABLE ("server shutting down; reconnect") as soon as the request
// it is scoring, if any, has been answered. A stream with no
// completed read or write for idle_seconds (--stream_idle_seconds) is
// closed: DEADLINE_EXCEEDED when the server was waiting for a request, a
// cancel when the client stopped reading responses, so a stalled client
// holds no server resources for long. Score honours the caller's deadline:
// a request whose deadline passed before scoring is not scored.
#ifndef ANORAND_SERVER_SCORING_SERVICE_H_
#define ANORAND_SERVER_SCORING_SERVICE_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "server/auth.h"
#include "server/batcher.h"
#include "server/score_handler.h"

namespace anorand {

enum class ScoreMethod { kScore, kStreamScore };

using RawScoringService = v1::Scoring::WithRawCallbackMethod_Score<
    v1::Scoring::WithRawCallbackMethod_StreamScore<v1::Scoring::Service>>;

struct ScoringServiceOptions {
  int max_streams = 0;  // open StreamScore calls at once (0 refuses every one)
  // Scores StreamScore messages (null: the Score handler does); a handler
  // per method lets each observer know its method (metrics).
  const ScoreHandler* stream_handler = nullptr;
  // Close streams idle this long (0 = never); > 0 starts the thread that
  // watches them.
  double stream_idle_seconds = 0;
  // Score requests go through this dynamic batcher (batcher.h); null
  // scores each on its own.
  DynamicBatcher* batcher = nullptr;
  // Require the bearer token on scoring too (--require_token_for_scoring);
  // null leaves scoring open.
  const TokenAuth* auth = nullptr;
  // Called with +1 / -1 as streams open and close (metrics); may be empty.
  std::function<void(int)> on_stream_change;
  // Called after each Score call and each StreamScore message that reached
  // the handler, with the seconds from its parse to its answer (with
  // batching, the wait in the batcher included); may be empty.
  std::function<void(ScoreMethod, const v1::ScoreRequest&, double)> on_scored;
};

class ScoringService final : public RawScoringService {
 public:
  ScoringService(const ScoreHandler* handler, ScoringServiceOptions options);
  ~ScoringService() override;

  int active_streams() const { return active_streams_.load(); }

  // Ends every open stream with UNAVAILABLE once its in-flight request is
  // answered, and refuses new streams the same way (graceful shutdown:
  // call before grpc::Server::Shutdown).
  void BeginShutdown();

  // One pass of the idle-stream reaper over a snapshot of the open streams
  // (the reaper thread calls it; tests call it to order events).
  void ReapIdleStreamsOnce();

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamScore(
      grpc::CallbackServerContext* context) override;

 private:
  class StreamReactor;
  // Refs to every open stream (each released with Unref).
  std::vector<StreamReactor*> SnapshotStreams();
  void ReapIdleStreams();
  absl::Status Handle(ScoreMethod method, const v1::ScoreRequest& request,
                      v1::ScoreResponse* response) const;
  // on_scored_ with the time since `start`, when set.
  void ReportScored(ScoreMethod method, const v1::ScoreRequest& request,
                    std::chrono::steady_clock::time_point start) const;

  const ScoreHandler* const handler_;
  const ScoreHandler* const stream_handler_;
  const int max_streams_;
  std::atomic<int> active_streams_{0};
  const TokenAuth* const auth_;
  DynamicBatcher* const batcher_;
  const std::function<void(int)> on_stream_change_;
  const std::function<void(ScoreMethod, const v1::ScoreRequest&, double)> on_scored_;
  const double idle_seconds_;

  // Open streams register while alive; the reaper and BeginShutdown take a
  // reference to each (StreamReactor::Ref) under streams_mu_ and work on
  // that snapshot with streams_mu_ released.
  absl::Mutex streams_mu_;
  std::set<StreamReactor*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool stopping_ ABSL_GUARDED_BY(streams_mu_) = false;  // the reaper ends
  bool shutting_down_ ABSL_GUARDED_BY(streams_mu_) = false;
  std::thread reaper_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SCORING_SERVICE_H_
