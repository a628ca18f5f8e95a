#include "client/connection.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "model/model_file.h"

namespace anorand::cli {
namespace {

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  auto bytes = ReadFileBounded(path, 1 << 20);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", bytes.status().message()));
  }
  return *bytes;
}

}  // namespace

std::vector<FlagSpec> ConnectionFlags() {
  return {{"address", true, "server HOST:PORT (default $ANORAND_ADDRESS or localhost:50051)"},
          {"tls-ca", true, "PEM file of the CA that signed the server certificate (enables TLS)"},
          {"tls-cert", true, "PEM client certificate (mutual TLS)"},
          {"tls-key", true, "PEM client private key (mutual TLS)"},
          {"tls-server-name", true,
           "name to check the server certificate against, when --address is an IP or "
           "another name (TLS)"},
          {"token", true, "bearer token (default $ANORAND_TOKEN)"},
          {"timeout", true, "deadline of each call in seconds (default 30)"}};
}

std::vector<FlagSpec> WithConnectionFlags(std::vector<FlagSpec> specs) {
  for (auto& f : ConnectionFlags()) specs.push_back(f);
  return specs;
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(double timeout_override) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  const double t = timeout_override > 0 ? timeout_override : timeout_seconds;
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(t * 1e6)));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

absl::StatusOr<Connection> Connect(const Args& a) {
  Connection c;
  const char* env_addr = std::getenv("ANORAND_ADDRESS");
  c.address = a.Get("address", env_addr && *env_addr ? env_addr : "localhost:50051");
  const char* env_token = std::getenv("ANORAND_TOKEN");
  c.token = a.Get("token", env_token ? env_token : "");
  auto timeout = a.GetDouble("timeout", 30);
  if (!timeout.ok()) return timeout.status();
  if (*timeout <= 0 || *timeout > 86400) {
    return absl::InvalidArgumentError("--timeout must be in (0, 86400] seconds");
  }
  c.timeout_seconds = *timeout;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  const bool tls = a.Has("tls-ca") || a.Has("tls-cert") || a.Has("tls-key");
  if (a.Has("tls-server-name") && !tls) {
    return absl::InvalidArgumentError("--tls-server-name needs TLS: add --tls-ca (or --tls-cert "
                                      "and --tls-key)");
  }
  if (tls) {
    if (a.Has("tls-cert") != a.Has("tls-key")) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    grpc::SslCredentialsOptions o;
    if (a.Has("tls-ca")) {
      auto ca = ReadPem(a.Get("tls-ca"), "tls-ca");
      if (!ca.ok()) return ca.status();
      o.pem_root_certs = *ca;
    }
    if (a.Has("tls-cert")) {
      auto cert = ReadPem(a.Get("tls-cert"), "tls-cert");
      if (!cert.ok()) return cert.status();
      auto key = ReadPem(a.Get("tls-key"), "tls-key");
      if (!key.ok()) return key.status();
      o.pem_cert_chain = *cert;
      o.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(o);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  if (a.Has("tls-server-name")) args.SetSslTargetNameOverride(a.Get("tls-server-name"));
  c.channel = grpc::CreateCustomChannel(c.address, creds, args);
  return c;
}

std::optional<std::pair<Args, Connection>> ParseAndConnect(const std::vector<std::string>& argv,
                                                           const std::vector<FlagSpec>& specs,
                                                           const std::string& usage, int* exit) {
  auto a = Args::Parse(argv, specs);
  if (!a.ok()) {
    *exit = UsageError(std::string(a.status().message()), usage);
    return std::nullopt;
  }
  auto c = Connect(*a);
  if (!c.ok()) {
    *exit = UsageError(std::string(c.status().message()), usage);
    return std::nullopt;
  }
  return std::make_pair(*std::move(a), *std::move(c));
}

int ReportRpcError(const grpc::Status& status) {
  std::fprintf(stderr, "anorand: %s: %s\n", CodeName(status.error_code()),
               status.error_message().c_str());
  const auto code = status.error_code();
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED
             ? kExitUnreachable
             : kExitFailed;
}

}  // namespace anorand::cli
