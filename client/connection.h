// File: connection.h
//
// The client side of a connection: the global flags every remote command
// takes (--address, --tls-ca/--tls-cert/--tls-key, --token, --timeout),
// the channel they describe, and per-call contexts that always carry a
// deadline and, when set, the bearer token.
#ifndef ANORAND_CLIENT_CONNECTION_H_
#define ANORAND_CLIENT_CONNECTION_H_

#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/args.h"
#include "grpcpp/grpcpp.h"

namespace anorand::cli {

// The flags shared by every remote command.
std::vector<FlagSpec> ConnectionFlags();

// `specs` followed by ConnectionFlags().
std::vector<FlagSpec> WithConnectionFlags(std::vector<FlagSpec> specs);

struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::string address;
  std::string token;
  double timeout_seconds = 30;

  // A context with the deadline (now + timeout, or timeout_override when
  // positive) and the token.
  std::unique_ptr<grpc::ClientContext> NewContext(double timeout_override = 0) const;
  // A context with the token and no deadline, for a stream that lives as
  // long as its input (`score` from stdin, `jobs watch`).
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;
};

// Reads the flags (and ANORAND_ADDRESS / ANORAND_TOKEN) and builds the
// channel. INVALID_ARGUMENT for bad flags or unreadable certificate files.
absl::StatusOr<Connection> Connect(const Args& args);

// A remote command's parsed line, its connection and its usage text.
struct RemoteCommand {
  Args args;
  Connection conn;
  std::string usage;
};

// ParseCommand, then Connect. Returns nullopt with *exit set when the
// command returns now (--help: 0; a usage error, printed with the usage: 2).
std::optional<RemoteCommand> ParseAndConnect(const std::vector<std::string>& argv,
                                             const std::vector<FlagSpec>& specs,
                                             const std::string& usage_head, int* exit);

// Prints "anorand: CODE: message" (CODE as absl::StatusCodeToString names
// it) and returns the exit code for it:
// 3 for UNAVAILABLE and DEADLINE_EXCEEDED, 1 otherwise.
int ReportRpcError(const grpc::Status& status);

}  // namespace anorand::cli

#endif  // ANORAND_CLIENT_CONNECTION_H_
