// Training jobs over real gRPC on loopback, phase by phase: CancelJob ends
// a job in every phase of its fit (each phase made slow by its test data:
// many rows for normalising and statistics, many seeds for the synthetic
// labels, an endless epoch budget for a member's epochs), whole-job
// progress never goes back across ensemble members, an NPZ that inflates
// past the bound is refused before it is inflated, and a SubmitJob call
// cancelled while its upload is parsed records no job (uploads cancelled
// before their end: abandoned_upload_test.cc). A job held while it
// publishes cannot be cancelled, and a server stopped then publishes first.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/synthetic_data.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Writes `data` as a little-endian float32 .npy file (rows x cols).
void WriteNpy(const Dataset& data, const std::string& path) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(data.rows) + ", " + std::to_string(data.cols) + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.put(static_cast<char>(len & 0xff));
  f.put(static_cast<char>(len >> 8));
  f << header;
  f.write(reinterpret_cast<const char*>(data.x.data()),
          static_cast<std::streamsize>(data.x.size() * sizeof(float)));
}

v1::JobSpec SmallNetwork(const std::string& model, int epochs) {
  v1::JobSpec spec;
  spec.set_model_name(model);
  spec.mutable_params()->set_max_epochs(epochs);
  spec.mutable_params()->set_min_steps(0);
  spec.mutable_params()->add_encoder_widths(8);
  spec.mutable_params()->add_decoder_widths(8);
  return spec;
}

// A gate held on the training thread just before a version is written
// (ServerOptions::before_publish): `entered` once a job is PUBLISHING,
// `release` lets the publish go on.
struct PublishGate {
  absl::Notification entered;
  absl::Notification release;
  std::function<void(const std::string&)> Hook() {
    return [this](const std::string&) {
      entered.Notify();
      release.WaitForNotification();
    };
  }
};

class TrainingCancelTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }
  void StartServer(ServerOptions o) {
    o.poll_seconds = 0;
    o.data_dir = data_.path();
    env_ = std::make_unique<ServerEnv>(o);
    stub_ = v1::Training::NewStub(env_->channel());
  }

  grpc::Status SubmitPath(v1::JobSpec spec, const std::string& file, v1::Job* job) {
    spec.set_data_path(file);
    grpc::ClientContext ctx;
    auto w = stub_->SubmitJob(&ctx, job);
    v1::SubmitJobRequest head;
    *head.mutable_spec() = spec;
    w->Write(head);
    w->WritesDone();
    return w->Finish();
  }
  grpc::Status SubmitUpload(v1::JobSpec spec, v1::UploadFormat format, const std::string& bytes,
                            v1::Job* job) {
    spec.set_upload_format(format);
    grpc::ClientContext ctx;
    auto w = stub_->SubmitJob(&ctx, job);
    v1::SubmitJobRequest head;
    *head.mutable_spec() = spec;
    w->Write(head);
    for (size_t at = 0; at < bytes.size(); at += 1 << 20) {
      v1::SubmitJobRequest c;
      c.mutable_chunk()->set_data(bytes.substr(at, 1 << 20));
      if (!w->Write(c)) break;
    }
    w->WritesDone();
    return w->Finish();
  }
  // Polls anorand_intake_tasks until `ready(queued, running)` holds; false
  // after 60 s.
  bool AwaitIntake(const std::function<bool(double, double)>& ready) {
    return WaitUntil(
        [&] {
          const std::string text = HttpGetRaw(env_->server().metrics_port(), "/metrics");
          auto value = [&text](const std::string& state) {
            const std::string key = "anorand_intake_tasks{state=\"" + state + "\"} ";
            const size_t at = text.find(key);
            return at == std::string::npos ? -1.0
                                           : std::strtod(text.c_str() + at + key.size(), nullptr);
          };
          return ready(value("queued"), value("running"));
        },
        60, 5);
  }
  v1::Job Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(stub_->GetJob(&ctx, req, &job).ok());
    return job;
  }
  grpc::Status Cancel(const std::string& id) {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id(id);
    v1::Job after;
    return stub_->CancelJob(&ctx, req, &after);
  }
  // Watches `id`; the first time `when` holds for a message, cancels the
  // job. Returns every message up to the terminal one.
  std::vector<v1::JobProgress> WatchAndCancel(
      const std::string& id, const std::function<bool(const v1::JobProgress&)>& when) {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_job_id(id);
    auto r = stub_->WatchJob(&ctx, req);
    std::vector<v1::JobProgress> out;
    v1::JobProgress p;
    bool cancelled = false;
    while (r->Read(&p)) {
      out.push_back(p);
      if (!cancelled && when && when(p)) {
        EXPECT_TRUE(Cancel(id).ok());
        cancelled = true;
      }
    }
    EXPECT_TRUE(r->Finish().ok());
    EXPECT_TRUE(!when || cancelled) << "the awaited phase never came";
    return out;
  }
  // Submits `spec` on `file`, cancels it as soon as it reports `phase` (of
  // `member`, 1-based, when > 0) and checks it ended CANCELLED in that phase
  // with nothing published. Returns the final record.
  v1::Job CancelInPhase(const v1::JobSpec& spec, const std::string& file, v1::JobPhase phase,
                        int member = 0) {
    v1::Job job;
    grpc::Status s = SubmitPath(spec, file, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    const auto messages = WatchAndCancel(job.id(), [&](const v1::JobProgress& p) {
      return p.phase() == phase && (member == 0 || p.member() == member);
    });
    EXPECT_EQ(messages.back().state(), v1::JOB_STATE_CANCELLED);
    EXPECT_EQ(messages.back().phase(), phase) << messages.back().message();
    const v1::Job after = Get(job.id());
    EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED);
    EXPECT_EQ(after.published_version(), 0);
    grpc::ClientContext ctx;
    v1::ListModelsResponse models;
    EXPECT_TRUE(env_->models()->ListModels(&ctx, v1::ListModelsRequest(), &models).ok());
    EXPECT_EQ(models.models_size(), 0);
    return after;
  }

  // Starts a server whose publishes wait at `gate`, submits a small job and
  // waits until it is held there; returns it.
  v1::Job HoldAJobInPublishing(PublishGate* gate, uint64_t seed) {
    ServerOptions o;
    o.before_publish = gate->Hook();
    StartServer(o);
    WriteNpy(DemoData(600, 5, seed), data_.File("p.npy"));
    v1::Job job;
    EXPECT_TRUE(SubmitPath(SmallNetwork("pub", 1), "p.npy", &job).ok());
    EXPECT_TRUE(gate->entered.WaitForNotificationWithTimeout(absl::Seconds(120)));
    return job;
  }

  TempDir data_;
  std::unique_ptr<ServerEnv> env_;
  std::unique_ptr<v1::Training::Stub> stub_;
};

TEST_F(TrainingCancelTest, CancelWhileNormalisingManyRows) {
  // The robust scaler's medians over 4,000,000 rows take a while; the
  // normaliser is applied in blocks that poll for cancellation.
  WriteNpy(DemoData(4'000'000, 5, 1), data_.File("big.npy"));
  v1::JobSpec spec = SmallNetwork("m", 5);
  spec.mutable_params()->set_scaling(v1::Normalizer::KIND_ROBUST);
  const v1::Job after = CancelInPhase(spec, "big.npy", v1::JOB_PHASE_PREPARING);
  EXPECT_THAT(after.error(), HasSubstr("cancelled while preparing the data"));
}

TEST_F(TrainingCancelTest, CancelWhileDrawingSyntheticLabels) {
  // The paper preset searches SMOTE neighbours among the seed rows exactly:
  // rows of 40 features are wider than the k-d tree serves, so with 0.45 of
  // 40,000 rows as seeds (kMaxSmoteSeeds of them searched) the search
  // compares 10^8 pairs.
  WriteNpy(DemoData(40'000, 40, 2), data_.File("seeds.npy"));
  v1::JobSpec spec = SmallNetwork("m", 5);
  spec.mutable_params()->set_preset("paper");
  spec.mutable_params()->set_seed_fraction(0.45);
  spec.mutable_params()->set_anomaly_fraction(0.49);
  const v1::Job after = CancelInPhase(spec, "seeds.npy", v1::JOB_PHASE_SYNTHETIC_LABELS);
  EXPECT_THAT(after.error(), HasSubstr("cancelled while drawing synthetic labels"));
}

TEST_F(TrainingCancelTest, CancelDuringTheSecondMembersEpochs) {
  // Two epochs per member over 300,000 rows: member 1 ends, member 2 is
  // cancelled as its epochs start.
  WriteNpy(DemoData(300'000, 5, 3), data_.File("rows.npy"));
  v1::JobSpec spec = SmallNetwork("m", 2);
  spec.mutable_params()->set_ensemble_size(2);
  spec.mutable_params()->set_seed_fraction(0.01);
  const v1::Job after = CancelInPhase(spec, "rows.npy", v1::JOB_PHASE_TRAINING, 2);
  EXPECT_THAT(after.error(), HasSubstr("cancelled while training (member 2 of 2) in epoch 1"));
  EXPECT_EQ(after.progress().member(), 2);
}

TEST_F(TrainingCancelTest, CancelWhileScoringStatisticsOverManyRows) {
  // Each member trains on 200 rows (member_rows) but its statistics score
  // every one of the 3,000,000 rows.
  WriteNpy(DemoData(3'000'000, 5, 4), data_.File("wide.npy"));
  v1::JobSpec spec = SmallNetwork("m", 1);
  spec.mutable_params()->set_member_rows(200);
  const v1::Job after = CancelInPhase(spec, "wide.npy", v1::JOB_PHASE_SCORING_STATISTICS);
  EXPECT_THAT(after.error(), HasSubstr("cancelled while scoring statistics"));
}

TEST_F(TrainingCancelTest, WholeJobProgressNeverGoesBackAcrossMembers) {
  // The job waits in the queue behind a long one (one training thread)
  // until its watch is open, so that the watch sees every phase from the
  // first: the long job is cancelled once the watch has its first message.
  WriteNpy(DemoData(300'000, 5, 6), data_.File("long.npy"));
  v1::Job blocker;
  ASSERT_TRUE(SubmitPath(SmallNetwork("long", 1000), "long.npy", &blocker).ok());
  WriteNpy(DemoData(600, 5, 5), data_.File("p.npy"));
  v1::JobSpec spec = SmallNetwork("m", 4);
  spec.mutable_params()->set_ensemble_size(3);
  v1::Job job;
  ASSERT_TRUE(SubmitPath(spec, "p.npy", &job).ok());
  EXPECT_EQ(job.progress().members(), 3);
  std::vector<v1::JobProgress> messages;
  {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_job_id(job.id());
    auto r = stub_->WatchJob(&ctx, req);
    v1::JobProgress p;
    while (r->Read(&p)) {
      if (messages.empty()) {
        EXPECT_EQ(p.state(), v1::JOB_STATE_QUEUED) << p.message();
        EXPECT_TRUE(Cancel(blocker.id()).ok());
      }
      messages.push_back(p);
    }
    ASSERT_TRUE(r->Finish().ok());
  }
  ASSERT_FALSE(messages.empty());
  ASSERT_EQ(messages.back().state(), v1::JOB_STATE_SUCCEEDED);
  double last = 0;
  int last_member = 0;
  std::vector<v1::JobPhase> phases;
  for (const auto& p : messages) {
    EXPECT_GE(p.fraction_done(), last) << p.message();
    EXPECT_GE(p.member(), p.phase() == v1::JOB_PHASE_TRAINING ? last_member : 0);
    EXPECT_GE(p.eta_seconds(), 0);
    last = p.fraction_done();
    if (p.member() > 0) last_member = p.member();
    if (phases.empty() || phases.back() != p.phase()) phases.push_back(p.phase());
    if (p.phase() != v1::JOB_PHASE_UNSPECIFIED) {
      EXPECT_EQ(p.members(), 3);
    }
  }
  EXPECT_EQ(last_member, 3);
  EXPECT_EQ(messages.back().fraction_done(), 1.0);
  EXPECT_EQ(messages.back().eta_seconds(), 0);
  // The phases come in order, members in turn, publishing last. A watch
  // sends the latest snapshot, so a phase that ends before its message is
  // written (preparing 600 rows, on a loaded machine) may be skipped; each
  // member's epochs are reported one by one and always seen.
  const std::vector<v1::JobPhase> member_phases = {v1::JOB_PHASE_SYNTHETIC_LABELS,
                                                   v1::JOB_PHASE_TRAINING,
                                                   v1::JOB_PHASE_SCORING_STATISTICS};
  std::vector<v1::JobPhase> expected = {v1::JOB_PHASE_PREPARING};
  for (int m = 0; m < 3; ++m) expected.insert(expected.end(), member_phases.begin(), member_phases.end());
  expected.push_back(v1::JOB_PHASE_PUBLISHING);
  std::vector<v1::JobPhase> seen;
  for (v1::JobPhase p : phases) {
    if (p != v1::JOB_PHASE_UNSPECIFIED) seen.push_back(p);
  }
  size_t at = 0;  // seen must be a subsequence of expected
  for (v1::JobPhase p : seen) {
    while (at < expected.size() && expected[at] != p) ++at;
    ASSERT_LT(at, expected.size()) << "phase " << v1::JobPhase_Name(p) << " out of order";
    ++at;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), v1::JOB_PHASE_TRAINING), 3);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), v1::JOB_PHASE_PUBLISHING);
  const v1::Job done = Get(job.id());
  EXPECT_EQ(done.progress().phase(), v1::JOB_PHASE_PUBLISHING);
  EXPECT_EQ(done.progress().fraction_done(), 1.0);
}

// VmHWM (peak resident set) of this process, in bytes.
int64_t PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

int64_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// tests/data/regressions/npz/inflates_to_1_2_gb.npz: 1.2 MB on disk, one
// member X.npy of 150,000,000 float64 zeros (1,200,000,128 bytes inflated).
// Made with Python's zipfile (ZIP_DEFLATED, level 9) writing the .npy
// header and the zeros in 16 MiB blocks.
std::string BombPath() {
  return std::string(ANORAND_SOURCE_DIR) + "/tests/data/regressions/npz/inflates_to_1_2_gb.npz";
}

TEST_F(TrainingCancelTest, NpzInflatingPastTheBoundIsRefusedBeforeInflating) {
  constexpr int64_t kBound = 64 << 20;
  ServerOptions o;
  o.max_upload_bytes = kBound;
  StartServer(o);
  std::ifstream f(BombPath(), std::ios::binary);
  const std::string bytes(std::istreambuf_iterator<char>(f), {});
  ASSERT_GT(bytes.size(), 1000000u);
  fs::copy_file(BombPath(), data_.File("bomb.npz"));
  // Peak RSS measured from here: /proc/self/clear_refs "5" resets VmHWM.
  std::ofstream("/proc/self/clear_refs") << "5";
  const int64_t before = RssBytes();
  v1::Job job;
  grpc::Status up = SubmitUpload(SmallNetwork("m", 1), v1::UPLOAD_FORMAT_NPZ, bytes, &job);
  grpc::Status path = SubmitPath(SmallNetwork("m", 1), "bomb.npz", &job);
  const int64_t peak = PeakRssBytes();
  for (const grpc::Status& s : {up, path}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("declares 1200000128 uncompressed bytes"));
    EXPECT_THAT(s.error_message(), HasSubstr("--max_upload_bytes"));
  }
  EXPECT_LT(peak - before, kBound) << "peak RSS grew by " << (peak - before) << " bytes";
  // Nothing stored for the refused jobs.
  grpc::ClientContext ctx;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub_->ListJobs(&ctx, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
  // The folder holds only its owner's lock file, no record.
  std::error_code ec;
  for (fs::directory_iterator it(env_->model_dir() + "/.jobs", ec), end; !ec && it != end;
       it.increment(ec)) {
    EXPECT_EQ(it->path().filename().string(), ".lock") << "a record was stored";
  }
}

TEST_F(TrainingCancelTest, CancelWhilePublishingIsRefusedAndTheVersionStillServes) {
  PublishGate gate;
  const v1::Job job = HoldAJobInPublishing(&gate, 7);
  ASSERT_TRUE(gate.entered.HasBeenNotified());
  const v1::Job publishing = Get(job.id());
  EXPECT_EQ(publishing.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(publishing.progress().phase(), v1::JOB_PHASE_PUBLISHING);
  const grpc::Status refused = Cancel(job.id());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("already publishing its version"));
  gate.release.Notify();
  const auto messages = WatchAndCancel(job.id(), nullptr);
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.back().state(), v1::JOB_STATE_SUCCEEDED);
  const v1::Job after = Get(job.id());
  EXPECT_EQ(after.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(after.published_version(), 1);
  grpc::ClientContext ctx;
  v1::ScoreResponse resp;
  const grpc::Status scored =
      env_->scoring()->Score(&ctx, MakeRequest("pub", 3, 5, 1), &resp);
  EXPECT_TRUE(scored.ok()) << scored.error_message();
  EXPECT_EQ(resp.scores_size(), 3);
}

TEST_F(TrainingCancelTest, ShutdownWhilePublishingFinishesThePublishFirst) {
  // The server is told to stop while a job is held in PUBLISHING: the stop
  // waits for the publish, and after a restart the job is SUCCEEDED with
  // its version on disk and serving.
  PublishGate gate;
  const v1::Job job = HoldAJobInPublishing(&gate, 8);
  ASSERT_TRUE(gate.entered.HasBeenNotified());
  absl::Notification stopped;
  std::thread stopper([&] {
    env_->server().Shutdown();
    stopped.Notify();
  });
  // Shutdown cannot return while the training thread is held in the gate.
  EXPECT_FALSE(stopped.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  gate.release.Notify();
  stopper.join();
  EXPECT_TRUE(stopped.HasBeenNotified());
  env_->Stop();
  env_->Start();
  stub_ = v1::Training::NewStub(env_->channel());
  const v1::Job after = Get(job.id());
  EXPECT_EQ(after.state(), v1::JOB_STATE_SUCCEEDED) << after.error();
  EXPECT_EQ(after.published_version(), 1);
  grpc::ClientContext ctx;
  v1::ScoreResponse resp;
  const grpc::Status scored =
      env_->scoring()->Score(&ctx, MakeRequest("pub", 2, 5, 2), &resp);
  EXPECT_TRUE(scored.ok()) << scored.error_message();
}

TEST_F(TrainingCancelTest, CancellingSubmitJobWhileItsUploadIsParsedSubmitsNoJob) {
  // 80 MB of CSV, parsed once its last chunk is in; the client cancels the
  // call while the server's intake gauge shows the parse running. Every
  // chunk ends on a line end, so the data would make a job if the
  // cancellation were ignored.
  ServerOptions o;
  o.intake_threads = 1;
  o.metrics_address = "127.0.0.1:0";
  StartServer(o);
  std::string header;
  for (int c = 0; c < 500; ++c) header += (c ? ",c" : "c") + std::to_string(c);
  header += "\n";
  std::string row;
  for (int c = 0; c < 500; ++c) row += c ? ",1.5" : "1.5";
  row += "\n";
  std::string block;  // 500 rows, about 1 MB
  for (int r = 0; r < 500; ++r) block += row;
  v1::JobSpec spec = SmallNetwork("big", 1);
  spec.set_upload_format(v1::UPLOAD_FORMAT_CSV);
  grpc::ClientContext ctx;
  v1::Job job;
  auto w = stub_->SubmitJob(&ctx, &job);
  v1::SubmitJobRequest head;
  *head.mutable_spec() = spec;
  ASSERT_TRUE(w->Write(head));
  v1::SubmitJobRequest c;
  c.mutable_chunk()->set_data(header);
  ASSERT_TRUE(w->Write(c));
  c.mutable_chunk()->set_data(block);
  for (int b = 0; b < 80; ++b) ASSERT_TRUE(w->Write(c));
  ASSERT_TRUE(w->WritesDone());
  ASSERT_TRUE(AwaitIntake([](double queued, double running) { return queued == 0 && running == 1; }))
      << "the parse never showed in anorand_intake_tasks";
  ctx.TryCancel();
  EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(AwaitIntake([](double queued, double running) { return queued == 0 && running == 0; }));
  grpc::ClientContext lc;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub_->ListJobs(&lc, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

}  // namespace
}  // namespace anorand::test_support
