// /metrics behind HTTP basic authentication (--metrics_basic_auth_file):
// without the pair, or with a wrong one, 401 and no series; with it, the
// series. A bad file stops the server at start with a message naming the
// flag.
#include <fstream>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics_auth.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Authorization(const std::string& user_password) {
  return "Authorization: Basic " + absl::Base64Escape(user_password) + "\r\n";
}

TEST(MetricsAuthTest, MetricsNeedTheConfiguredPair) {
  TempDir dir;
  std::ofstream(dir.File("auth")) << "prometheus:s3cret pass\n";
  ServerOptions o;
  o.metrics_address = "127.0.0.1:0";
  o.metrics_basic_auth_file = dir.File("auth");
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("fraud", TinyModel(8)).ok());
  const int port = env.server().metrics_port();
  ASSERT_GT(port, 0);
  for (const std::string& headers :
       {std::string(), Authorization("prometheus:wrong"), Authorization("other:s3cret pass"),
        Authorization("prometheus:s3cret pass2")}) {
    const std::string refused = HttpGetRaw(port, "/metrics", headers);
    EXPECT_THAT(refused, StartsWith("HTTP/1.1 401")) << headers;
    EXPECT_THAT(refused, Not(HasSubstr("fraud"))) << headers;
  }
  const std::string ok = HttpGetRaw(port, "/metrics", Authorization("prometheus:s3cret pass"));
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(ok, HasSubstr("anorand_"));
}

TEST(MetricsAuthTest, BadFilesAreRefusedNamingTheFlag) {
  TempDir dir;
  for (const auto& [content, why] : std::vector<std::pair<std::string, std::string>>{
           {"no-colon\n", "no ':'"},
           {":password\n", "user is empty"},
           {"user:\n", "password is empty"},
           {"a:b\nc:d\n", "more than one line"}}) {
    std::ofstream(dir.File("f"), std::ios::trunc) << content;
    auto read = ReadBasicAuthFile(dir.File("f"));
    ASSERT_FALSE(read.ok()) << content;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(read.status().message(), HasSubstr("--metrics_basic_auth_file="));
    EXPECT_THAT(read.status().message(), HasSubstr(why));
  }
  EXPECT_FALSE(ReadBasicAuthFile(dir.File("missing")).ok());
  std::ofstream(dir.File("f"), std::ios::trunc) << "u:p:with:colons\r\n";
  auto read = ReadBasicAuthFile(dir.File("f"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->Matches("u", "p:with:colons"));
  EXPECT_FALSE(read->Matches("u", "p"));

  ServerOptions o;
  o.metrics_address = "127.0.0.1:0";
  o.metrics_basic_auth_file = dir.File("missing");
  EXPECT_THAT(std::string(ValidateServerOptions(o).message()),
              HasSubstr("--metrics_basic_auth_file="));
}

}  // namespace
}  // namespace anorand::test_support
