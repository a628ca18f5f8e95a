// TLS and mutual TLS on the gRPC port, with a throw-away PKI made by the
// openssl command at test time: plaintext refused when TLS is on, a client
// without a certificate or with one from another CA refused under mTLS, the
// right one accepted, the bearer token still checked over TLS, bad files
// refused at start with the flag named, renewed certificates picked up
// without a restart, and the CLI over mTLS.
#include <filesystem>
#include <fstream>
#include <thread>

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "gtest/gtest.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/server_env.h"
#include "tests/support/subprocess.h"

namespace anorand::test_support {
namespace {

constexpr char kOpenssl[] = "/usr/bin/openssl";

// A CA and a leaf certificate signed by it, as PEM files in a folder.
class Pki {
 public:
  explicit Pki(const std::string& dir) : dir_(dir) {}

  // A self-signed CA: <name>.pem, <name>.key.
  void MakeCa(const std::string& name) {
    Run({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", Path(name + ".key"), "-out", Path(name + ".pem"), "-days", "2",
         "-subj", "/CN=" + name});
  }
  // A leaf signed by `ca`, valid for localhost and 127.0.0.1.
  void MakeLeaf(const std::string& name, const std::string& ca) {
    Run({kOpenssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", Path(name + ".key"), "-out", Path(name + ".csr"), "-subj", "/CN=localhost"});
    {
      std::ofstream ext(Path("san.ext"));
      ext << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    }
    Run({kOpenssl, "x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"),
         "-CAkey", Path(ca + ".key"), "-CAcreateserial", "-out", Path(name + ".pem"), "-days",
         "2", "-extfile", Path("san.ext")});
  }
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }
  std::string Read(const std::string& file) const { return ReadWholeFile(Path(file)); }

 private:
  void Run(const std::vector<std::string>& argv) {
    std::string out, err;
    ASSERT_EQ(RunCommand(argv, &out, &err, 60), 0) << argv[0] << " " << argv[1] << ": " << err;
  }
  std::string dir_;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kOpenssl))
        << kOpenssl << " not found (scripts/install-deps installs it)";
    pki_.MakeCa("ca");
    pki_.MakeLeaf("server", "ca");
    pki_.MakeLeaf("client", "ca");
    pki_.MakeCa("other-ca");
    pki_.MakeLeaf("stranger", "other-ca");
  }

  ServerOptions TlsOptions(bool mutual) {
    ServerOptions o;
    o.model_dir = dir_.path() + "/models";
    o.tls.cert_file = pki_.Path("server.pem");
    o.tls.key_file = pki_.Path("server.key");
    if (mutual) o.tls.client_ca_file = pki_.Path("ca.pem");
    return o;
  }

  // A channel trusting `ca`, presenting `leaf` when not empty.
  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& ca,
                                         const std::string& leaf = "") {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = pki_.Read(ca + ".pem");
    if (!leaf.empty()) {
      o.pem_cert_chain = pki_.Read(leaf + ".pem");
      o.pem_private_key = pki_.Read(leaf + ".key");
    }
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(o));
  }
  static std::shared_ptr<grpc::Channel> Plaintext(int port) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                               grpc::InsecureChannelCredentials());
  }

  static grpc::Status Check(const std::shared_ptr<grpc::Channel>& channel) {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    return health->Check(&ctx, req, &resp);
  }

  TempDir dir_;
  Pki pki_{dir_.path()};
};

TEST_F(TlsTest, PlaintextRefusedAndTrustedClientServed) {
  ServerEnv env(TlsOptions(/*mutual=*/false));
  const int port = env.server().port();
  EXPECT_EQ(Check(Plaintext(port)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Check(Channel(port, "ca")).ok());
  // A client that trusts another CA refuses the server.
  EXPECT_EQ(Check(Channel(port, "other-ca")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsNeedsACertificateFromTheConfiguredCa) {
  ServerEnv env(TlsOptions(/*mutual=*/true));
  const int port = env.server().port();
  EXPECT_EQ(Check(Plaintext(port)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Check(Channel(port, "ca")).error_code(), grpc::StatusCode::UNAVAILABLE)
      << "no client certificate";
  EXPECT_EQ(Check(Channel(port, "ca", "stranger")).error_code(), grpc::StatusCode::UNAVAILABLE)
      << "client certificate from another CA";
  EXPECT_TRUE(Check(Channel(port, "ca", "client")).ok());

  // Scoring works end to end over mTLS.
  auto channel = Channel(port, "ca", "client");
  grpc::ClientContext ictx;
  v1::VersionInfo info;
  auto writer = v1::Models::NewStub(channel)->ImportVersion(&ictx, &info);
  v1::ImportChunk header;
  header.mutable_header()->set_model_name("m");
  ASSERT_TRUE(writer->Write(header));
  v1::ImportChunk data;
  data.set_data(SerializeModel(TinyModel(8)));
  ASSERT_TRUE(writer->Write(data));
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  grpc::ClientContext sctx;
  v1::ScoreResponse resp;
  ASSERT_TRUE(v1::Scoring::NewStub(channel)->Score(&sctx, MakeRequest("m", 5, 8), &resp).ok());
  EXPECT_EQ(resp.scores_size(), 5);
}

TEST_F(TlsTest, BearerTokenStillCheckedOverTls) {
  ServerOptions o = TlsOptions(/*mutual=*/true);
  o.auth_token = "s3cret";
  ServerEnv env(o);
  auto models = v1::Models::NewStub(Channel(env.server().port(), "ca", "client"));
  {
    grpc::ClientContext ctx;
    v1::ListModelsRequest req;
    v1::ListModelsResponse resp;
    EXPECT_EQ(models->ListModels(&ctx, req, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer s3cret");
    v1::ListModelsRequest req;
    v1::ListModelsResponse resp;
    EXPECT_TRUE(models->ListModels(&ctx, req, &resp).ok());
  }
}

TEST_F(TlsTest, BadFilesRefusedAtStartWithTheFlagNamed) {
  struct Case {
    std::string cert, key, ca, flag;
  } cases[] = {
      {pki_.Path("server.pem"), "", "", "--tls_key"},
      {"", pki_.Path("server.key"), "", "--tls_cert"},
      {"", "", pki_.Path("ca.pem"), "--tls_cert"},
      {pki_.Path("missing.pem"), pki_.Path("server.key"), "", "--tls_cert"},
      {pki_.Path("server.csr"), pki_.Path("server.key"), "", "--tls_cert"},
      {pki_.Path("server.pem"), pki_.Path("server.pem"), "", "--tls_key"},
      {pki_.Path("server.pem"), pki_.Path("client.key"), "", "--tls_key"},
      {pki_.Path("server.pem"), pki_.Path("server.key"), pki_.Path("server.key"),
       "--tls_client_ca"},
  };
  for (const Case& c : cases) {
    ServerOptions o;
    o.grpc_address = "127.0.0.1:0";
    o.model_dir = dir_.path() + "/models";
    o.tls.cert_file = c.cert;
    o.tls.key_file = c.key;
    o.tls.client_ca_file = c.ca;
    auto s = AnorandServer::Start(o);
    ASSERT_FALSE(s.ok()) << c.cert << " " << c.key << " " << c.ca;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.flag), std::string::npos) << s.status().message();
  }
}

// A certificate renewed on disk (written aside, then renamed over the old
// one, as Kubernetes updates a mounted Secret) is served without a restart.
TEST_F(TlsTest, RenewedCertificateIsPickedUpWithoutRestart) {
  ServerOptions o = TlsOptions(/*mutual=*/false);
  o.tls.reload_seconds = 1;
  ServerEnv env(o);
  const int port = env.server().port();
  ASSERT_TRUE(Check(Channel(port, "ca")).ok());

  pki_.MakeCa("new-ca");
  pki_.MakeLeaf("renewed", "new-ca");
  std::filesystem::rename(pki_.Path("renewed.key"), pki_.Path("server.key"));
  std::filesystem::rename(pki_.Path("renewed.pem"), pki_.Path("server.pem"));
  const bool renewed = WaitUntil([&] { return Check(Channel(port, "new-ca")).ok(); }, 60, 250);
  EXPECT_TRUE(renewed) << "the server still presents the old certificate after 60 s";
  EXPECT_EQ(Check(Channel(port, "ca")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, CliConnectsOverMutualTls) {
  ServerEnv env(TlsOptions(/*mutual=*/true));
  const std::string address = "127.0.0.1:" + std::to_string(env.server().port());
  std::string out, err;
  EXPECT_EQ(RunCommand({ClientBinary(), "health", "--address", address, "--tls-ca",
                        pki_.Path("ca.pem"), "--tls-cert", pki_.Path("client.pem"), "--tls-key",
                        pki_.Path("client.key")},
                       &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("SERVING"), std::string::npos) << out;
  // By name, checked against an override (the certificate says localhost).
  EXPECT_EQ(RunCommand({ClientBinary(), "health", "--address", address, "--tls-ca",
                        pki_.Path("ca.pem"), "--tls-cert", pki_.Path("client.pem"), "--tls-key",
                        pki_.Path("client.key"), "--tls-server-name", "localhost"},
                       &out, &err),
            0)
      << err;
  // Without a client certificate: unreachable (exit 3), not a crash.
  EXPECT_EQ(RunCommand({ClientBinary(), "health", "--address", address, "--timeout", "5",
                        "--tls-ca", pki_.Path("ca.pem")},
                       &out, &err),
            3)
      << err;
  // A server name that the certificate does not carry is refused.
  EXPECT_EQ(RunCommand({ClientBinary(), "health", "--address", address, "--timeout", "5",
                        "--tls-ca", pki_.Path("ca.pem"), "--tls-cert", pki_.Path("client.pem"),
                        "--tls-key", pki_.Path("client.key"), "--tls-server-name",
                        "evil.example"},
                       &out, &err),
            3)
      << err;
  // Usage errors: exit 2 with the reason.
  EXPECT_EQ(RunCommand({ClientBinary(), "health", "--address", address, "--tls-server-name",
                        "localhost"},
                       &out, &err),
            2);
  EXPECT_NE(err.find("--tls-server-name needs TLS"), std::string::npos) << err;
}

}  // namespace
}  // namespace anorand::test_support
