#include "server/tls.h"

#include <cstdio>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace anorand {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using File = std::unique_ptr<FILE, FileCloser>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

absl::Status Bad(const std::string& flag, const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", path, ": ", what));
}

absl::StatusOr<File> Open(const std::string& flag, const std::string& path) {
  File f(fopen(path.c_str(), "rb"));
  if (!f) return Bad(flag, path, "cannot be read (missing file or no permission)");
  return f;
}

// The first certificate of a PEM file (at least one is required).
absl::StatusOr<Cert> FirstCert(const std::string& flag, const std::string& path) {
  auto f = Open(flag, path);
  if (!f.ok()) return f.status();
  Cert first(PEM_read_X509(f->get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!first) {
    return Bad(flag, path,
               "holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks)");
  }
  return first;
}

}  // namespace

absl::Status ValidateTlsOptions(const TlsOptions& o) {
  if (!o.enabled()) return absl::OkStatus();
  if (o.cert_file.empty() || o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert and --tls_key (--tls_client_ca alone is not enough: the "
        "server must present a certificate of its own)");
  }
  if (o.reload_seconds < 1 || o.reload_seconds > 86400) {
    return absl::InvalidArgumentError("--tls_reload_seconds must be in [1, 86400]");
  }
  auto cert = FirstCert("tls_cert", o.cert_file);
  if (!cert.ok()) return cert.status();
  auto kf = Open("tls_key", o.key_file);
  if (!kf.ok()) return kf.status();
  Key key(PEM_read_PrivateKey(kf->get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) {
    return Bad("tls_key", o.key_file,
               "holds no unencrypted PEM private key (expected '-----BEGIN PRIVATE KEY-----'; "
               "remove a passphrase with `openssl pkey -in KEY -out KEY.plain`)");
  }
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    ERR_clear_error();
    return Bad("tls_key", o.key_file,
               absl::StrCat("does not match the certificate in --tls_cert ", o.cert_file));
  }
  if (!o.client_ca_file.empty()) {
    auto ca = FirstCert("tls_client_ca", o.client_ca_file);
    if (!ca.ok()) return ca.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& o) {
  if (!o.enabled()) return grpc::InsecureServerCredentials();
  if (absl::Status s = ValidateTlsOptions(o); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      o.key_file, o.cert_file, o.client_ca_file, static_cast<unsigned>(o.reload_seconds));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!o.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace anorand
