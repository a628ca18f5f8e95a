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

namespace anorand::test_support {
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

// Calls one unary Models RPC and returns its status.
template <typename Req, typename Resp>
grpc::Status CallModels(ServerEnv& env,
                        grpc::Status (v1::Models::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                 Resp*),
                        const Req& req) {
  grpc::ClientContext ctx;
  Resp resp;
  auto stub = env.models();
  return (stub.get()->*method)(&ctx, req, &resp);
}

grpc::Status ExportStatus(ServerEnv& env, int64_t version, const std::string& alias,
                          const std::string& name = "m", std::string* bytes = nullptr,
                          int64_t* exported = nullptr) {
  grpc::ClientContext ctx;
  v1::ExportVersionRequest req;
  req.mutable_model()->set_name(name);
  if (version != 0) req.mutable_model()->set_version(version);
  if (!alias.empty()) req.mutable_model()->set_alias(alias);
  auto stub = env.models();
  auto reader = stub->ExportVersion(&ctx, req);
  v1::ExportChunk chunk;
  std::string data;
  while (reader->Read(&chunk)) {
    if (chunk.version() && exported) *exported = chunk.version();
    data += chunk.data();
  }
  if (bytes) *bytes = data;
  return reader->Finish();
}

v1::LoadVersionRequest LoadReq(const std::string& name, int64_t v) {
  v1::LoadVersionRequest r;
  r.set_model_name(name);
  r.set_version(v);
  return r;
}
v1::UnloadVersionRequest UnloadReq(const std::string& name, int64_t v) {
  v1::UnloadVersionRequest r;
  r.set_model_name(name);
  r.set_version(v);
  return r;
}
v1::DeleteVersionRequest DeleteReq(const std::string& name, int64_t v, bool force = false) {
  v1::DeleteVersionRequest r;
  r.set_model_name(name);
  r.set_version(v);
  r.set_force(force);
  return r;
}
v1::SetAliasRequest SetAliasReq(const std::string& name, const std::string& alias, int64_t v) {
  v1::SetAliasRequest r;
  r.set_model_name(name);
  r.set_alias(alias);
  r.set_version(v);
  return r;
}
v1::RemoveAliasRequest RemoveAliasReq(const std::string& name, const std::string& alias) {
  v1::RemoveAliasRequest r;
  r.set_model_name(name);
  r.set_alias(alias);
  return r;
}
v1::GetModelRequest GetReq(const std::string& name, int64_t v, const std::string& alias = "") {
  v1::GetModelRequest r;
  r.mutable_model()->set_name(name);
  if (v != 0) r.mutable_model()->set_version(v);
  if (!alias.empty()) r.mutable_model()->set_alias(alias);
  return r;
}

// Version 0 or negative where a request names the version to act on is
// INVALID_ARGUMENT (docs/API.md), checked before the model is looked up;
// where 0 means "no selector" only a negative version is.
TEST_F(ModelsTest, VersionZeroOrNegativeIsInvalidArgument) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_).ok());
  using S = v1::Models::Stub;
  for (const std::string name : {"m", "unknown"}) {
    for (int64_t v : {0, -1}) {
      SCOPED_TRACE(name + " version " + std::to_string(v));
      std::vector<grpc::Status> got = {
          CallModels(env, &S::LoadVersion, LoadReq(name, v)),
          CallModels(env, &S::UnloadVersion, UnloadReq(name, v)),
          CallModels(env, &S::DeleteVersion, DeleteReq(name, v)),
          CallModels(env, &S::DeleteVersion, DeleteReq(name, v, true)),
          CallModels(env, &S::SetAlias, SetAliasReq(name, "production", v)),
      };
      if (v < 0) {
        got.push_back(CallModels(env, &S::GetModel, GetReq(name, v)));
        got.push_back(ExportStatus(env, v, "", name));
      }
      for (const grpc::Status& s : got) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
        EXPECT_THAT(s.error_message(), HasSubstr("version"));
      }
    }
  }
  int64_t negative = 0;
  EXPECT_EQ(env.Import("m", *m2_, -1, "", &negative).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(std::filesystem::exists(env.model_dir() + "/m/-1"));
}

// Every status code models.proto documents for the administrative RPCs
// (UNAUTHENTICATED: TokenIsRequiredWhenConfigured; import codes:
// BadImportsAreRefusedAndNothingIsWritten; DATA_LOSS and RESOURCE_EXHAUSTED:
// the corrupt-file and cap tests).
TEST_F(ModelsTest, EveryDocumentedStatusCodeOfTheAdministrativeRpcs) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  ASSERT_TRUE(env.Import("m", *m2_).ok());
  ASSERT_TRUE(env.Import("solo", *m1_, 0, "production").ok());
  using S = v1::Models::Stub;
  using C = grpc::StatusCode;
  ASSERT_TRUE(CallModels(env, &S::UnloadVersion, UnloadReq("m", 2)).ok());  // m: 1 READY, 2 UNLOADED
  struct Case {
    std::string what;
    grpc::Status got;
    C code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"get: bad name", CallModels(env, &S::GetModel, GetReq("../m", 0)), C::INVALID_ARGUMENT,
       "model name"},
      {"get: bad alias", CallModels(env, &S::GetModel, GetReq("m", 0, "Bad")),
       C::INVALID_ARGUMENT, "alias 'Bad'"},
      {"get: unknown model", CallModels(env, &S::GetModel, GetReq("nope", 0)), C::NOT_FOUND,
       "not found"},
      {"get: unknown version", CallModels(env, &S::GetModel, GetReq("m", 9)), C::NOT_FOUND,
       "no version 9"},
      {"get: unknown alias", CallModels(env, &S::GetModel, GetReq("m", 0, "canary")),
       C::NOT_FOUND, "no alias 'canary'"},
      {"load: bad name", CallModels(env, &S::LoadVersion, LoadReq("../m", 1)),
       C::INVALID_ARGUMENT, "model name"},
      {"load: unknown model", CallModels(env, &S::LoadVersion, LoadReq("nope", 1)),
       C::NOT_FOUND, "not found"},
      {"load: unknown version", CallModels(env, &S::LoadVersion, LoadReq("m", 9)), C::NOT_FOUND,
       "no version 9"},
      {"unload: bad name", CallModels(env, &S::UnloadVersion, UnloadReq("../m", 1)),
       C::INVALID_ARGUMENT, "model name"},
      {"unload: unknown model", CallModels(env, &S::UnloadVersion, UnloadReq("nope", 1)),
       C::NOT_FOUND, "not found"},
      {"unload: unknown version", CallModels(env, &S::UnloadVersion, UnloadReq("m", 9)),
       C::NOT_FOUND, "no version 9"},
      {"unload: only READY version, aliased", CallModels(env, &S::UnloadVersion, UnloadReq("m", 1)),
       C::FAILED_PRECONDITION, "only ready version of model 'm' and alias 'production'"},
      {"unload: already UNLOADED is a no-op", CallModels(env, &S::UnloadVersion, UnloadReq("m", 2)),
       C::OK, ""},
      {"delete: bad name", CallModels(env, &S::DeleteVersion, DeleteReq("../m", 1)),
       C::INVALID_ARGUMENT, "model name"},
      {"delete: unknown model", CallModels(env, &S::DeleteVersion, DeleteReq("nope", 1)),
       C::NOT_FOUND, "not found"},
      {"delete: unknown version", CallModels(env, &S::DeleteVersion, DeleteReq("m", 9)),
       C::NOT_FOUND, "no version 9"},
      {"delete: aliased, no force", CallModels(env, &S::DeleteVersion, DeleteReq("solo", 1)),
       C::FAILED_PRECONDITION, "only ready version"},
      {"delete: only READY aliased, even with force",
       CallModels(env, &S::DeleteVersion, DeleteReq("m", 1, true)), C::FAILED_PRECONDITION,
       "refused even with force"},
      {"alias: bad name", CallModels(env, &S::SetAlias, SetAliasReq("../m", "canary", 1)),
       C::INVALID_ARGUMENT, "model name"},
      {"alias: bad alias", CallModels(env, &S::SetAlias, SetAliasReq("m", "9lives", 1)),
       C::INVALID_ARGUMENT, "alias '9lives'"},
      {"alias: latest", CallModels(env, &S::SetAlias, SetAliasReq("m", "latest", 1)),
       C::INVALID_ARGUMENT, "reserved"},
      {"alias: unknown model", CallModels(env, &S::SetAlias, SetAliasReq("nope", "canary", 1)),
       C::NOT_FOUND, "not found"},
      {"alias: unknown version", CallModels(env, &S::SetAlias, SetAliasReq("m", "canary", 9)),
       C::NOT_FOUND, "no version 9"},
      {"alias: not READY", CallModels(env, &S::SetAlias, SetAliasReq("m", "canary", 2)),
       C::FAILED_PRECONDITION, "unloaded"},
      {"unalias: bad name", CallModels(env, &S::RemoveAlias, RemoveAliasReq("../m", "production")),
       C::INVALID_ARGUMENT, "model name"},
      {"unalias: bad alias", CallModels(env, &S::RemoveAlias, RemoveAliasReq("m", "Bad")),
       C::INVALID_ARGUMENT, "alias 'Bad'"},
      {"unalias: latest", CallModels(env, &S::RemoveAlias, RemoveAliasReq("m", "latest")),
       C::INVALID_ARGUMENT, "reserved"},
      {"unalias: unknown model", CallModels(env, &S::RemoveAlias, RemoveAliasReq("nope", "a")),
       C::NOT_FOUND, "not found"},
      {"unalias: unknown alias", CallModels(env, &S::RemoveAlias, RemoveAliasReq("m", "canary")),
       C::NOT_FOUND, "no alias 'canary'"},
      {"export: bad name", ExportStatus(env, 0, "", "../m"), C::INVALID_ARGUMENT, "model name"},
      {"export: bad alias", ExportStatus(env, 0, "Bad"), C::INVALID_ARGUMENT, "alias 'Bad'"},
      {"export: unknown model", ExportStatus(env, 0, "", "nope"), C::NOT_FOUND, "not found"},
      {"export: unknown version", ExportStatus(env, 9, ""), C::NOT_FOUND, "no version 9"},
      {"export: unknown alias", ExportStatus(env, 0, "canary"), C::NOT_FOUND, "no alias 'canary'"},
      {"export: an UNLOADED version", ExportStatus(env, 2, ""), C::OK, ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.got.error_code(), c.code) << c.what << ": " << c.got.error_message();
    EXPECT_THAT(c.got.error_message(), HasSubstr(c.message)) << c.what;
  }
  // GetModel "latest" and ExportVersion without a selector when no version
  // is READY: FAILED_PRECONDITION.
  ASSERT_TRUE(env.Import("idle", *m1_).ok());
  ASSERT_TRUE(env.Import("idle", *m2_).ok());
  ASSERT_TRUE(CallModels(env, &S::UnloadVersion, UnloadReq("idle", 2)).ok());
  ASSERT_TRUE(CallModels(env, &S::UnloadVersion, UnloadReq("idle", 1)).ok());
  grpc::Status latest = CallModels(env, &S::GetModel, GetReq("idle", 0, "latest"));
  EXPECT_EQ(latest.error_code(), C::FAILED_PRECONDITION) << latest.error_message();
  grpc::Status none = ExportStatus(env, 0, "", "idle");
  EXPECT_EQ(none.error_code(), C::FAILED_PRECONDITION) << none.error_message();
  // Export of a version whose file went missing: NOT_FOUND.
  std::filesystem::remove(env.model_dir() + "/idle/1/model.anorand");
  grpc::Status missing = ExportStatus(env, 1, "", "idle");
  EXPECT_EQ(missing.error_code(), C::NOT_FOUND) << missing.error_message();
  EXPECT_THAT(missing.error_message(), HasSubstr("file is missing"));
}

// models.proto: ExportVersion by alias works in any state (the file is read
// from the store), like an explicit version.
TEST_F(ModelsTest, ExportByAliasWorksWhenTheVersionIsUnloaded) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  ASSERT_TRUE(env.Import("m", *m2_).ok());
  ASSERT_TRUE(CallModels(env, &v1::Models::Stub::UnloadVersion, UnloadReq("m", 1)).ok());
  std::string bytes;
  int64_t exported = 0;
  grpc::Status s = ExportStatus(env, 0, "production", "m", &bytes, &exported);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(exported, 1);
  EXPECT_EQ(bytes, SerializeModel(*m1_));
  s = ExportStatus(env, 0, "latest", "m", &bytes, &exported);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(exported, 2);
}

// The delete rule of models.proto: with force an aliased version goes and
// its aliases with it, unless it is the only READY version (then even force
// is refused); the model's last version takes the model with it: not
// listed, scoring says NOT_FOUND, also after a restart.
TEST_F(ModelsTest, DeleteKeepsTheOnlyReadyAliasedVersionAndTheLastVersionTakesTheModel) {
  ServerOptions o;
  o.poll_seconds = 0;
  ServerEnv env(o);
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  using S = v1::Models::Stub;
  grpc::Status s = CallModels(env, &S::DeleteVersion, DeleteReq("m", 1, true));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("refused even with force"));
  EXPECT_TRUE(std::filesystem::exists(env.model_dir() + "/m/1/model.anorand"));
  int64_t v = 0;
  ASSERT_TRUE(Score(env, "production", &v).ok());
  // Moving the alias away is the way out.
  ASSERT_TRUE(CallModels(env, &S::RemoveAlias, RemoveAliasReq("m", "production")).ok());
  ASSERT_TRUE(CallModels(env, &S::DeleteVersion, DeleteReq("m", 1)).ok());
  for (int restart = 0; restart < 2; ++restart) {
    SCOPED_TRACE(restart ? "after a restart" : "at once");
    grpc::ClientContext ctx;
    v1::ListModelsResponse list;
    ASSERT_TRUE(env.models()->ListModels(&ctx, v1::ListModelsRequest(), &list).ok());
    EXPECT_EQ(list.models_size(), 0) << list.DebugString();
    EXPECT_EQ(Score(env, "", &v).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(CallModels(env, &S::GetModel, GetReq("m", 0)).error_code(),
              grpc::StatusCode::NOT_FOUND);
    env.Stop();
    env.Start();
  }
  // Two aliases on a version that is not the only READY one: both listed,
  // both removed with force.
  ASSERT_TRUE(env.Import("m", *m1_, 0, "production").ok());
  ASSERT_TRUE(env.Import("m", *m2_, 0, "canary").ok());
  ASSERT_TRUE(CallModels(env, &S::SetAlias, SetAliasReq("m", "production", 2)).ok());
  s = CallModels(env, &S::DeleteVersion, DeleteReq("m", 2));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("aliases 'canary', 'production' point at version 2"));
  ASSERT_TRUE(CallModels(env, &S::DeleteVersion, DeleteReq("m", 2, true)).ok());
  EXPECT_EQ(ReadWholeFile(env.model_dir() + "/m/aliases.json"), "{}\n");
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
    WaitUntil(
        [&] {
          grpc::ClientContext ctx;
          v1::GetModelRequest req;
          req.mutable_model()->set_name("m");
          return env.models()->GetModel(&ctx, req, &info).ok() &&
                 info.versions_size() == static_cast<int>(version);
        },
        60);
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
  WaitUntil([&] { return Score(env, "", &v).ok() && v == 4; }, 60);
  EXPECT_EQ(v, 4);
  // And a version deleted behind the server's back goes away.
  std::filesystem::remove_all(env.model_dir() + "/m/4");
  WaitUntil([&] { return Score(env, "", &v).ok() && v == 1; }, 60);
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
  WaitUntil(
      [&] {
        grpc::ClientContext ctx;
        v1::GetModelRequest req;
        req.mutable_model()->set_name("m");
        return env.models()->GetModel(&ctx, req, &info).ok() && info.versions_size() >= 3;
      },
      60);
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
}  // namespace anorand::test_support
