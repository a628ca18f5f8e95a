// File: status_util.h
//
// The one place absl::Status becomes grpc::Status (the edge of the server):
// the canonical codes map one to one, the message is kept with the
// server's folders rewritten as clients know them (client_paths.h).
#ifndef ANORAND_SERVER_STATUS_UTIL_H_
#define ANORAND_SERVER_STATUS_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/client_paths.h"

namespace anorand {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), ClientText(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace anorand

#endif  // ANORAND_SERVER_STATUS_UTIL_H_
