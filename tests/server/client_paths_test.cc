// What clients are told about the server's folders: messages name model
// files relative to the store and never carry the server's absolute
// layout, through statuses and through the error fields of responses.
#include "server/client_paths.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model_file.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClientTextTest, RewritesRegisteredFoldersOnly) {
  ClientFolders folders({{"/srv/anorand/models", "the model store (--model_dir)"},
                         {"/srv/anorand/models/.jobs", "the job records folder"},
                         {"", "skipped"}});
  EXPECT_EQ(ClientText("/srv/anorand/models/fraud/3/model.anorand: bad CRC"),
            "fraud/3/model.anorand: bad CRC");
  EXPECT_EQ(ClientText("cannot list /srv/anorand/models: EACCES"),
            "cannot list the model store (--model_dir): EACCES");
  EXPECT_EQ(ClientText("/srv/anorand/models/.jobs/j1.json"), "j1.json");
  EXPECT_EQ(ClientText("/srv/anorand/models2/x and /srv/anorand/models"),
            "/srv/anorand/models2/x and the model store (--model_dir)")
      << "only whole folder names";
  EXPECT_EQ(ClientText("/tmp/other: nothing registered"), "/tmp/other: nothing registered");
}

TEST(ClientTextTest, RegistrationEndsWithItsOwner) {
  {
    ClientFolders folders(std::vector<std::pair<std::string, std::string>>{{"/srv/x/", "X"}});
    EXPECT_EQ(ClientText("/srv/x/a"), "a") << "a trailing slash is the same folder";
  }
  EXPECT_EQ(ClientText("/srv/x/a"), "/srv/x/a");
}

TEST(ClientPathsTest, AFailedVersionsErrorAndScoringStatusNameTheFileInsideTheStore) {
  ServerOptions o;
  o.poll_seconds = 0.05;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", TinyModel(8)).ok());
  const std::string dir = env.model_dir() + "/m/2";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/model.anorand", std::ios::binary) << "garbage";
  v1::ModelInfo info;
  WaitUntil([&] { return (info = env.GetModel("m")).versions_size() >= 2; }, 10);
  ASSERT_EQ(info.versions_size(), 2);
  const std::string error = info.versions(1).error();
  EXPECT_THAT(error, HasSubstr("m/2/model.anorand"));
  EXPECT_THAT(error, Not(HasSubstr(env.model_dir()))) << error;

  grpc::ClientContext ctx;
  v1::ScoreRequest req = MakeRequest("m", 2, 8);
  req.mutable_model()->set_version(2);
  v1::ScoreResponse resp;
  const grpc::Status s = env.scoring()->Score(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), Not(HasSubstr(env.model_dir()))) << s.error_message();
  EXPECT_THAT(s.error_message(), Not(HasSubstr(std::filesystem::temp_directory_path().string())))
      << s.error_message();
}

}  // namespace
}  // namespace anorand::test_support
