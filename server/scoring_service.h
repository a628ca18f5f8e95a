// File: scoring_service.h
//
// anorand.v1.Scoring on the gRPC callback API. Score answers on the
// reaction thread (one forward pass of the whole batch). StreamScore keeps
// one read and one write in flight: while response i is being written,
// request i+1 is read and scored; the model is resolved per message, so a
// hot swap takes effect mid-stream. A stream beyond --max_streams is
// refused with RESOURCE_EXHAUSTED; an error in request i ends the stream
// with that status and "request i: " before the message.
#ifndef ANORAND_SERVER_SCORING_SERVICE_H_
#define ANORAND_SERVER_SCORING_SERVICE_H_

#include <atomic>
#include <functional>

#include "anorand/v1/scoring.grpc.pb.h"
#include "server/score_handler.h"

namespace anorand {

class ScoringService final : public v1::Scoring::CallbackService {
 public:
  ScoringService(const ScoreHandler* handler, int max_streams)
      : handler_(handler), max_streams_(max_streams) {}

  // Called with +1 / -1 as streams open and close (metrics).
  void set_on_stream_change(std::function<void(int)> f) { on_stream_change_ = std::move(f); }
  int active_streams() const { return active_streams_.load(); }

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerBidiReactor<v1::ScoreRequest, v1::ScoreResponse>* StreamScore(
      grpc::CallbackServerContext* context) override;

 private:
  class StreamReactor;
  const ScoreHandler* handler_;
  const int max_streams_;
  std::atomic<int> active_streams_{0};
  std::function<void(int)> on_stream_change_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SCORING_SERVICE_H_
