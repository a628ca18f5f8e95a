#include "client/connection.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "model/model_file.h"

namespace anorand::cli {
namespace {

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
  auto ctx = NewStreamContext();
  const double t = timeout_override > 0 ? timeout_override : timeout_seconds;
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(t * 1e6)));
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Connection::NewStreamContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
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

std::optional<RemoteCommand> ParseAndConnect(const std::vector<std::string>& argv,
                                             const std::vector<FlagSpec>& specs,
                                             const std::string& usage_head, int* exit) {
  auto command = ParseCommand(argv, specs, usage_head, exit);
  if (!command) return std::nullopt;
  auto c = Connect(command->args);
  if (!c.ok()) {
    *exit = UsageError(std::string(c.status().message()), command->usage);
    return std::nullopt;
  }
  return RemoteCommand{std::move(command->args), *std::move(c), std::move(command->usage)};
}

int ReportRpcError(const grpc::Status& status) {
  // gRPC's status codes are absl's, number for number.
  const std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
  std::fprintf(stderr, "anorand: %s: %s\n", name.c_str(), status.error_message().c_str());
  const auto code = status.error_code();
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED
             ? kExitUnreachable
             : kExitFailed;
}

}  // namespace anorand::cli
