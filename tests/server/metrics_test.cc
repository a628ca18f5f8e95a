// Metrics: the wiring on its own (Metrics fed events directly, read back in
// the text format), then through a real server: traffic over gRPC on
// loopback, /metrics scraped over HTTP, exact counter values and label sets.
#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "anorand/v1/training.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/data/synthetic_data.h"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"
#include "tests/support/subprocess.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The samples of a text exposition: `name{labels}` exactly as printed
// (prometheus-cpp sorts labels by name) -> value.
using Samples = std::map<std::string, double>;

Samples Parse(const std::string& text) {
  Samples out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

// The value of one sample, NaN when absent (so EXPECT_EQ fails visibly).
double Get(const Samples& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? std::nan("") : it->second;
}

// Every sample of a metric name (exact name, any labels).
std::vector<std::string> SeriesOf(const Samples& s, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& [key, v] : s) {
    if (key.compare(0, name.size(), name) == 0 &&
        (key.size() == name.size() || key[name.size()] == '{')) {
      out.push_back(key);
    }
  }
  return out;
}

// GET http://127.0.0.1:port/path; returns the whole response (status
// line, headers, body), "" on connection failure.
std::string HttpGet(int port, const std::string& path) { return HttpGetRaw(port, path); }

std::string Body(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// ---------------------------------------------------------------------------
// Metrics on its own.

ScoreEvent Event(const std::string* model, bool known, int64_t version, absl::StatusCode code,
                 int64_t records = 0, int64_t anomalies = 0,
                 const v1::ScoreResponse* response = nullptr) {
  ScoreEvent e;
  e.model = model;
  e.known_model = known;
  e.version = version;
  e.code = code;
  e.records = records;
  e.anomalies = anomalies;
  e.response = response;
  return e;
}

TEST(MetricsUnitTest, CountsRequestsRecordsAndAnomaliesByLabelSet) {
  Registry registry;
  Metrics m(&registry);
  const std::string fraud = "fraud";
  v1::ScoreResponse resp;
  for (float s : {0.01f, 0.2f, 0.5f, 0.97f}) resp.add_scores(s);
  m.OnScore(ScoreMethod::kScore, Event(&fraud, true, 3, absl::StatusCode::kOk, 4, 1, &resp));
  m.OnScore(ScoreMethod::kScore, Event(&fraud, true, 3, absl::StatusCode::kOk, 4, 1, &resp));
  m.OnScore(ScoreMethod::kStreamScore, Event(&fraud, true, 3, absl::StatusCode::kOk, 4, 1, &resp));
  m.OnScore(ScoreMethod::kScore, Event(&fraud, true, 3, absl::StatusCode::kInvalidArgument));
  m.OnScore(ScoreMethod::kScore, Event(&fraud, true, 0, absl::StatusCode::kNotFound));
  const Samples s = Parse(m.Render());
  EXPECT_EQ(
      Get(s, R"(anorand_score_requests_total{code="OK",method="Score",model="fraud",version="3"})"),
      2);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="OK",method="StreamScore",model="fraud",version="3"})"),
      1);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="Score",model="fraud",version="3"})"),
      1);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="NOT_FOUND",method="Score",model="fraud",version=""})"),
      1);
  EXPECT_EQ(SeriesOf(s, "anorand_score_requests_total").size(), 4u);
  EXPECT_EQ(Get(s, R"(anorand_scored_records_total{model="fraud",version="3"})"), 12);
  EXPECT_EQ(Get(s, R"(anorand_anomalies_total{model="fraud",version="3"})"), 3);
  // Failed requests add no records: the unresolved version has zeros.
  EXPECT_EQ(Get(s, R"(anorand_scored_records_total{model="fraud",version=""})"), 0);
  EXPECT_EQ(Get(s, "anorand_batch_records_count"), 3);
  EXPECT_EQ(Get(s, "anorand_batch_records_sum"), 12);
  EXPECT_EQ(Get(s, R"(anorand_batch_records_bucket{le="4"})"), 3);
  EXPECT_EQ(Get(s, R"(anorand_batch_records_bucket{le="1"})"), 0);
}

TEST(MetricsUnitTest, ScoreHistogramBucketsMatchSingleObservations) {
  Registry registry;
  Metrics m(&registry);
  const std::string name = "drift";
  v1::ScoreResponse resp;
  const std::vector<float> scores = {0.0f, 0.01f, 0.05f, 0.2f, 0.5f, 0.51f, 0.97f, 1.0f};
  for (float v : scores) resp.add_scores(v);
  m.OnScore(ScoreMethod::kScore, Event(&name, true, 1, absl::StatusCode::kOk, 8, 0, &resp));
  const Samples s = Parse(m.Render());
  // The same figures through prometheus-cpp's own Observe().
  prometheus::Histogram reference(Metrics::ScoreBuckets());
  double sum = 0;
  for (float v : scores) {
    reference.Observe(v);
    sum += v;
  }
  const prometheus::ClientMetric want = reference.Collect();
  ASSERT_EQ(want.histogram.bucket.size(), 21u);
  for (const auto& b : want.histogram.bucket) {
    std::ostringstream le;
    le << b.upper_bound;
    const std::string key = "anorand_score_value_bucket{model=\"drift\",le=\"" +
                            (std::isinf(b.upper_bound) ? std::string("+Inf") : le.str()) + "\"}";
    EXPECT_EQ(Get(s, key), static_cast<double>(b.cumulative_count)) << key;
  }
  EXPECT_EQ(Get(s, R"(anorand_score_value_count{model="drift"})"), 8);
  EXPECT_NEAR(Get(s, R"(anorand_score_value_sum{model="drift"})"), sum, 1e-6);
  // 0.05f is a little above 0.05: like Observe(), it lands in the next bucket.
  EXPECT_EQ(Get(s, R"(anorand_score_value_bucket{model="drift",le="0.05"})"), 2);
  EXPECT_EQ(Get(s, R"(anorand_score_value_bucket{model="drift",le="0.5"})"), 5);
  EXPECT_EQ(Get(s, R"(anorand_score_value_bucket{model="drift",le="0.95"})"), 6);
}

TEST(MetricsUnitTest, UnknownAndInvalidModelNamesFoldIntoOneSeries) {
  Registry registry;
  Metrics m(&registry);
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back("no-such-model-" + std::to_string(i));
  names.push_back("../../etc/passwd");
  names.push_back(std::string(300, 'x'));
  names.push_back("");
  for (const auto& n : names) {
    m.OnScore(ScoreMethod::kScore, Event(&n, false, 0, absl::StatusCode::kNotFound));
    m.ObserveLatency(ScoreMethod::kScore, n, 0.001);
  }
  m.OnScore(ScoreMethod::kStreamScore,
            Event(nullptr, false, 0, absl::StatusCode::kInvalidArgument));
  const std::string text = m.Render();
  EXPECT_THAT(text, Not(HasSubstr("no-such-model")));
  EXPECT_THAT(text, Not(HasSubstr("passwd")));
  const Samples s = Parse(text);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="NOT_FOUND",method="Score",model="_unknown_",version=""})"),
      53);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="StreamScore",model="_unknown_",version=""})"),
      1);
  EXPECT_EQ(SeriesOf(s, "anorand_score_requests_total").size(), 2u);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="Score",model="_unknown_"})"), 53);
  // Latency series exist for _unknown_ only (both methods).
  EXPECT_EQ(SeriesOf(s, "anorand_score_latency_seconds_count").size(), 2u);
}

TEST(MetricsUnitTest, AFailedRequestForAModelInTheRegistryKeepsItsName) {
  // known_model is false when validation fails before the name is
  // resolved; the registry still knows the model.
  Registry registry;
  VersionEntry failed;
  failed.state = VersionState::kFailed;
  registry.SetVersion("fraud", 1, failed);
  Metrics m(&registry);
  const std::string fraud = "fraud", other = "other";
  m.OnScore(ScoreMethod::kScore, Event(&fraud, false, 0, absl::StatusCode::kInvalidArgument));
  m.ObserveLatency(ScoreMethod::kScore, fraud, 0.5);
  m.OnScore(ScoreMethod::kScore, Event(&other, false, 0, absl::StatusCode::kInvalidArgument));
  m.ObserveLatency(ScoreMethod::kScore, other, 0.5);
  const Samples s = Parse(m.Render());
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="Score",model="fraud",version=""})"),
      1);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="Score",model="_unknown_",version=""})"),
      1);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="Score",model="fraud"})"), 1);
  EXPECT_EQ(
      Get(s, R"(anorand_score_latency_seconds_bucket{method="Score",model="fraud",le="0.25"})"), 0);
  EXPECT_EQ(
      Get(s, R"(anorand_score_latency_seconds_bucket{method="Score",model="fraud",le="0.5"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="Score",model="_unknown_"})"), 1);
}

TEST(MetricsUnitTest, LatencyBucketsSpanTenMicrosecondsToTenSeconds) {
  const std::vector<double> b = Metrics::LatencyBuckets();
  ASSERT_GE(b.size(), 10u);
  EXPECT_DOUBLE_EQ(b.front(), 1e-5);
  EXPECT_DOUBLE_EQ(b.back(), 10);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(std::adjacent_find(b.begin(), b.end()), b.end());
}

TEST(MetricsUnitTest, ModelVersionGaugeFollowsTheRegistryOnEachScrape) {
  Registry registry;
  VersionEntry loading, failed, unloaded;
  loading.state = VersionState::kLoading;
  failed.state = VersionState::kFailed;
  unloaded.state = VersionState::kUnloaded;
  registry.SetVersion("a", 1, failed);
  registry.SetVersion("a", 2, loading);
  registry.SetVersion("a", 3, unloaded);
  registry.SetVersion("a", 4, unloaded);
  Metrics m(&registry);
  Samples s = Parse(m.Render());
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="a",state="failed"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="a",state="loading"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="a",state="unloaded"})"), 2);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="a",state="ready"})"), 0);
  EXPECT_EQ(Get(s, "anorand_compiled_models"), static_cast<double>(CompiledModel::LiveCount()));
  registry.EraseModel("a");
  s = Parse(m.Render());
  EXPECT_TRUE(SeriesOf(s, "anorand_model_versions").empty());
}

TEST(MetricsUnitTest, LoadsTrainingAndStreams) {
  Registry registry;
  Metrics m(&registry);
  m.OnLoad(LoadEvent{"a", 1, true, 0.02, ""});
  m.OnLoad(LoadEvent{"b", 1, false, 0.01, "bad file"});
  m.OnLoad(LoadEvent{"b", 2, false, 0.01, "bad file"});
  m.OnStreamChange(+1);
  m.OnStreamChange(+1);
  m.OnStreamChange(-1);
  m.SetTrainingJobs("running", 2);
  m.SetTrainingJobs("queued", 5);
  m.SetTrainingQueueDepth(5);
  m.ObserveTrainingJob("failed", 42);
  m.ObserveTrainingJob("succeeded", 700);
  const Samples s = Parse(m.Render());
  EXPECT_EQ(Get(s, R"(anorand_model_load_failures_total{model="a"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_model_load_failures_total{model="b"})"), 2);
  EXPECT_EQ(Get(s, "anorand_model_load_seconds_count"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_load_seconds_bucket{le="0.025"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_load_seconds_bucket{le="0.01"})"), 0);
  EXPECT_EQ(Get(s, "anorand_stream_active"), 1);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="running"})"), 2);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="queued"})"), 5);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="failed"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="succeeded"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="cancelled"})"), 0);
  EXPECT_EQ(Get(s, "anorand_training_queue_depth"), 5);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_count{state="failed"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_count{state="succeeded"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_count{state="cancelled"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_bucket{state="succeeded",le="600"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_bucket{state="succeeded",le="1200"})"), 1);
}

TEST(MetricsUnitTest, ProcessFiguresAreSane) {
  Registry registry;
  Metrics m(&registry);
  const Samples s = Parse(m.Render());
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(Get(s, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(Get(s, "process_virtual_memory_bytes"), Get(s, "process_resident_memory_bytes"));
  EXPECT_GE(Get(s, "process_cpu_seconds_total"), 0);
  EXPECT_LT(Get(s, "process_cpu_seconds_total"), 3600);
  EXPECT_GE(Get(s, "process_open_fds"), 3);
  EXPECT_GE(Get(s, "process_max_fds"), Get(s, "process_open_fds"));
  EXPECT_LE(Get(s, "process_start_time_seconds"), now + 1);
  EXPECT_GT(Get(s, "process_start_time_seconds"), now - 3600);
  // CPU time grows with work.
  const double before = Get(s, "process_cpu_seconds_total");
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  volatile double x = 0;
  while (std::chrono::steady_clock::now() < until) x = x + 1;
  EXPECT_GT(Get(Parse(m.Render()), "process_cpu_seconds_total"), before);
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge"));
}

TEST(MetricsUnitTest, ConcurrentFirstUseCountsEveryRequest) {
  Registry registry;
  Metrics m(&registry);
  std::vector<std::string> names = {"m0", "m1", "m2", "m3"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string& n = names[(i + t) % names.size()];
        m.OnScore(t % 2 ? ScoreMethod::kScore : ScoreMethod::kStreamScore,
                  Event(&n, true, 1 + i % 3, absl::StatusCode::kOk, 2, 1));
        m.ObserveLatency(ScoreMethod::kScore, n, 1e-4);
      }
    });
  }
  for (auto& t : threads) t.join();
  const Samples s = Parse(m.Render());
  double requests = 0, records = 0;
  for (const auto& key : SeriesOf(s, "anorand_score_requests_total")) requests += s.at(key);
  for (const auto& key : SeriesOf(s, "anorand_scored_records_total")) records += s.at(key);
  EXPECT_EQ(requests, 16000);
  EXPECT_EQ(records, 32000);
  EXPECT_EQ(SeriesOf(s, "anorand_score_requests_total").size(), 4u * 3 * 2);
}

TEST(MetricsUnitTest, ServeFailsWithAMessageWhenThePortIsTaken) {
  Registry registry;
  Metrics a(&registry);
  ASSERT_TRUE(a.Serve("127.0.0.1:0").ok());
  ASSERT_GT(a.port(), 0);
  Metrics b(&registry);
  absl::Status s = b.Serve("127.0.0.1:" + std::to_string(a.port()));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--metrics_address"));
  EXPECT_EQ(b.port(), 0);
  // Stopping is quick (CivetWeb alone takes 2 s).
  const auto start = std::chrono::steady_clock::now();
  {
    Metrics c(&registry);
    ASSERT_TRUE(c.Serve("127.0.0.1:0").ok());
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.5);
}

TEST(MetricsUnitTest, ServerOptionsRejectAMalformedMetricsAddress) {
  ServerOptions o;
  for (const char* bad : {"9464", "host:", "host:99999", "host:12ab"}) {
    o.metrics_address = bad;
    EXPECT_EQ(ValidateServerOptions(o).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  for (const char* good : {"", "0.0.0.0:9464", "127.0.0.1:0", "[::]:9464"}) {
    o.metrics_address = good;
    EXPECT_TRUE(ValidateServerOptions(o).ok()) << good;
  }
}

// ---------------------------------------------------------------------------
// Through a real server. One server for the suite (stopping an Exposer is
// not free); each test uses its own model names so the counts it asserts
// are its own.

constexpr int kD = 8;

class ServerMetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new v1::ModelFile(TinyModel(kD, 1));
    ServerOptions o;
    o.metrics_address = "127.0.0.1:0";
    o.poll_seconds = 0.2;
    o.max_streams = 4;
    env_ = new ServerEnv(o);
    for (const char* name : {"unary", "stream", "versions"}) {
      if (!env_->Import(name, *model_).ok()) throw std::runtime_error("import failed");
    }
  }
  static void TearDownTestSuite() {
    delete env_;
    delete model_;
  }

  static Samples Scrape() {
    const std::string response = HttpGet(env_->server().metrics_port(), "/metrics");
    EXPECT_THAT(response, HasSubstr("200 OK"));
    return Parse(Body(response));
  }

  grpc::Status Score(const v1::ScoreRequest& req, v1::ScoreResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return env_->scoring()->Score(&ctx, req, resp);
  }

  static int Anomalies(const v1::ScoreResponse& resp) {
    int n = 0;
    for (bool a : resp.is_anomaly()) n += a;
    return n;
  }

  static v1::ModelFile* model_;
  static ServerEnv* env_;
};
v1::ModelFile* ServerMetricsTest::model_ = nullptr;
ServerEnv* ServerMetricsTest::env_ = nullptr;

TEST_F(ServerMetricsTest, ServesTheTextFormatOnItsOwnPort) {
  const int port = env_->server().metrics_port();
  ASSERT_GT(port, 0);
  EXPECT_NE(port, env_->server().port());
  // Request counters have no series (and no family in the output) until
  // the first request.
  v1::ScoreResponse resp;
  ASSERT_TRUE(Score(MakeRequest("versions", 4, kD), &resp).ok());
  const std::string response = HttpGet(port, "/metrics");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("text/plain"));
  for (const char* family :
       {"anorand_score_requests_total counter", "anorand_scored_records_total counter",
        "anorand_anomalies_total counter", "anorand_score_latency_seconds histogram",
        "anorand_batch_records histogram", "anorand_score_value histogram",
        "anorand_model_versions gauge", "anorand_model_load_seconds histogram",
        "anorand_model_load_failures_total counter", "anorand_training_jobs gauge",
        "anorand_training_job_seconds histogram", "anorand_training_queue_depth gauge",
        "anorand_training_throttled_seconds_total counter", "anorand_intake_tasks gauge",
        "anorand_stream_active gauge", "anorand_compiled_models gauge",
        "process_resident_memory_bytes gauge", "process_cpu_seconds_total counter",
        "process_open_fds gauge", "process_start_time_seconds gauge"}) {
    EXPECT_THAT(response, HasSubstr(std::string("# TYPE ") + family));
  }
}

TEST_F(ServerMetricsTest, UnaryTrafficIsCountedExactly) {
  int records = 0, anomalies = 0;
  for (int rows : {10, 25, 7}) {
    v1::ScoreResponse resp;
    ASSERT_TRUE(Score(MakeRequest("unary", rows, kD, rows), &resp).ok());
    records += rows;
    anomalies += Anomalies(resp);
  }
  v1::ScoreResponse resp;
  // Resolved, then refused: wrong width. Counted under version 1.
  EXPECT_EQ(Score(MakeRequest("unary", 5, kD + 1), &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Refused before resolution (empty batch): the model is known, version "".
  v1::ScoreRequest empty;
  empty.mutable_model()->set_name("unary");
  empty.mutable_batch()->set_num_features(kD);
  EXPECT_EQ(Score(empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A version that does not exist.
  v1::ScoreRequest v9 = MakeRequest("unary", 3, kD);
  v9.mutable_model()->set_version(9);
  EXPECT_EQ(Score(v9, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  const Samples s = Scrape();
  EXPECT_EQ(
      Get(s, R"(anorand_score_requests_total{code="OK",method="Score",model="unary",version="1"})"),
      3);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="Score",model="unary",version="1"})"),
      1);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="Score",model="unary",version=""})"),
      1);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="NOT_FOUND",method="Score",model="unary",version=""})"),
      1);
  int unary_series = 0;
  for (const auto& key : SeriesOf(s, "anorand_score_requests_total")) {
    unary_series += key.find("model=\"unary\"") != std::string::npos;
  }
  EXPECT_EQ(unary_series, 4);
  EXPECT_EQ(Get(s, R"(anorand_scored_records_total{model="unary",version="1"})"), records);
  EXPECT_EQ(Get(s, R"(anorand_anomalies_total{model="unary",version="1"})"), anomalies);
  EXPECT_EQ(Get(s, R"(anorand_score_value_count{model="unary"})"), records);
  EXPECT_EQ(Get(s, R"(anorand_score_value_bucket{model="unary",le="+Inf"})"), records);
  EXPECT_EQ(Get(s, R"(anorand_score_value_bucket{model="unary",le="1"})"), records);
  // Latency: every request, failures included, each bucket present.
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="Score",model="unary"})"), 6);
  double previous = 0;
  for (double le : Metrics::LatencyBuckets()) {
    std::ostringstream key;
    key << R"(anorand_score_latency_seconds_bucket{method="Score",model="unary",le=")" << le
        << "\"}";
    const double v = Get(s, key.str());
    ASSERT_FALSE(std::isnan(v)) << key.str();
    EXPECT_GE(v, previous) << key.str();
    previous = v;
  }
  EXPECT_EQ(
      Get(s, R"(anorand_score_latency_seconds_bucket{method="Score",model="unary",le="+Inf"})"), 6);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_bucket{method="Score",model="unary",le="10"})"),
            6);
  EXPECT_GT(Get(s, R"(anorand_score_latency_seconds_sum{method="Score",model="unary"})"), 0);
  EXPECT_GE(Get(s, "anorand_batch_records_count"), 3);
}

TEST_F(ServerMetricsTest, StreamMessagesAreCountedUnderStreamScore) {
  grpc::ClientContext ctx;
  auto stream = env_->scoring()->StreamScore(&ctx);
  int records = 0, anomalies = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(stream->Write(MakeRequest("stream", 8 + i, kD, 100 + i)));
    v1::ScoreResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    records += 8 + i;
    anomalies += Anomalies(resp);
  }
  // Open now.
  EXPECT_EQ(Get(Scrape(), "anorand_stream_active"), 1);
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  // The server's OnDone may trail the client's Finish.
  Samples s;
  WaitUntil([&] { return Get(s = Scrape(), "anorand_stream_active") == 0; }, 60, 10);
  EXPECT_EQ(Get(s, "anorand_stream_active"), 0);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="OK",method="StreamScore",model="stream",version="1"})"),
      4);
  EXPECT_TRUE(std::isnan(Get(
      s, R"(anorand_score_requests_total{code="OK",method="Score",model="stream",version="1"})")));
  EXPECT_EQ(Get(s, R"(anorand_scored_records_total{model="stream",version="1"})"), records);
  EXPECT_EQ(Get(s, R"(anorand_anomalies_total{model="stream",version="1"})"), anomalies);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="StreamScore",model="stream"})"),
            4);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="Score",model="stream"})"), 0);

  // A failing message ends the stream and is counted with its code.
  grpc::ClientContext ctx2;
  auto bad = env_->scoring()->StreamScore(&ctx2);
  ASSERT_TRUE(bad->Write(MakeRequest("stream", 3, kD + 2)));
  v1::ScoreResponse resp;
  EXPECT_FALSE(bad->Read(&resp));
  EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = Scrape();
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="StreamScore",model="stream",version="1"})"),
      1);
}

TEST_F(ServerMetricsTest, UnknownModelNamesFoldIntoUnknown) {
  v1::ScoreResponse resp;
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(Score(MakeRequest("nope-" + std::to_string(i), 2, kD), &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(Score(MakeRequest("../escape", 2, kD), &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::string text = Body(HttpGet(env_->server().metrics_port(), "/metrics"));
  EXPECT_THAT(text, Not(HasSubstr("nope-")));
  EXPECT_THAT(text, Not(HasSubstr("escape")));
  const Samples s = Parse(text);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="NOT_FOUND",method="Score",model="_unknown_",version=""})"),
      12);
  EXPECT_EQ(
      Get(s,
          R"(anorand_score_requests_total{code="INVALID_ARGUMENT",method="Score",model="_unknown_",version=""})"),
      1);
  EXPECT_EQ(Get(s, R"(anorand_score_latency_seconds_count{method="Score",model="_unknown_"})"), 13);
  EXPECT_EQ(Get(s, R"(anorand_scored_records_total{model="_unknown_",version=""})"), 0);
  // Every model label is a model in the store, or _unknown_.
  const std::regex model_re("model=\"([^\"]*)\"");
  std::set<std::string> models;
  for (const auto& [key, v] : s) {
    for (std::sregex_iterator it(key.begin(), key.end(), model_re), end; it != end; ++it) {
      models.insert((*it)[1]);
    }
  }
  for (const auto& m : models) {
    EXPECT_TRUE(m == "_unknown_" || m == "unary" || m == "stream" || m == "versions" ||
                m == "broken" || m == "trained")
        << m;
  }
}

TEST_F(ServerMetricsTest, ModelVersionsAndLoadFailuresFollowTheStore) {
  Samples s = Scrape();
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="versions",state="ready"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="versions",state="failed"})"), 0);
  EXPECT_GE(Get(s, "anorand_model_load_seconds_count"), 3);
  EXPECT_EQ(Get(s, R"(anorand_model_load_failures_total{model="versions"})"), 0);
  EXPECT_EQ(Get(s, "anorand_compiled_models"), static_cast<double>(CompiledModel::LiveCount()));
  EXPECT_GE(Get(s, "anorand_compiled_models"), 3);

  // A second version, then a broken file dropped into the store by hand:
  // the poller finds it and fails to load it.
  ASSERT_TRUE(env_->Import("versions", *model_).ok());
  const std::string dir = env_->model_dir() + "/broken/1";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/model.anorand") << "this is not a model";
  WaitUntil(
      [&] { return Get(s = Scrape(), R"(anorand_model_load_failures_total{model="broken"})") >= 1; },
      60);
  EXPECT_EQ(Get(s, R"(anorand_model_load_failures_total{model="broken"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="broken",state="failed"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="broken",state="ready"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="versions",state="ready"})"), 2);
}

TEST_F(ServerMetricsTest, ProcessFiguresDescribeTheServerProcess) {
  const Samples s = Scrape();
  EXPECT_GT(Get(s, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(Get(s, "process_open_fds"), 5);  // gRPC and HTTP listeners at least
  EXPECT_GT(Get(s, "process_cpu_seconds_total"), 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(Get(s, "process_start_time_seconds"), now + 1);
  EXPECT_GT(Get(s, "process_start_time_seconds"), now - 3600);
}

TEST_F(ServerMetricsTest, TrainingJobsAreCountedByState) {
  // A small job uploaded as CSV, trained to completion.
  TempDir dir;
  ASSERT_TRUE(WriteCsv(DemoData(400, 5, 3), dir.File("d.csv"), false).ok());
  const std::string csv = ReadWholeFile(dir.File("d.csv"));
  auto stub = v1::Training::NewStub(env_->channel());
  v1::Job job;
  {
    grpc::ClientContext ctx;
    auto w = stub->SubmitJob(&ctx, &job);
    v1::SubmitJobRequest head;
    v1::JobSpec* spec = head.mutable_spec();
    spec->set_model_name("trained");
    spec->set_upload_format(v1::UPLOAD_FORMAT_CSV);
    spec->mutable_params()->set_max_epochs(2);
    spec->mutable_params()->set_min_steps(0);
    spec->mutable_params()->add_encoder_widths(8);
    spec->mutable_params()->add_decoder_widths(8);
    ASSERT_TRUE(w->Write(head));
    v1::SubmitJobRequest chunk;
    chunk.mutable_chunk()->set_data(csv);
    ASSERT_TRUE(w->Write(chunk));
    w->WritesDone();
    ASSERT_TRUE(w->Finish().ok());
  }
  Samples s;
  WaitUntil(
      [&] {
        return Get(s = Scrape(), R"(anorand_training_job_seconds_count{state="succeeded"})") >= 1;
      },
      120);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_count{state="succeeded"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_training_job_seconds_count{state="failed"})"), 0);
  EXPECT_GT(Get(s, R"(anorand_training_job_seconds_sum{state="succeeded"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="succeeded"})"), 1);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="running"})"), 0);
  EXPECT_EQ(Get(s, R"(anorand_training_jobs{state="queued"})"), 0);
  EXPECT_EQ(Get(s, "anorand_training_queue_depth"), 0);
  // The job published a version.
  EXPECT_EQ(Get(s, R"(anorand_model_versions{model="trained",state="ready"})"), 1);
}

TEST(ServerMetricsOffTest, NoAddressNoEndpoint) {
  ServerEnv env;  // ServerOptions::metrics_address defaults to "" (off)
  EXPECT_EQ(env.server().metrics_port(), 0);
}

}  // namespace
}  // namespace anorand::test_support
