// File: auth.h
//
// Bearer-token check for Models, Training and Feedback, and for Scoring
// with --require_token_for_scoring: when a token is configured
// (--admin_token_file, else --auth_token, else ANORAND_AUTH_TOKEN), every
// call must carry the metadata `authorization: Bearer <token>`; otherwise
// UNAUTHENTICATED. The comparison takes the same time whatever the input.
// An empty configured token disables the check. Thread-safe (immutable).
#ifndef ANORAND_SERVER_AUTH_H_
#define ANORAND_SERVER_AUTH_H_

#include <string>

#include "grpcpp/grpcpp.h"

namespace anorand {

class TokenAuth {
 public:
  explicit TokenAuth(std::string token) : token_(std::move(token)) {}
  bool enabled() const { return !token_.empty(); }
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  std::string token_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_AUTH_H_
