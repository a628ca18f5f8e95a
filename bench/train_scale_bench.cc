// anorand-bench train-scale: fit seconds and peak resident memory of whole
// fits against rows, one fit per child process (so each peak RSS is that
// fit's own), and AUC-ROC / AUC-PR of the model against its own training
// rows where the data has labels (ADBench .npz files, used whole: no
// subsampling).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "client/args.h"
#include "model/compiled_model.h"
#include "model/data/data_loader.h"
#include "model/data/synthetic_data.h"
#include "model/ranking_metrics.h"
#include "model/params.h"
#include "model/trainer.h"
#include "nlohmann/json.hpp"

namespace anorand::bench {
namespace {

using cli::Args;

struct Case {
  std::string name;    // "demo" or the file's path
  int64_t rows = 0;    // demo rows
};

double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + t.tv_nsec / 1e9;
}

// Runs in the child: loads or makes the data, fits, scores the training
// rows when labelled. Returns the JSON line to send back.
nlohmann::json FitOnce(const Case& c, int features, const v1::TrainingParams& params,
                       int threads) {
  nlohmann::json j;
  const auto t_load = Clock::now();
  Dataset data;
  if (c.name == "demo") {
    SyntheticOptions so;
    so.rows = c.rows;
    so.cols = features;
    data = MakeSyntheticData(so);
  } else {
    auto loaded = LoadDataset(c.name, LoadOptions{});
    if (!loaded.ok()) return {{"error", std::string(loaded.status().message())}};
    data = *std::move(loaded);
  }
  j["load_seconds"] = ElapsedSeconds(t_load);
  std::vector<int> labels = std::move(data.labels);
  data.labels.clear();
  j["rows"] = data.rows;
  j["features"] = data.cols;
  j["data_mb"] = data.rows * data.cols * 4.0 / 1e6;
  TrainOptions o;
  o.threads = threads;
  const auto t0 = Clock::now();
  const double cpu0 = ProcessCpuSeconds();
  auto model = TrainModel(data, params, o);
  if (!model.ok()) return {{"error", std::string(model.status().message())}};
  j["fit_seconds"] = ElapsedSeconds(t0);
  // CPU seconds of the fit: on a shared machine the wall-clock time also
  // counts waiting for a core.
  j["fit_cpu_seconds"] = ProcessCpuSeconds() - cpu0;
  j["epochs_member0"] = model->summary().epochs_run();
  j["member_rows"] = model->params().member_rows();
  j["members"] = 1 + model->ensemble_size();
  if (!labels.empty()) {
    auto compiled = CompiledModel::Create(*std::move(model));
    if (!compiled.ok()) return {{"error", std::string(compiled.status().message())}};
    std::vector<float> score(data.rows);
    ScoreOutputs out;
    out.score = score.data();
    if (absl::Status s = (*compiled)->Score(data.x.data(), data.rows, out); !s.ok())
      return {{"error", std::string(s.message())}};
    j["auc_roc"] = AucRoc(score, labels);
    j["auc_pr"] = AveragePrecision(score, labels);
  }
  return j;
}

// Forks, runs FitOnce in the child, returns its JSON plus the child's peak
// RSS (wait4's ru_maxrss, kilobytes on Linux).
nlohmann::json FitInChild(const Case& c, int features, const v1::TrainingParams& params,
                          int threads) {
  int fd[2];
  if (pipe(fd) != 0) return {{"error", "pipe failed"}};
  const pid_t pid = fork();
  if (pid < 0) return {{"error", "fork failed"}};
  if (pid == 0) {
    close(fd[0]);
    const std::string line = FitOnce(c, features, params, threads).dump();
    size_t at = 0;
    while (at < line.size()) {
      const ssize_t w = write(fd[1], line.data() + at, line.size() - at);
      if (w <= 0) break;
      at += static_cast<size_t>(w);
    }
    close(fd[1]);
    _exit(0);
  }
  close(fd[1]);
  std::string text;
  char buf[4096];
  for (ssize_t r; (r = read(fd[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(r));
  close(fd[0]);
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !WIFEXITED(status)) return {{"error", "the fit's child process failed"}};
  j["peak_rss_mb"] = usage.ru_maxrss / 1024.0;
  // The child's CPU seconds: load, fit and scoring.
  j["cpu_seconds"] = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                     usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
  if (j.contains("data_mb")) j["rss_over_data"] = j["peak_rss_mb"].get<double>() / j["data_mb"].get<double>();
  return j;
}

}  // namespace

int TrainScale(const std::vector<std::string>& argv) {
  auto a = Args::Parse(argv, {{"rows", true, ""}, {"features", true, ""}, {"data", true, ""},
                              {"preset", true, ""}, {"param", true, ""}, {"threads", true, ""},
                              {"repeats", true, ""}, {"format", true, ""}});
  auto usage = [](const std::string& msg) {
    std::fprintf(stderr,
                 "anorand-bench train-scale: %s\n"
                 "usage: anorand-bench train-scale [--rows 10000,100000,1000000] [--features 20] "
                 "[--data FILE ...] [--preset default] [--param NAME=VALUE ...] [--threads 1] "
                 "[--repeats 1] [--format json|text]\n",
                 msg.c_str());
    return 2;
  };
  if (!a.ok()) return usage(std::string(a.status().message()));
  auto features = a->GetInt("features", 20);
  auto threads = a->GetInt("threads", 1);
  auto repeats = a->GetInt("repeats", 1);
  if (!features.ok() || *features < 1 || !threads.ok() || *threads < 1 || !repeats.ok() ||
      *repeats < 1) {
    return usage("--features, --threads and --repeats must be positive integers");
  }
  std::vector<Case> cases;
  const std::string rows_list = a->Has("rows") ? a->Get("rows")
                                : a->Has("data") ? ""
                                                 : "10000,100000,1000000";
  for (absl::string_view part : absl::StrSplit(rows_list, ',', absl::SkipWhitespace())) {
    int64_t n;
    if (!absl::SimpleAtoi(part, &n) || n < 10) return usage("--rows is a comma list of integers >= 10");
    cases.push_back({"demo", n});
  }
  for (const std::string& path : a->GetAll("data")) cases.push_back({path, 0});
  v1::TrainingParams params;
  params.set_preset(a->Get("preset", "default"));
  for (const std::string& assignment : a->GetAll("param")) {
    if (absl::Status s = SetParamFromString(assignment, &params); !s.ok())
      return usage(std::string(s.message()));
  }
  if (auto resolved = ResolveParams(params, static_cast<int>(*features)); !resolved.ok())
    return usage(std::string(resolved.status().message()));

  nlohmann::json runs = nlohmann::json::array();
  std::vector<double> demo_rows, demo_seconds, demo_cpu;
  for (const Case& c : cases) {
    std::vector<double> seconds, rss, cpu;
    nlohmann::json last;
    for (int r = 0; r < *repeats; ++r) {
      last = FitInChild(c, static_cast<int>(*features), params, static_cast<int>(*threads));
      if (last.contains("error")) {
        std::fprintf(stderr, "anorand-bench train-scale: %s: %s\n", c.name.c_str(),
                     last["error"].get<std::string>().c_str());
        return 1;
      }
      seconds.push_back(last["fit_seconds"].get<double>());
      rss.push_back(last["peak_rss_mb"].get<double>());
      cpu.push_back(last["fit_cpu_seconds"].get<double>());
    }
    last["data"] = c.name;
    last["fit_seconds"] = Median(seconds);
    last["fit_seconds_runs"] = seconds;
    last["peak_rss_mb"] = Median(rss);
    last["fit_cpu_seconds"] = Median(cpu);
    last["rss_over_data"] = Median(rss) / last["data_mb"].get<double>();
    if (c.name == "demo") {
      demo_rows.push_back(static_cast<double>(c.rows));
      demo_seconds.push_back(Median(seconds));
      demo_cpu.push_back(Median(cpu));
    }
    if (a->Get("format", "json") == "text") {
      std::printf("%s\n", last.dump().c_str());
      std::fflush(stdout);
    }
    runs.push_back(last);
  }
  // Log-log slope of fit seconds against rows between successive demo sizes.
  nlohmann::json slopes = nlohmann::json::array();
  for (size_t i = 1; i < demo_rows.size(); ++i) {
    slopes.push_back({{"from_rows", demo_rows[i - 1]},
                      {"to_rows", demo_rows[i]},
                      {"time_ratio", demo_seconds[i] / demo_seconds[i - 1]},
                      {"log_log_slope", std::log(demo_seconds[i] / demo_seconds[i - 1]) /
                                            std::log(demo_rows[i] / demo_rows[i - 1])},
                      {"cpu_ratio", demo_cpu[i] / demo_cpu[i - 1]},
                      {"cpu_log_log_slope", std::log(demo_cpu[i] / demo_cpu[i - 1]) /
                                                std::log(demo_rows[i] / demo_rows[i - 1])}});
  }
  nlohmann::json j = {{"bench", "train-scale"}, {"preset", params.preset()},
                      {"threads", *threads}, {"repeats", *repeats}, {"runs", runs},
                      {"slopes", slopes}};
  if (a->Get("format", "json") == "text") {
    std::printf("%s\n", slopes.dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  return 0;
}

}  // namespace anorand::bench
