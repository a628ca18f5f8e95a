// Models administration over real gRPC: aliases, load/unload/delete,
// export/import round trip, bad imports, a corrupt file dropped into the
// store, the bearer token.
#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/server_env.h"
#include "tests/support/subprocess.h"

namespace anorand::testing {
namespace {

using ::testing::HasSubstr;
constexpr int kD = 6;

class ModelsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    m1_ = new v1::ModelFile(TinyModel(kD, 1));
    m2_ = new v1::ModelFile(TinyModel(kD, 2));
  }
  static void TearDownTestSuite() {
    delete m1_;
    delete m2_;
  }
  grpc::Status Score(ServerEnv& env, const std::string& alias, int64_t* version) {
    grpc::ClientContext ctx;
    v1::ScoreRequest req = MakeRequest("m", 3, kD);
    if (!alias.empty()) req.mutable_model()->set_alias(alias);
    v1::ScoreResponse resp;
    grpc::Status s = env.scoring()->Score(&ctx, req, &resp);
    *version = resp.model_version();
    return s;
  }
  static v1::ModelFile *m1_, *m2_;
};
v1::ModelFile* ModelsTest::m1_ = nullptr;
v1::ModelFile* ModelsTest::m2_ = nullptr;

TEST_F(ModelsTest, AliasesMoveAndLatestFollowsNewVersions) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  ASSERT_TRUE(env.Import("m", *m2_).ok());
  int64_t v = 0;
  ASSERT_TRUE(Score(env, "", &v).ok());
  EXPECT_EQ(v, 2);
  ASSERT_TRUE(Score(env, "production", &v).ok());
  EXPECT_EQ(v, 1);
  auto stub = env.models();
  {
    grpc::ClientContext ctx;
    v1::SetAliasRequest req;
    req.set_model_name("m");
    req.set_alias("production");
    req.set_version(2);
    v1::ModelInfo info;
    ASSERT_TRUE(stub->SetAlias(&ctx, req, &info).ok());
    EXPECT_EQ(info.aliases().at("production"), 2);
  }
  ASSERT_TRUE(Score(env, "production", &v).ok());
  EXPECT_EQ(v, 2);
  // The alias file survives a restart.
  env.Stop();
  env.Start();
  ASSERT_TRUE(Score(env, "production", &v).ok());
  EXPECT_EQ(v, 2);
  {
    grpc::ClientContext ctx;
    v1::SetAliasRequest req;
    req.set_model_name("m");
    req.set_alias("latest");
    req.set_version(1);
    v1::ModelInfo info;
    grpc::Status s = env.models()->SetAlias(&ctx, req, &info);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("reserved"));
  }
}

TEST_F(ModelsTest, DeleteRefusesAnAliasedVersionUnlessForced) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  ASSERT_TRUE(env.Import("m", *m2_).ok());
  auto stub = env.models();
  v1::DeleteVersionRequest req;
  req.set_model_name("m");
  req.set_version(1);
  v1::DeleteVersionResponse resp;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub->DeleteVersion(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("alias 'production' points at version 1"));
  }
  req.set_force(true);
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->DeleteVersion(&ctx, req, &resp).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(env.model_dir() + "/m/1"));
  int64_t v = 0;
  EXPECT_EQ(Score(env, "production", &v).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Score(env, "", &v).ok());
  EXPECT_EQ(v, 2);
}

TEST_F(ModelsTest, UnloadedVersionIsNotServedUntilLoaded) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_).ok());
  ASSERT_TRUE(env.Import("m", *m2_).ok());
  auto stub = env.models();
  {
    grpc::ClientContext ctx;
    v1::UnloadVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    v1::VersionInfo info;
    ASSERT_TRUE(stub->UnloadVersion(&ctx, req, &info).ok());
    EXPECT_EQ(info.state(), v1::VERSION_STATE_UNLOADED);
  }
  int64_t v = 0;
  ASSERT_TRUE(Score(env, "", &v).ok());
  EXPECT_EQ(v, 1);
  {
    grpc::ClientContext ctx;
    v1::LoadVersionRequest req;
    req.set_model_name("m");
    req.set_version(2);
    v1::VersionInfo info;
    ASSERT_TRUE(stub->LoadVersion(&ctx, req, &info).ok());
    EXPECT_EQ(info.state(), v1::VERSION_STATE_READY);
    EXPECT_EQ(info.input_features(), kD);
  }
  ASSERT_TRUE(Score(env, "", &v).ok());
  EXPECT_EQ(v, 2);
}

TEST_F(ModelsTest, ExportThenImportIsByteExact) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_).ok());
  grpc::ClientContext ctx;
  v1::ExportVersionRequest req;
  req.mutable_model()->set_name("m");
  auto stub = env.models();
  auto reader = stub->ExportVersion(&ctx, req);
  std::string bytes;
  v1::ExportChunk chunk;
  int64_t version = 0;
  while (reader->Read(&chunk)) {
    if (chunk.version()) version = chunk.version();
    bytes += chunk.data();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(version, 1);
  EXPECT_EQ(bytes, SerializeModel(*m1_));
  int64_t published = 0;
  ASSERT_TRUE(env.ImportBytes("copy", bytes, 5, "", &published).ok());
  EXPECT_EQ(published, 5);
  grpc::Status again = env.ImportBytes("copy", bytes, 5);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(ModelsTest, BadImportsAreRefusedAndNothingIsWritten) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.max_upload_bytes = 1 << 20;
  ServerEnv env(o);
  std::string good = SerializeModel(*m1_);
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  struct Case {
    std::string name, bytes;
    grpc::StatusCode code;
    std::string message;
  } cases[] = {
      {"m", "not a model", grpc::StatusCode::INVALID_ARGUMENT, "shorter than the 28-byte header"},
      {"m", good.substr(0, good.size() - 10), grpc::StatusCode::INVALID_ARGUMENT, "truncated"},
      {"m", flipped, grpc::StatusCode::INVALID_ARGUMENT, "checksum mismatch"},
      {"../evil", good, grpc::StatusCode::INVALID_ARGUMENT, "must start with a letter or digit"},
      {"m", std::string(2 << 20, 'x'), grpc::StatusCode::RESOURCE_EXHAUSTED, "upload limit"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    grpc::Status s = env.ImportBytes(c.name, c.bytes);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  EXPECT_FALSE(std::filesystem::exists(env.model_dir() + "/m"));
  EXPECT_FALSE(std::filesystem::exists(env.model_dir() + "/../evil"));
}

TEST_F(ModelsTest, CorruptFileDroppedIntoTheStoreIsRefusedAndThePreviousVersionServes) {
  ServerOptions o;
  o.poll_seconds = 0.05;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_).ok());
  const std::string good = SerializeModel(*m2_);
  for (const std::string& bad : {good.substr(0, good.size() / 2), std::string("garbage")}) {
    const int64_t version = bad == "garbage" ? 3 : 2;
    const std::string dir = env.model_dir() + "/m/" + std::to_string(version);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/model.anorand", std::ios::binary) << bad;
    // Wait for the poller to see it.
    v1::ModelInfo info;
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      v1::GetModelRequest req;
      req.mutable_model()->set_name("m");
      ASSERT_TRUE(env.models()->GetModel(&ctx, req, &info).ok());
      if (info.versions_size() == static_cast<int>(version)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(info.versions_size(), version);
    EXPECT_EQ(info.versions(version - 1).state(), v1::VERSION_STATE_FAILED);
    EXPECT_THAT(info.versions(version - 1).error(), HasSubstr("not a valid model file"));
    EXPECT_EQ(info.latest_ready_version(), 1);
    int64_t v = 0;
    ASSERT_TRUE(Score(env, "", &v).ok());
    EXPECT_EQ(v, 1);
  }
  // Another process publishing a good version is picked up by the poller.
  std::filesystem::create_directories(env.model_dir() + "/m/.incoming");
  std::ofstream(env.model_dir() + "/m/.incoming/model.anorand", std::ios::binary) << good;
  std::filesystem::rename(env.model_dir() + "/m/.incoming", env.model_dir() + "/m/4");
  int64_t v = 0;
  for (int i = 0; i < 200 && v != 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(Score(env, "", &v).ok());
  }
  EXPECT_EQ(v, 4);
  // And a version deleted behind the server's back goes away.
  std::filesystem::remove_all(env.model_dir() + "/m/4");
  for (int i = 0; i < 200 && v != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(Score(env, "", &v).ok());
  }
  EXPECT_EQ(v, 1);
}

// --max_loaded_model_bytes: a load or import past the cap fails cleanly,
// writes nothing, and the versions already serving keep serving.
TEST_F(ModelsTest, LoadedModelBytesAreCapped) {
  const int64_t size = static_cast<int64_t>(SerializeModel(*m1_).size());
  ServerOptions o;
  o.poll_seconds = 0.05;
  o.max_loaded_model_bytes = size + size / 2;  // room for one version
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_).ok());
  grpc::Status s = env.Import("m", *m2_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_loaded_model_bytes"));
  EXPECT_FALSE(std::filesystem::exists(env.model_dir() + "/m/2"));
  int64_t v = 0;
  ASSERT_TRUE(Score(env, "", &v).ok());
  EXPECT_EQ(v, 1);

  auto call = [&](auto method, auto request) {
    grpc::ClientContext ctx;
    v1::VersionInfo info;
    return (env.models().get()->*method)(&ctx, request, &info);
  };
  v1::UnloadVersionRequest unload;
  unload.set_model_name("m");
  unload.set_version(1);
  ASSERT_TRUE(call(&v1::Models::Stub::UnloadVersion, unload).ok());
  ASSERT_TRUE(env.Import("m", *m2_).ok()) << "unloading made room";
  v1::LoadVersionRequest load;
  load.set_model_name("m");
  load.set_version(1);
  s = call(&v1::Models::Stub::LoadVersion, load);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_loaded_model_bytes"));

  // A version another process drops into the store is marked failed, with
  // the reason, and version 2 keeps serving.
  const std::string dir = env.model_dir() + "/m/3";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/model.anorand", std::ios::binary) << SerializeModel(*m1_);
  v1::ModelInfo info;
  for (int i = 0; i < 200 && info.versions_size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    grpc::ClientContext ctx;
    v1::GetModelRequest req;
    req.mutable_model()->set_name("m");
    ASSERT_TRUE(env.models()->GetModel(&ctx, req, &info).ok());
  }
  ASSERT_EQ(info.versions_size(), 3);
  EXPECT_EQ(info.versions(2).state(), v1::VERSION_STATE_FAILED);
  EXPECT_THAT(info.versions(2).error(), HasSubstr("--max_loaded_model_bytes"));
  ASSERT_TRUE(Score(env, "", &v).ok());
  EXPECT_EQ(v, 2);
}

// A damaged aliases.json is not overwritten (that would drop every alias in
// it): alias changes are refused until it is fixed; the version still serves.
TEST_F(ModelsTest, DamagedAliasesFileIsNotOverwritten) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  const std::string path = env.model_dir() + "/m/aliases.json";
  std::ofstream(path, std::ios::trunc) << "{\"production\": 1, \"canary\": ";
  grpc::ClientContext ctx;
  v1::SetAliasRequest req;
  req.set_model_name("m");
  req.set_alias("shadow");
  req.set_version(1);
  v1::ModelInfo info;
  grpc::Status s = env.models()->SetAlias(&ctx, req, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("aliases.json"));
  EXPECT_EQ(ReadWholeFile(path), "{\"production\": 1, \"canary\": ");
  s = env.Import("m", *m2_, 0, "canary");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  int64_t v = 0;
  ASSERT_TRUE(Score(env, "production", &v).ok());
  EXPECT_EQ(v, 1);
}

TEST_F(ModelsTest, TokenIsRequiredWhenConfigured) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.auth_token = "s3cret";
  ServerEnv env(o);
  grpc::Status missing = env.Import("m", *m1_);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization: Bearer"));
  env.token = "wrong";
  EXPECT_EQ(env.Import("m", *m1_).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  env.token = "s3cret";
  EXPECT_TRUE(env.Import("m", *m1_).ok());
  // Scoring needs no token.
  int64_t v = 0;
  EXPECT_TRUE(Score(env, "", &v).ok());
}

TEST_F(ModelsTest, ScoringCanRequireTheTokenToo) {
  ServerOptions o;
  o.poll_seconds = 0;
  o.auth_token = "s3cret";
  o.require_token_for_scoring = true;
  ServerEnv env(o);
  env.token = "s3cret";
  ASSERT_TRUE(env.Import("m", *m1_).ok());
  int64_t v = 0;
  grpc::Status anonymous = Score(env, "", &v);
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext sctx;
  auto stream = env.scoring()->StreamScore(&sctx);
  v1::ScoreResponse resp;
  stream->Write(MakeRequest("m", 1, kD));
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer s3cret");
  v1::ScoreRequest req = MakeRequest("m", 2, kD);
  EXPECT_TRUE(env.scoring()->Score(&ctx, req, &resp).ok());
  o.auth_token = "";
  EXPECT_FALSE(ValidateServerOptions(o).ok());
}

}  // namespace
}  // namespace anorand::testing
