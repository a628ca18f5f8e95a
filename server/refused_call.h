// File: refused_call.h
//
// A streaming call refused before it starts (bad token, limit reached):
// a reactor that finishes with `status` at once and deletes itself.
#ifndef ANORAND_SERVER_REFUSED_CALL_H_
#define ANORAND_SERVER_REFUSED_CALL_H_

#include "grpcpp/grpcpp.h"

namespace anorand {

// Reactor is grpc::ServerReadReactor<T>, ServerWriteReactor<T> or
// ServerBidiReactor<Req, Resp>.
template <typename Reactor>
Reactor* RefusedCall(const grpc::Status& status) {
  class Refused final : public Reactor {
   public:
    explicit Refused(const grpc::Status& s) { this->Finish(s); }
    void OnDone() override { delete this; }
  };
  return new Refused(status);
}

}  // namespace anorand

#endif  // ANORAND_SERVER_REFUSED_CALL_H_
