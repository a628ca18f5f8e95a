// The deploy/ observability files against the real tools, and the metrics
// end to end through a real Prometheus server:
//   - promtool check config / check rules on deploy/prometheus/;
//   - promtool test rules: every alert in alerts.yml fires on synthetic
//     series that should fire it, and not on calm ones;
//   - the Grafana dashboard parses, every query names a metric the server
//     exports, the provisioning files point where compose mounts them;
//   - anorand-server (the binary) scraped every second by `prometheus` on
//     loopback: known traffic in, counters read back through the HTTP query
//     API equal it, histogram_quantile answers, no unbounded label value,
//     every alert rule evaluates, every dashboard query returns data.
// Skips with a message when prometheus or promtool is not installed
// (scripts/install-deps installs them).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
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

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/model_file.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_env.h"
#include "tests/support/http_get.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kSource = ANORAND_SOURCE_DIR;
const std::string kAlerts = kSource + "/deploy/prometheus/alerts.yml";
const std::string kConfig = kSource + "/deploy/prometheus/prometheus.yml";
const std::string kGrafana = kSource + "/deploy/grafana";
const std::string kDashboard = kGrafana + "/anorand-dashboard.json";

// The absolute path of `name` on $PATH, "" if absent.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

#define REQUIRE_TOOL(var, name)                                            \
  const std::string var = FindOnPath(name);                                \
  if (var.empty())                                                         \
  GTEST_SKIP() << name << " is not on PATH (Debian package `prometheus`; " \
               << "scripts/install-deps installs it)"

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// GET http://127.0.0.1:port/target; fills *body, returns the HTTP status
// (0 on connection failure).
int HttpGet(int port, const std::string& target, std::string* body) {
  body->clear();
  const std::string response = HttpGetRaw(port, target);
  const size_t head = response.find("\r\n\r\n");
  if (response.compare(0, 5, "HTTP/") != 0 || head == std::string::npos) return 0;
  *body = response.substr(head + 4);
  return std::atoi(response.c_str() + response.find(' ') + 1);
}

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// A port free right now on 127.0.0.1 (for a child that takes no port 0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// alerts.yml without its annotations: promtool test rules compares
// annotations too, and the tests below are about when alerts fire, not
// their prose (check rules validates the templates).
std::string RulesWithoutAnnotations() {
  std::istringstream in(ReadWholeFile(kAlerts));
  std::string out;
  bool skipping = false;
  for (std::string line; std::getline(in, line);) {
    const size_t indent = line.find_first_not_of(' ');
    if (line.compare(0, 20, "        annotations:") == 0) {
      skipping = true;
      continue;
    }
    if (skipping && (indent == std::string::npos || indent > 8)) {
      if (indent == std::string::npos) out += "\n";
      continue;
    }
    skipping = false;
    out += line + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------

TEST(PromtoolTest, ConfigAndRulesAreValid) {
  REQUIRE_TOOL(promtool, "promtool");
  std::string out, err;
  EXPECT_EQ(RunCommand({promtool, "check", "config", kConfig}, &out, &err, 60), 0) << out << err;
  EXPECT_THAT(out, HasSubstr("1 rule files found"));
  EXPECT_EQ(RunCommand({promtool, "check", "rules", kAlerts}, &out, &err, 60), 0) << out << err;
  EXPECT_THAT(out, HasSubstr("SUCCESS"));
}

TEST(PromtoolTest, EveryAlertHasForSeverityAndAnnotations) {
  const std::string text = ReadWholeFile(kAlerts);
  const std::regex alert_re("- alert: (\\w+)");
  std::vector<std::string> names;
  for (std::sregex_iterator it(text.begin(), text.end(), alert_re), end; it != end; ++it) {
    names.push_back((*it)[1]);
  }
  for (const char* want :
       {"AnorandScoreErrorRatioHigh", "AnorandScoreLatencyP99High", "AnorandAnomalyRateJump",
        "AnorandScoreDistributionShift", "AnorandModelLoadFailed", "AnorandTrainingJobFailed"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  // Each rule's block holds for:, a severity and both annotations.
  for (size_t i = 0; i < names.size(); ++i) {
    const size_t from = text.find("- alert: " + names[i]);
    const size_t to = i + 1 < names.size() ? text.find("- alert: " + names[i + 1]) : text.size();
    const std::string block = text.substr(from, to - from);
    EXPECT_THAT(block, HasSubstr("\n        for: ")) << names[i];
    EXPECT_TRUE(std::regex_search(block, std::regex("severity: (critical|warning)"))) << names[i];
    EXPECT_THAT(block, HasSubstr("summary: ")) << names[i];
    EXPECT_THAT(block, HasSubstr("description: ")) << names[i];
  }
}

constexpr char kServingTests[] = R"(rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - name: serving errors and latency
    interval: 1m
    input_series:
      - series: 'up{job="anorand",instance="a:9464"}'
        values: '0x10 1x30'
      - series: 'up{job="anorand",instance="b:9464"}'
        values: '1x40'
      - series: 'anorand_score_requests_total{job="anorand",instance="a:9464",model="fraud",version="1",method="Score",code="OK"}'
        values: '0+540x40'
      - series: 'anorand_score_requests_total{job="anorand",instance="a:9464",model="fraud",version="1",method="Score",code="INTERNAL"}'
        values: '0+60x40'
      - series: 'anorand_score_requests_total{job="anorand",instance="b:9464",model="calm",version="2",method="StreamScore",code="OK"}'
        values: '0+600x40'
      - series: 'anorand_score_requests_total{job="anorand",instance="b:9464",model="calm",version="2",method="StreamScore",code="INVALID_ARGUMENT"}'
        values: '0+6x40'
      - series: 'anorand_score_latency_seconds_bucket{job="anorand",instance="a:9464",model="fraud",method="Score",le="0.25"}'
        values: '0x40'
      - series: 'anorand_score_latency_seconds_bucket{job="anorand",instance="a:9464",model="fraud",method="Score",le="0.5"}'
        values: '0+600x40'
      - series: 'anorand_score_latency_seconds_bucket{job="anorand",instance="a:9464",model="fraud",method="Score",le="+Inf"}'
        values: '0+600x40'
      - series: 'anorand_score_latency_seconds_count{job="anorand",instance="a:9464",model="fraud",method="Score"}'
        values: '0+600x40'
      - series: 'anorand_score_latency_seconds_bucket{job="anorand",instance="b:9464",model="calm",method="StreamScore",le="0.25"}'
        values: '0+606x40'
      - series: 'anorand_score_latency_seconds_bucket{job="anorand",instance="b:9464",model="calm",method="StreamScore",le="0.5"}'
        values: '0+606x40'
      - series: 'anorand_score_latency_seconds_bucket{job="anorand",instance="b:9464",model="calm",method="StreamScore",le="+Inf"}'
        values: '0+606x40'
      - series: 'anorand_score_latency_seconds_count{job="anorand",instance="b:9464",model="calm",method="StreamScore"}'
        values: '0+606x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: AnorandDown
        exp_alerts:
          - exp_labels: {severity: critical, job: anorand, instance: "a:9464"}
      - eval_time: 20m
        alertname: AnorandDown
        exp_alerts: []
      - eval_time: 20m
        alertname: AnorandScoreErrorRatioHigh
        exp_alerts:
          - exp_labels: {severity: warning, model: fraud}
      - eval_time: 20m
        alertname: AnorandScoreServerErrors
        exp_alerts:
          - exp_labels: {severity: critical, model: fraud}
      - eval_time: 20m
        alertname: AnorandScoreLatencyP99High
        exp_alerts:
          - exp_labels: {severity: warning, model: fraud}
      - eval_time: 8m
        alertname: AnorandScoreLatencyP99High
        exp_alerts: []

  - name: models and training
    interval: 1m
    input_series:
      - series: 'anorand_model_load_failures_total{job="anorand",instance="a:9464",model="fraud"}'
        values: '0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
      - series: 'anorand_model_load_failures_total{job="anorand",instance="a:9464",model="fresh"}'
        values: '_ _ _ 1 1 1 1 1 1 1'
      - series: 'anorand_model_load_failures_total{job="anorand",instance="a:9464",model="calm"}'
        values: '0x30'
      - series: 'anorand_model_versions{job="anorand",instance="a:9464",model="gone",state="ready"}'
        values: '0x20'
      - series: 'anorand_model_versions{job="anorand",instance="a:9464",model="gone",state="failed"}'
        values: '1x20'
      - series: 'anorand_model_versions{job="anorand",instance="a:9464",model="fraud",state="ready"}'
        values: '1x20'
      - series: 'anorand_model_versions{job="anorand",instance="a:9464",model="fraud",state="failed"}'
        values: '1x20'
      - series: 'anorand_training_job_seconds_count{job="anorand",instance="a:9464",state="failed"}'
        values: '0 0 1 1 1 1 1 1 1 1'
      - series: 'anorand_training_job_seconds_count{job="anorand",instance="a:9464",state="succeeded"}'
        values: '0+1x10'
      - series: 'anorand_training_queue_depth{job="anorand",instance="a:9464"}'
        values: '3x20'
      - series: 'anorand_training_jobs{job="anorand",instance="a:9464",state="running"}'
        values: '0x20'
      - series: 'anorand_training_queue_depth{job="anorand",instance="b:9464"}'
        values: '3x20'
      - series: 'anorand_training_jobs{job="anorand",instance="b:9464",state="running"}'
        values: '1x20'
    alert_rule_test:
      - eval_time: 6m
        alertname: AnorandModelLoadFailed
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", model: fraud}
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", model: fresh}
      - eval_time: 25m
        alertname: AnorandModelLoadFailed
        exp_alerts: []
      - eval_time: 8m
        alertname: AnorandModelWithoutReadyVersion
        exp_alerts:
          - exp_labels: {severity: critical, instance: "a:9464", model: gone}
      - eval_time: 5m
        alertname: AnorandTrainingJobFailed
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", state: failed}
      - eval_time: 15m
        alertname: AnorandTrainingQueueStuck
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464"}
)";

// A day of steady traffic, then model "fraud" flags ten times as many
// records and its scores move up; model "calm" stays as it was.
constexpr char kDriftTests[] = R"(rule_files: [rules.yml]
evaluation_interval: 5m
tests:
  - name: anomaly rate and score distribution against the day before
    interval: 5m
    input_series:
      - series: 'anorand_scored_records_total{job="anorand",instance="a:9464",model="fraud",version="1"}'
        values: '0+3000x312'
      - series: 'anorand_anomalies_total{job="anorand",instance="a:9464",model="fraud",version="1"}'
        values: '0+30x288 8940+300x23'
      - series: 'anorand_scored_records_total{job="anorand",instance="a:9464",model="calm",version="1"}'
        values: '0+3000x312'
      - series: 'anorand_anomalies_total{job="anorand",instance="a:9464",model="calm",version="1"}'
        values: '0+30x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="fraud",le="0.1"}'
        values: '0+3000x288 864000+0x23'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="fraud",le="0.5"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="fraud",le="1"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="fraud",le="+Inf"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_count{job="anorand",instance="a:9464",model="fraud"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="calm",le="0.1"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="calm",le="0.5"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="calm",le="1"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_bucket{job="anorand",instance="a:9464",model="calm",le="+Inf"}'
        values: '0+3000x312'
      - series: 'anorand_score_value_count{job="anorand",instance="a:9464",model="calm"}'
        values: '0+3000x312'
    alert_rule_test:
      - eval_time: 1430m
        alertname: AnorandAnomalyRateJump
        exp_alerts: []
      - eval_time: 1550m
        alertname: AnorandAnomalyRateJump
        exp_alerts:
          - exp_labels: {severity: warning, model: fraud}
      - eval_time: 1430m
        alertname: AnorandScoreDistributionShift
        exp_alerts: []
      - eval_time: 1550m
        alertname: AnorandScoreDistributionShift
        exp_alerts:
          - exp_labels: {severity: warning, model: fraud}
)";

// Model "fraud" has a shadow that ranks records unlike its serving version
// and cannot keep up; model "calm" has one that agrees, and keeps up.
constexpr char kShadowTests[] = R"(rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - name: shadow comparison
    interval: 1m
    input_series:
      - series: 'anorand_shadow_rank_correlation{job="anorand",instance="a:9464",model="fraud",version="7",shadow_version="8"}'
        values: '0.5x40'
      - series: 'anorand_shadow_compared_records_total{job="anorand",instance="a:9464",model="fraud",version="7",shadow_version="8"}'
        values: '0+200x40'
      - series: 'anorand_shadow_rank_correlation{job="anorand",instance="a:9464",model="calm",version="1",shadow_version="2"}'
        values: '0.97x40'
      - series: 'anorand_shadow_compared_records_total{job="anorand",instance="a:9464",model="calm",version="1",shadow_version="2"}'
        values: '0+200x40'
      - series: 'anorand_shadow_dropped_records_total{job="anorand",instance="a:9464",model="fraud"}'
        values: '0+50x40'
      - series: 'anorand_shadow_dropped_records_total{job="anorand",instance="a:9464",model="calm"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 10m
        alertname: AnorandShadowDisagrees
        exp_alerts: []
      - eval_time: 25m
        alertname: AnorandShadowDisagrees
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", model: fraud, version: "7", shadow_version: "8"}
      - eval_time: 25m
        alertname: AnorandShadowDroppingRecords
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", model: fraud}
)";

// Model "fraud" version 3 sees drifted traffic (its scores and its feature
// "amount"); model "calm" version 1 sees traffic like its training data.
constexpr char kPsiTests[] = R"(rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - name: drift against the training data
    interval: 1m
    input_series:
      - series: 'anorand_score_drift_psi{job="anorand",instance="a:9464",model="fraud",version="3"}'
        values: '0.6x60'
      - series: 'anorand_score_drift_psi{job="anorand",instance="a:9464",model="calm",version="1"}'
        values: '0.04x60'
      - series: 'anorand_feature_drift_psi{job="anorand",instance="a:9464",model="fraud",version="3",feature="amount"}'
        values: '0.9x60'
      - series: 'anorand_feature_drift_psi{job="anorand",instance="a:9464",model="fraud",version="3",feature="hour"}'
        values: '0.02x60'
      - series: 'anorand_feature_drift_psi{job="anorand",instance="a:9464",model="calm",version="1",feature="amount"}'
        values: '0.1x60'
      - series: 'anorand_feature_drift_psi{job="anorand",instance="a:9464",model="calm",version="1",feature="other_max"}'
        values: '0.2x60'
    alert_rule_test:
      - eval_time: 20m
        alertname: AnorandScoreDrift
        exp_alerts: []
      - eval_time: 40m
        alertname: AnorandScoreDrift
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", model: fraud, version: "3"}
      - eval_time: 20m
        alertname: AnorandFeatureDrift
        exp_alerts: []
      - eval_time: 40m
        alertname: AnorandFeatureDrift
        exp_alerts:
          - exp_labels: {severity: warning, instance: "a:9464", model: fraud, version: "3"}
  - name: a retrained version held in shadow
    interval: 1m
    input_series:
      - series: 'anorand_retrain_stage{job="anorand",instance="a:9464",model="fraud",stage="held"}'
        values: '0x5 1x20'
      - series: 'anorand_retrain_stage{job="anorand",instance="a:9464",model="calm",stage="held"}'
        values: '0x25'
      - series: 'anorand_retrain_stage{job="anorand",instance="a:9464",model="calm",stage="shadowing"}'
        values: '1x25'
    alert_rule_test:
      - eval_time: 8m
        alertname: AnorandRetrainHeld
        exp_alerts: []
      - eval_time: 15m
        alertname: AnorandRetrainHeld
        exp_alerts:
          - exp_labels: {severity: warning, job: anorand, instance: "a:9464", model: fraud, stage: held}
)";

TEST(PromtoolTest, AlertsFireOnSyntheticSeries) {
  REQUIRE_TOOL(promtool, "promtool");
  TempDir dir;
  WriteFile(dir.File("rules.yml"), RulesWithoutAnnotations());
  WriteFile(dir.File("serving_test.yml"), kServingTests);
  WriteFile(dir.File("drift_test.yml"), kDriftTests);
  WriteFile(dir.File("shadow_test.yml"), kShadowTests);
  WriteFile(dir.File("psi_test.yml"), kPsiTests);
  std::string out, err;
  EXPECT_EQ(RunCommand({promtool, "check", "rules", dir.File("rules.yml")}, &out, &err, 60), 0)
      << out << err;
  EXPECT_THAT(out, HasSubstr("15 rules found"));
  EXPECT_EQ(RunCommand({promtool, "test", "rules", dir.File("serving_test.yml"),
                        dir.File("drift_test.yml"), dir.File("shadow_test.yml"),
                        dir.File("psi_test.yml")},
                       &out, &err, 120),
            0)
      << out << err;
}

// ---------------------------------------------------------------------------
// Grafana.

// Every family the server exports (server/metrics.h, docs/OBSERVABILITY.md).
const std::set<std::string>& ExportedMetrics() {
  static const std::set<std::string> names = [] {
    std::set<std::string> n = {"anorand_score_requests_total",
                               "anorand_scored_records_total",
                               "anorand_anomalies_total",
                               "anorand_model_versions",
                               "anorand_model_load_failures_total",
                               "anorand_training_jobs",
                               "anorand_training_queue_depth",
                               "anorand_training_throttled_seconds_total",
                               "anorand_intake_tasks",
                               "anorand_shadow_compared_records_total",
                               "anorand_shadow_rank_correlation",
                               "anorand_shadow_flag_disagreement_ratio",
                               "anorand_shadow_score_quantile",
                               "anorand_shadow_dropped_records_total",
                               "anorand_drift_window_records",
                               "anorand_score_drift_psi",
                               "anorand_feature_drift_psi",
                               "anorand_drift_out_of_range_ratio",
                               "anorand_stream_active",
                               "anorand_compiled_models",
                               "process_resident_memory_bytes",
                               "process_virtual_memory_bytes",
                               "process_cpu_seconds_total",
                               "process_open_fds",
                               "process_max_fds",
                               "process_start_time_seconds",
                               "up"};
    for (const char* h :
         {"anorand_score_latency_seconds", "anorand_batch_records", "anorand_score_value",
          "anorand_model_load_seconds", "anorand_training_job_seconds"}) {
      for (const char* suffix : {"_bucket", "_count", "_sum"}) n.insert(std::string(h) + suffix);
    }
    return n;
  }();
  return names;
}

struct DashboardQuery {
  std::string panel;
  std::string expr;
};

std::vector<DashboardQuery> DashboardQueries(const json& dash) {
  std::vector<DashboardQuery> out;
  for (const json& panel : dash.at("panels")) {
    if (panel.value("type", "") == "row") continue;
    for (const json& t : panel.value("targets", json::array())) {
      out.push_back({panel.value("title", ""), t.value("expr", "")});
    }
  }
  return out;
}

// A dashboard query with Grafana's variables replaced, for Prometheus.
std::string Concrete(std::string expr) {
  for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"$__rate_interval", "1m"}, {"$model", ".*"}, {"$instance", ".*"}}) {
    for (size_t at; (at = expr.find(var)) != std::string::npos;)
      expr.replace(at, var.size(), value);
  }
  return expr;
}

TEST(GrafanaTest, DashboardParsesAndQueriesOnlyExportedMetrics) {
  const json dash = json::parse(ReadWholeFile(kDashboard));  // throws if not JSON
  EXPECT_EQ(dash.at("uid"), "anorand");
  std::set<std::string> titles;
  for (const json& p : dash.at("panels")) titles.insert(p.value("title", ""));
  for (const char* want : {"Requests by code", "Error ratio", "Records scored",
                           "Latency p50 / p99 by model", "Batch size", "Anomaly rate",
                           "Score distribution", "Model versions by state", "Model load failures",
                           "Training jobs by state", "Open streams", "Resident memory", "CPU"}) {
    EXPECT_TRUE(titles.count(want)) << want;
  }
  const std::vector<DashboardQuery> queries = DashboardQueries(dash);
  ASSERT_GE(queries.size(), 20u);
  const std::regex metric_re("\\b((anorand|process)_[a-z_]+)\\b");
  std::set<std::string> used;
  for (const auto& q : queries) {
    EXPECT_FALSE(q.expr.empty()) << q.panel;
    for (std::sregex_iterator it(q.expr.begin(), q.expr.end(), metric_re), end; it != end; ++it) {
      EXPECT_TRUE(ExportedMetrics().count((*it)[1])) << q.panel << ": " << (*it)[1];
      used.insert((*it)[1]);
    }
    // Latency quantiles aggregate buckets across replicas by le.
    if (q.expr.find("histogram_quantile") != std::string::npos) {
      EXPECT_TRUE(std::regex_search(q.expr, std::regex("sum by \\(([a-z]+, )?le\\)"))) << q.expr;
    }
  }
  for (const char* want :
       {"anorand_score_requests_total", "anorand_score_latency_seconds_bucket",
        "anorand_scored_records_total", "anorand_anomalies_total", "anorand_score_value_bucket",
        "anorand_model_versions", "anorand_model_load_failures_total", "anorand_training_jobs",
        "anorand_training_queue_depth", "anorand_stream_active", "anorand_batch_records_bucket",
        "process_resident_memory_bytes", "process_cpu_seconds_total"}) {
    EXPECT_TRUE(used.count(want)) << want;
  }
}

TEST(GrafanaTest, ProvisioningLoadsTheDashboardFromWhereComposeMountsIt) {
  const std::string dashboards = ReadWholeFile(kGrafana + "/provisioning/dashboards/anorand.yaml");
  EXPECT_THAT(dashboards, HasSubstr("type: file"));
  EXPECT_THAT(dashboards, HasSubstr("path: /etc/grafana/anorand"));
  const std::string datasources =
      ReadWholeFile(kGrafana + "/provisioning/datasources/prometheus.yaml");
  EXPECT_THAT(datasources, HasSubstr("type: prometheus"));
  EXPECT_THAT(datasources, HasSubstr("url: http://prometheus:9090"));
  // compose.yaml mounts deploy/grafana/ at /etc/grafana/anorand.
  const std::string compose = ReadWholeFile(kSource + "/deploy/compose.yaml");
  if (!compose.empty()) {
    EXPECT_THAT(compose, HasSubstr("./grafana:/etc/grafana/anorand"));
  }
}

// ---------------------------------------------------------------------------
// The real thing.

class PrometheusE2ETest : public ::testing::Test {
 protected:
  // Instant query; the "result" array, or null on any failure.
  json Query(const std::string& promql) {
    std::string body;
    const int status = HttpGet(prom_port_, "/api/v1/query?query=" + UrlEncode(promql), &body);
    if (status != 200) {
      last_error_ = "HTTP " + std::to_string(status) + ": " + body;
      return nullptr;
    }
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") {
      last_error_ = body;
      return nullptr;
    }
    return j["data"]["result"];
  }
  // The single value of a scalar-like query; NaN when there is no result.
  double Value(const std::string& promql) {
    json r = Query(promql);
    if (!r.is_array() || r.size() != 1) return std::nan("");
    return std::stod(r[0]["value"][1].get<std::string>());
  }
  // Waits (bounded) until `promql` equals `want`.
  bool WaitFor(const std::string& promql, double want, double seconds = 30) {
    return WaitUntil([&] { return Value(promql) == want; }, seconds, 200);
  }

  int prom_port_ = 0;
  std::string last_error_;
};

TEST_F(PrometheusE2ETest, CountsTrafficThroughRealPrometheus) {
  REQUIRE_TOOL(prometheus, "prometheus");
  constexpr int kD = 8;
  TempDir dir;

  // A model in the store before the server starts: the requests name
  // version 1, version 2 is its shadow.
  for (int v : {1, 2}) {
    const std::string at = dir.File("models/fraud/" + std::to_string(v));
    std::filesystem::create_directories(at);
    WriteFile(at + "/model.anorand", SerializeModel(TinyModel(kD, 2 + v)));
  }

  Subprocess server({ServerBinary(), "--grpc_address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
                     "--model_dir=" + dir.File("models"), "--poll_seconds=0", "--drain_seconds=1",
                     "--drift_window_records=64", "--drift_sample=1"},
                    dir.File("server.out"), dir.File("server.err"));
  int grpc_port = 0, metrics_port = 0;
  const std::regex grpc_re("listening on port ([0-9]+)"), metrics_re("metrics on port ([0-9]+)");
  WaitUntil(
      [&] {
        const std::string out = ReadWholeFile(dir.File("server.out"));
        std::smatch m;
        if (std::regex_search(out, m, grpc_re)) grpc_port = std::stoi(m[1]);
        if (std::regex_search(out, m, metrics_re)) metrics_port = std::stoi(m[1]);
        return metrics_port != 0;
      },
      60);
  ASSERT_GT(grpc_port, 0) << ReadWholeFile(dir.File("server.err"));
  ASSERT_GT(metrics_port, 0) << ReadWholeFile(dir.File("server.err"));

  // Prometheus scraping it every second, with the shipped alert rules.
  prom_port_ = FreePort();
  WriteFile(dir.File("prometheus.yml"),
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "rule_files: ['" +
                kAlerts +
                "']\n"
                "scrape_configs:\n"
                "  - job_name: anorand\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:" +
                std::to_string(metrics_port) + "']\n");
  Subprocess prom(
      {prometheus, "--config.file=" + dir.File("prometheus.yml"),
       "--storage.tsdb.path=" + dir.File("tsdb"),
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_), "--log.level=warn"},
      dir.File("prom.out"), dir.File("prom.err"));
  ASSERT_TRUE(WaitFor("up{job=\"anorand\"}", 1, 30)) << last_error_ << "\n"
                                                     << ReadWholeFile(dir.File("prom.err"));

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Scoring::NewStub(channel);
  {
    auto models = v1::Models::NewStub(channel);
    v1::SetShadowRequest req;
    req.set_model_name("fraud");
    req.set_version(2);
    req.set_sample_fraction(1);
    v1::ModelInfo info;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    const grpc::Status s = models->SetShadow(&ctx, req, &info);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  int64_t records = 0, anomalies = 0, unary_ok = 0, stream_ok = 0;
  auto count = [&](const v1::ScoreResponse& r) {
    records += r.scores_size();
    for (bool a : r.is_anomaly()) anomalies += a;
  };
  auto score = [&](const v1::ScoreRequest& req, v1::ScoreResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->Score(&ctx, req, resp);
  };
  // Records with a few far outliers among them, so that some are flagged.
  auto request = [&](int rows, uint64_t seed) {
    v1::ScoreRequest req = MakeRequest("fraud", rows, kD, seed);
    req.mutable_model()->set_version(1);
    auto* values = req.mutable_batch()->mutable_values();
    for (int r = 0; r < rows; r += 7) {
      for (int c = 0; c < kD; ++c) values->Set(r * kD + c, 40.0f * ((c % 2) ? 1 : -1));
    }
    return req;
  };

  // Phase 1, then a scrape, then phase 2: rate() needs an increase between
  // two samples of the new series.
  for (int i = 0; i < 3; ++i) {
    v1::ScoreResponse resp;
    ASSERT_TRUE(score(request(20 + i, i), &resp).ok());
    count(resp);
    ++unary_ok;
  }
  ASSERT_TRUE(WaitFor("sum(anorand_scored_records_total{job=\"anorand\"})", records))
      << last_error_;
  for (int i = 0; i < 4; ++i) {
    v1::ScoreResponse resp;
    ASSERT_TRUE(score(request(50 + 10 * i, 10 + i), &resp).ok());
    count(resp);
    ++unary_ok;
  }
  {
    grpc::ClientContext ctx;
    auto stream = stub->StreamScore(&ctx);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(stream->Write(request(16, 20 + i)));
      v1::ScoreResponse resp;
      ASSERT_TRUE(stream->Read(&resp));
      count(resp);
      ++stream_ok;
    }
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
  }
  // One bad request for the model (wrong width), five for names that do
  // not exist.
  {
    v1::ScoreRequest bad = request(5, 99);
    bad.mutable_batch()->set_num_features(kD / 2);
    v1::ScoreResponse resp;
    ASSERT_EQ(score(bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    for (int i = 0; i < 5; ++i) {
      v1::ScoreRequest unknown = request(5, 100 + i);
      unknown.mutable_model()->set_name("no-such-model-" + std::to_string(i));
      ASSERT_EQ(score(unknown, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
    }
  }
  ASSERT_GT(anomalies, 0) << "the outliers should be flagged";
  ASSERT_LT(anomalies, records);

  const std::string sel = "job=\"anorand\"";
  ASSERT_TRUE(
      WaitFor("sum(anorand_score_requests_total{" + sel + "})", unary_ok + stream_ok + 1 + 5))
      << last_error_;
  ASSERT_TRUE(WaitFor("sum(anorand_scored_records_total{" + sel + "})", records)) << last_error_;

  // The counters equal the traffic.
  EXPECT_EQ(Value("anorand_scored_records_total{" + sel + ",model=\"fraud\",version=\"1\"}"),
            records);
  EXPECT_EQ(Value("anorand_anomalies_total{" + sel + ",model=\"fraud\",version=\"1\"}"), anomalies);
  EXPECT_EQ(Value("anorand_score_requests_total{" + sel +
                  ",model=\"fraud\",version=\"1\",method=\"Score\",code=\"OK\"}"),
            unary_ok);
  EXPECT_EQ(Value("anorand_score_requests_total{" + sel +
                  ",model=\"fraud\",version=\"1\",method=\"StreamScore\",code=\"OK\"}"),
            stream_ok);
  EXPECT_EQ(Value("anorand_score_requests_total{" + sel +
                  ",model=\"fraud\",version=\"1\",method=\"Score\",code=\"INVALID_ARGUMENT\"}"),
            1);
  EXPECT_EQ(Value("anorand_score_requests_total{" + sel +
                  ",model=\"_unknown_\",version=\"\",method=\"Score\",code=\"NOT_FOUND\"}"),
            5);
  EXPECT_EQ(Value("count(anorand_score_requests_total{" + sel + "})"), 4);
  EXPECT_EQ(Value("anorand_score_value_count{" + sel + ",model=\"fraud\"}"), records);
  EXPECT_EQ(Value("sum(anorand_score_latency_seconds_count{" + sel + ",model=\"fraud\"})"),
            unary_ok + stream_ok + 1);
  EXPECT_EQ(Value("anorand_batch_records_count{" + sel + "}"), unary_ok + stream_ok);
  EXPECT_EQ(Value("anorand_model_versions{" + sel + ",model=\"fraud\",state=\"ready\"}"), 2);
  EXPECT_EQ(Value("anorand_model_load_failures_total{" + sel + ",model=\"fraud\"}"), 0);
  EXPECT_EQ(Value("anorand_model_load_seconds_count{" + sel + "}"), 2);
  EXPECT_GE(Value("anorand_compiled_models{" + sel + "}"), 1);
  EXPECT_TRUE(WaitFor("anorand_stream_active{" + sel + "}", 0, 10)) << last_error_;
  EXPECT_GT(Value("process_resident_memory_bytes{" + sel + "}"), 1 << 20);
  EXPECT_GT(Value("process_open_fds{" + sel + "}"), 0);
  EXPECT_GT(Value("process_start_time_seconds{" + sel + "}"), 1.6e9);

  // histogram_quantile over the latency buckets answers, within the range.
  for (const char* q : {"0.5", "0.99"}) {
    const double v = Value(std::string("histogram_quantile(") + q +
                           ", sum by (le) (rate(anorand_score_latency_seconds_bucket{" + sel +
                           ",model=\"fraud\"}[1m])))");
    EXPECT_TRUE(std::isfinite(v)) << q << " " << last_error_;
    EXPECT_GT(v, 0) << q;
    EXPECT_LE(v, 10) << q;
  }
  const double median_score = Value(
      "histogram_quantile(0.5, sum by (le) (rate("
      "anorand_score_value_bucket{" +
      sel + ",model=\"fraud\"}[1m])))");
  EXPECT_GE(median_score, 0);
  EXPECT_LE(median_score, 1);

  // No unbounded label: the model label holds the model and _unknown_ only.
  std::string body;
  ASSERT_EQ(HttpGet(prom_port_, "/api/v1/label/model/values", &body), 200);
  const json values = json::parse(body)["data"];
  EXPECT_EQ(std::set<std::string>(values.begin(), values.end()),
            (std::set<std::string>{"_unknown_", "fraud"}));
  ASSERT_EQ(HttpGet(prom_port_, "/api/v1/label/version/values", &body), 200);
  const json versions = json::parse(body)["data"];
  EXPECT_EQ(std::set<std::string>(versions.begin(), versions.end()),
            (std::set<std::string>{"1", "2"}));  // "" is no label value in Prometheus

  // Drift of the serving version over the most recent records (between half
  // the window of 64 and the window plus one batch), and its shadow's
  // comparison on every record.
  const double window = Value("anorand_drift_window_records{" + sel + ",version=\"1\"}");
  EXPECT_GE(window, 32);
  EXPECT_LE(window, std::min<double>(records, 64 + 30));
  EXPECT_EQ(Value("anorand_drift_window_records{" + sel + ",version=\"2\"}"), 0);
  const double score_psi = Value("anorand_score_drift_psi{" + sel + ",version=\"1\"}");
  const double feature_psi = Value("max(anorand_feature_drift_psi{" + sel + ",version=\"1\"})");
  EXPECT_GE(score_psi, 0);
  EXPECT_GE(feature_psi, 0);
  EXPECT_EQ(Value("count(anorand_feature_drift_psi{" + sel + "})"), kD);
  EXPECT_GT(Value("anorand_drift_out_of_range_ratio{" + sel + "}"), 0) << "the outliers";
  EXPECT_TRUE(WaitFor("anorand_shadow_compared_records_total{" + sel +
                          ",version=\"1\",shadow_version=\"2\"}",
                      records))
      << last_error_;
  EXPECT_EQ(Value("anorand_shadow_dropped_records_total{" + sel + ",model=\"fraud\"}"), 0);

  // Every shipped alert rule evaluates against the real series. The drift
  // rules are pending exactly when the PSI they read is above 0.25.
  const std::map<std::string, std::string> expected_state = {
      {"AnorandScoreDrift", score_psi > 0.25 ? "pending" : "inactive"},
      {"AnorandFeatureDrift", feature_psi > 0.25 ? "pending" : "inactive"}};
  auto state_of = [&](const json& r) {
    const auto it = expected_state.find(r.value("name", ""));
    return it == expected_state.end() ? std::string("inactive") : it->second;
  };
  json rules;
  const bool all_evaluated = WaitUntil(
      [&] {
        if (HttpGet(prom_port_, "/api/v1/rules", &body) != 200) return false;
        rules = json::parse(body)["data"]["groups"];
        bool evaluated = !rules.empty();
        for (const json& g : rules) {
          for (const json& r : g["rules"]) {
            evaluated &= r.value("lastEvaluation", "").rfind("0001-", 0) != 0 &&
                         r.value("state", "") == state_of(r);
          }
        }
        return evaluated;
      },
      60, 200);
  ASSERT_TRUE(all_evaluated) << rules.dump(1);
  int rule_count = 0;
  for (const json& g : rules) {
    for (const json& r : g["rules"]) {
      ++rule_count;
      EXPECT_EQ(r.value("health", ""), "ok")
          << r.value("name", "") << ": " << r.value("lastError", "");
      // Known good traffic: nothing else fires (pending or firing) yet.
      EXPECT_EQ(r.value("state", ""), state_of(r)) << r.value("name", "");
    }
  }
  EXPECT_EQ(rule_count, 15);

  // Every dashboard query is valid PromQL and finds data (rate() needs two
  // samples of the series that the last requests created).
  ASSERT_TRUE(WaitFor("count_over_time(anorand_score_requests_total{" + sel +
                          ",model=\"_unknown_\"}[1m]) >= bool 2",
                      1))
      << last_error_;
  // Every dashboard query is valid PromQL and finds data.
  const json dash = json::parse(ReadWholeFile(kDashboard));
  for (const auto& q : DashboardQueries(dash)) {
    const json r = Query(Concrete(q.expr));
    ASSERT_TRUE(r.is_array()) << q.panel << ": " << q.expr << "\n" << last_error_;
    EXPECT_FALSE(r.empty()) << q.panel << ": " << Concrete(q.expr);
  }

  prom.Signal(SIGTERM);
  EXPECT_EQ(prom.Wait(20), 0) << ReadWholeFile(dir.File("prom.err"));
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(20), 0) << ReadWholeFile(dir.File("server.err"));
}

}  // namespace
}  // namespace anorand::test_support
