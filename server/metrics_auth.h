// File: metrics_auth.h
//
// HTTP basic authentication for the metrics endpoint
// (--metrics_basic_auth_file): the file holds one line `USER:PASSWORD`,
// the same pair Prometheus's `basic_auth` (with `password_file`) sends.
// Without it /metrics is open to whoever can reach --metrics_address; the
// series name models and versions, so bind it to a private address or turn
// this on (docs/OPERATIONS.md, "Who can see what").
#ifndef ANORAND_SERVER_METRICS_AUTH_H_
#define ANORAND_SERVER_METRICS_AUTH_H_

#include <string>

#include "absl/status/statusor.h"

namespace anorand {

struct BasicAuthCredentials {
  std::string user;
  std::string password;
  // True when the pair matches, compared in time independent of where the
  // strings differ.
  bool Matches(const std::string& user, const std::string& password) const;
};

// Reads `path`: one line USER:PASSWORD (a final newline is allowed), user
// without ':', neither empty. INVALID_ARGUMENT naming the flag and the fix.
absl::StatusOr<BasicAuthCredentials> ReadBasicAuthFile(const std::string& path);

}  // namespace anorand

#endif  // ANORAND_SERVER_METRICS_AUTH_H_
