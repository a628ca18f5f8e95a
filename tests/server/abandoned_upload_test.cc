// Uploads that a client sends in full, or in part, and then cancels instead
// of closing with WritesDone, over real gRPC on loopback. To the server both
// end the same way (a failed read), so only the call's cancellation can tell
// them apart: a cancelled SubmitJob records no job, a cancelled
// ImportVersion writes no version, however much of the data arrived, and
// the next call is served normally. One intake thread, so the call after a
// cancelled one is handled only once the cancelled one's work has ended.
#include <algorithm>
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gtest/gtest.h"
#include "model/data/synthetic_data.h"
#include "tests/server/server_env.h"

namespace anorand::test_support {
namespace {

constexpr int kD = 3;

class AbandonedUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.poll_seconds = 0;
    o.intake_threads = 1;
    o.after_upload_message = [this](const std::string& method, int64_t messages) {
      absl::MutexLock lock(&mu_);
      read_[method] = std::max(read_[method], messages);
    };
    env_ = std::make_unique<ServerEnv>(o);
    training_ = v1::Training::NewStub(env_->channel());
  }

  static v1::SubmitJobRequest Spec(const std::string& model, v1::UploadFormat format) {
    v1::SubmitJobRequest head;
    v1::JobSpec* spec = head.mutable_spec();
    spec->set_model_name(model);
    spec->set_upload_format(format);
    spec->mutable_params()->set_max_epochs(1);
    spec->mutable_params()->set_min_steps(0);
    spec->mutable_params()->add_encoder_widths(8);
    spec->mutable_params()->add_decoder_widths(8);
    return head;
  }

  // Two DENSE chunks of 100 rows each: a whole, valid training set.
  static std::vector<v1::SubmitJobRequest> DenseChunks() {
    const Dataset data = DemoData(200, kD, 5);
    std::vector<v1::SubmitJobRequest> chunks(2);
    for (int c = 0; c < 2; ++c) {
      v1::DataChunk* chunk = chunks[c].mutable_chunk();
      chunk->set_num_features(kD);
      for (int64_t i = c * 100 * kD; i < (c + 1) * 100 * kD; ++i) chunk->add_values(data.x[i]);
    }
    return chunks;
  }

  // Waits until the server has taken `messages` messages of the method's
  // call before the client cancels, so that without the cancellation check
  // the data would be complete enough to use.
  void LetTheServerRead(const std::string& method, int64_t messages) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          absl::MutexLock lock(&mu_);
          return read_[method] >= messages;
        },
        60, 1))
        << "the server took fewer than " << messages << " messages of " << method;
  }

  grpc::Status SubmitDense(const std::string& model, v1::Job* job) {
    grpc::ClientContext ctx;
    auto w = training_->SubmitJob(&ctx, job);
    w->Write(Spec(model, v1::UPLOAD_FORMAT_DENSE));
    for (const auto& c : DenseChunks()) w->Write(c);
    w->WritesDone();
    return w->Finish();
  }

  std::vector<v1::Job> Jobs() {
    grpc::ClientContext ctx;
    v1::ListJobsResponse resp;
    EXPECT_TRUE(training_->ListJobs(&ctx, v1::ListJobsRequest(), &resp).ok());
    return {resp.jobs().begin(), resp.jobs().end()};
  }

  int VersionCount(const std::string& name) {
    grpc::ClientContext ctx;
    v1::GetModelRequest req;
    req.mutable_model()->set_name(name);
    v1::ModelInfo info;
    return env_->models()->GetModel(&ctx, req, &info).ok() ? info.versions_size() : 0;
  }

  absl::Mutex mu_;
  std::map<std::string, int64_t> read_ ABSL_GUARDED_BY(mu_);  // messages taken, per method
  std::unique_ptr<ServerEnv> env_;
  std::unique_ptr<v1::Training::Stub> training_;
};

TEST_F(AbandonedUploadTest, ADenseUploadCancelledInsteadOfClosedRecordsNoJob) {
  {
    grpc::ClientContext ctx;
    v1::Job job;
    auto w = training_->SubmitJob(&ctx, &job);
    ASSERT_TRUE(w->Write(Spec("abandoned", v1::UPLOAD_FORMAT_DENSE)));
    for (const auto& c : DenseChunks()) ASSERT_TRUE(w->Write(c));
    LetTheServerRead("SubmitJob", 3);  // the spec and two chunks
    ctx.TryCancel();
    EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  v1::Job next;
  grpc::Status s = SubmitDense("next", &next);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::vector<v1::Job> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id(), next.id());
  EXPECT_EQ(jobs[0].spec().model_name(), "next");
}

TEST_F(AbandonedUploadTest, ACsvUploadCancelledAfterACompleteLineRecordsNoJob) {
  // Every chunk ends on a line end, so whatever prefix arrived is valid CSV.
  const Dataset data = DemoData(400, kD, 7);
  {
    grpc::ClientContext ctx;
    v1::Job job;
    auto w = training_->SubmitJob(&ctx, &job);
    ASSERT_TRUE(w->Write(Spec("abandoned", v1::UPLOAD_FORMAT_CSV)));
    v1::SubmitJobRequest header;
    header.mutable_chunk()->set_data("a,b,c\n");
    ASSERT_TRUE(w->Write(header));
    for (int64_t r = 0; r < data.rows; r += 100) {
      std::string lines;
      for (int64_t i = r; i < r + 100; ++i) {
        lines += std::to_string(data.x[i * kD]) + "," + std::to_string(data.x[i * kD + 1]) + "," +
                 std::to_string(data.x[i * kD + 2]) + "\n";
      }
      v1::SubmitJobRequest c;
      c.mutable_chunk()->set_data(lines);
      ASSERT_TRUE(w->Write(c));
    }
    LetTheServerRead("SubmitJob", 2 + data.rows / 100);  // the spec, the header, the lines
    ctx.TryCancel();
    EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  v1::Job next;
  grpc::Status s = SubmitDense("next", &next);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::vector<v1::Job> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id(), next.id());
}

TEST_F(AbandonedUploadTest, AModelFileSentWholeThenCancelledIsNotImported) {
  const std::string file = SerializeModel(TinyModel(kD, 1));
  {
    grpc::ClientContext ctx;
    v1::VersionInfo info;
    auto w = env_->models()->ImportVersion(&ctx, &info);
    v1::ImportChunk head;
    head.mutable_header()->set_model_name("fraud");
    ASSERT_TRUE(w->Write(head));
    int64_t sent = 1;
    for (size_t at = 0; at < file.size(); at += 16384, ++sent) {
      v1::ImportChunk c;
      c.set_data(file.substr(at, 16384));
      ASSERT_TRUE(w->Write(c));
    }
    LetTheServerRead("ImportVersion", sent);
    ctx.TryCancel();
    EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The same bytes, closed properly, become version 1: nothing was kept
  // from the cancelled call.
  int64_t published = 0;
  grpc::Status s = env_->ImportBytes("fraud", file, 0, "", &published);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(published, 1);
  EXPECT_EQ(VersionCount("fraud"), 1);
}

}  // namespace
}  // namespace anorand::test_support
