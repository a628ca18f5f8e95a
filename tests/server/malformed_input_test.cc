// Bytes that are not a valid message, sent over a real channel to every
// method: each call ends with INVALID_ARGUMENT naming the message (type and
// index in a stream); nothing before it is lost, nothing after it is
// silently dropped, no job or version comes out of a broken upload, and the
// token check still comes first.
#include <string>
#include <vector>

#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/raw_stub.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

constexpr int kD = 8;
constexpr char kToken[] = "s3cret";

class MalformedInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new v1::ModelFile(TinyModel(kD, 1)); }
  static void TearDownTestSuite() { delete model_; }
  void SetUp() override {
    ServerOptions o;
    o.poll_seconds = 0;
    o.auth_token = kToken;
    env_ = std::make_unique<ServerEnv>(o);
    env_->token = kToken;
    ASSERT_TRUE(env_->Import("fraud", *model_).ok());
    raw_ = std::make_unique<RawStub>(env_->channel());
  }

  static void Authorize(grpc::ClientContext* ctx) {
    ctx->AddMetadata("authorization", std::string("Bearer ") + kToken);
  }

  static std::string Serialized(const google::protobuf::Message& m) {
    return m.SerializeAsString();
  }

  // Versions of `name` the server lists.
  int VersionCount(const std::string& name) {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    v1::GetModelRequest req;
    req.mutable_model()->set_name(name);
    v1::ModelInfo info;
    grpc::Status s = env_->models()->GetModel(&ctx, req, &info);
    return s.ok() ? info.versions_size() : 0;
  }

  int JobCount() {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    v1::ListJobsResponse resp;
    EXPECT_TRUE(v1::Training::NewStub(env_->channel())
                    ->ListJobs(&ctx, v1::ListJobsRequest(), &resp)
                    .ok());
    return resp.jobs_size();
  }

  static v1::ModelFile* model_;
  std::unique_ptr<ServerEnv> env_;
  std::unique_ptr<RawStub> raw_;
};
v1::ModelFile* MalformedInputTest::model_ = nullptr;

TEST_F(MalformedInputTest, StreamScoreEndsWithInvalidArgumentAtTheBadMessage) {
  grpc::ClientContext ctx;
  auto stream = raw_->Bidi(&ctx, "/anorand.v1.Scoring/StreamScore");
  const std::string valid = Serialized(MakeRequest("fraud", 4, kD));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->Write(ToBytes(valid)));
  stream->Write(ToBytes(MalformedMessage()));
  for (int i = 0; i < 5; ++i) stream->Write(ToBytes(valid));  // may fail: the call is ending
  stream->WritesDone();
  int answered = 0;
  grpc::ByteBuffer bytes;
  while (stream->Read(&bytes)) {
    v1::ScoreResponse resp;
    ASSERT_TRUE(resp.ParseFromString(FromBytes(bytes)));
    EXPECT_EQ(resp.scores_size(), 4);
    ++answered;
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(answered, 5);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("request 5 is not a valid anorand.v1.ScoreRequest message"));
}

TEST_F(MalformedInputTest, UnaryScoreIsInvalidArgumentNotUnimplemented) {
  grpc::ClientContext ctx;
  grpc::Status s = raw_->Unary(&ctx, "/anorand.v1.Scoring/Score", MalformedMessage());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("the request is not a valid anorand.v1.ScoreRequest message"));
  // The same bytes path still answers a valid request.
  grpc::ClientContext ok_ctx;
  std::string out;
  ASSERT_TRUE(raw_->Unary(&ok_ctx, "/anorand.v1.Scoring/Score",
                          Serialized(MakeRequest("fraud", 3, kD)), &out)
                  .ok());
  v1::ScoreResponse resp;
  ASSERT_TRUE(resp.ParseFromString(out));
  EXPECT_EQ(resp.scores_size(), 3);
}

TEST_F(MalformedInputTest, EveryUnaryAdminMethodIsInvalidArgumentNamingItsRequestType) {
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"/anorand.v1.Models/ListModels", "anorand.v1.ListModelsRequest"},
      {"/anorand.v1.Models/GetModel", "anorand.v1.GetModelRequest"},
      {"/anorand.v1.Models/LoadVersion", "anorand.v1.LoadVersionRequest"},
      {"/anorand.v1.Models/UnloadVersion", "anorand.v1.UnloadVersionRequest"},
      {"/anorand.v1.Models/DeleteVersion", "anorand.v1.DeleteVersionRequest"},
      {"/anorand.v1.Models/SetAlias", "anorand.v1.SetAliasRequest"},
      {"/anorand.v1.Models/RemoveAlias", "anorand.v1.RemoveAliasRequest"},
      {"/anorand.v1.Models/SetShadow", "anorand.v1.SetShadowRequest"},
      {"/anorand.v1.Models/ClearShadow", "anorand.v1.ClearShadowRequest"},
      {"/anorand.v1.Models/CompareShadow", "anorand.v1.CompareShadowRequest"},
      {"/anorand.v1.Models/GetDrift", "anorand.v1.GetDriftRequest"},
      {"/anorand.v1.Training/GetJob", "anorand.v1.GetJobRequest"},
      {"/anorand.v1.Training/ListJobs", "anorand.v1.ListJobsRequest"},
      {"/anorand.v1.Training/CancelJob", "anorand.v1.CancelJobRequest"},
      {"/anorand.v1.Feedback/AddFeedback", "anorand.v1.AddFeedbackRequest"},
      {"/anorand.v1.Feedback/ListFeedback", "anorand.v1.ListFeedbackRequest"},
  };
  for (const auto& [method, type] : methods) {
    SCOPED_TRACE(method);
    grpc::ClientContext ctx;
    Authorize(&ctx);
    grpc::Status s = raw_->Unary(&ctx, method, MalformedMessage());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("the request is not a valid " + type + " message"));
  }
  EXPECT_EQ(VersionCount("fraud"), 1);
}

TEST_F(MalformedInputTest, TokenIsCheckedBeforeTheBytesAreParsed) {
  grpc::ClientContext ctx;  // no token
  grpc::Status s = raw_->Unary(&ctx, "/anorand.v1.Models/ListModels", MalformedMessage());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(MalformedInputTest, EmptyBytesAreAValidEmptyRequest) {
  grpc::ClientContext ctx;
  Authorize(&ctx);
  std::string out;
  ASSERT_TRUE(raw_->Unary(&ctx, "/anorand.v1.Models/ListModels", "", &out).ok());
  v1::ListModelsResponse resp;
  ASSERT_TRUE(resp.ParseFromString(out));
  ASSERT_EQ(resp.models_size(), 1);
  EXPECT_EQ(resp.models(0).name(), "fraud");
}

TEST_F(MalformedInputTest, SubmitJobUploadWithABadChunkSubmitsNoJob) {
  v1::SubmitJobRequest head;
  head.mutable_spec()->set_model_name("fromupload");
  head.mutable_spec()->set_upload_format(v1::UPLOAD_FORMAT_CSV);
  head.mutable_spec()->mutable_params()->set_max_epochs(1);
  std::string csv;
  for (int i = 0; i < kD; ++i) csv += (i ? ",f" : "f") + std::to_string(i);
  csv += "\n";
  Dataset d = DemoData(3000, kD, 5);
  for (int64_t r = 0; r < d.rows; ++r) {
    for (int c = 0; c < kD; ++c) csv += (c ? "," : "") + std::to_string(d.x[r * kD + c]);
    csv += "\n";
  }
  grpc::ClientContext ctx;
  Authorize(&ctx);
  grpc::ByteBuffer response;
  auto w = raw_->Upload(&ctx, "/anorand.v1.Training/SubmitJob", &response);
  ASSERT_TRUE(w->Write(ToBytes(Serialized(head))));
  const size_t chunk = csv.size() / 15 + 1;
  int sent = 1;
  for (size_t at = 0; at < csv.size(); at += chunk, ++sent) {
    if (sent == 3) w->Write(ToBytes(MalformedMessage()));
    v1::SubmitJobRequest c;
    c.mutable_chunk()->set_data(csv.substr(at, chunk));
    if (!w->Write(ToBytes(Serialized(c)))) break;
  }
  w->WritesDone();
  grpc::Status s = w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("request 3 is not a valid anorand.v1.SubmitJobRequest message"));
  EXPECT_EQ(JobCount(), 0);
}

TEST_F(MalformedInputTest, ImportWithABadChunkPublishesNothing) {
  grpc::ClientContext ctx;
  Authorize(&ctx);
  grpc::ByteBuffer response;
  auto w = raw_->Upload(&ctx, "/anorand.v1.Models/ImportVersion", &response);
  v1::ImportChunk head;
  head.mutable_header()->set_model_name("fraud");
  ASSERT_TRUE(w->Write(ToBytes(Serialized(head))));
  const std::string file = SerializeModel(*model_);
  v1::ImportChunk first, rest;
  first.set_data(file.substr(0, file.size() / 2));
  rest.set_data(file.substr(file.size() / 2));
  w->Write(ToBytes(Serialized(first)));
  w->Write(ToBytes(MalformedMessage()));
  w->Write(ToBytes(Serialized(rest)));
  w->WritesDone();
  grpc::Status s = w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("request 2 is not a valid anorand.v1.ImportChunk message"));
  EXPECT_EQ(VersionCount("fraud"), 1);
}

TEST_F(MalformedInputTest, ServerStreamingRequestsAreInvalidArgument) {
  for (const char* method : {"/anorand.v1.Models/ExportVersion", "/anorand.v1.Training/WatchJob",
                             "/anorand.v1.Feedback/ExportFeedback"}) {
    SCOPED_TRACE(method);
    grpc::ClientContext ctx;
    Authorize(&ctx);
    auto r = raw_->Download(&ctx, method, MalformedMessage());
    grpc::ByteBuffer bytes;
    EXPECT_FALSE(r->Read(&bytes));
    grpc::Status s = r->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("the request is not a valid anorand.v1."));
  }
}

}  // namespace
}  // namespace anorand::test_support
