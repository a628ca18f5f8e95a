// File: tls.h
//
// TLS and mutual TLS for the gRPC port. The files are checked up front with
// OpenSSL (readable, PEM, the key matches the certificate, the CA file holds
// certificates) so that a bad flag fails the start with a message naming it,
// instead of gRPC refusing handshakes later. The credentials watch the files
// (grpc's FileWatcherCertificateProvider): a certificate renewed on disk, as
// cert-manager does with a Kubernetes Secret, is picked up without a restart.
#ifndef ANORAND_SERVER_TLS_H_
#define ANORAND_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace anorand {

struct TlsOptions {
  std::string cert_file;       // PEM certificate chain of the server ("" = plaintext)
  std::string key_file;        // PEM private key of that certificate
  std::string client_ca_file;  // PEM CA bundle; set = clients must present a cert it signed
  int reload_seconds = 60;     // how often the files are re-read
  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !client_ca_file.empty(); }
};

// INVALID_ARGUMENT naming the flag (--tls_cert, --tls_key, --tls_client_ca)
// when a file is missing, unreadable, not PEM, or the key does not match.
absl::Status ValidateTlsOptions(const TlsOptions& options);

// Plaintext credentials when !options.enabled(); otherwise validates and
// returns watching TLS credentials.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

}  // namespace anorand

#endif  // ANORAND_SERVER_TLS_H_
