// fit, eval, score-local and demo-data: the model library without a server.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/result_printer.h"
#include "model/compiled_model.h"
#include "model/data/data_loader.h"
#include "model/data/synthetic_data.h"
#include "model/evaluation.h"
#include "model/model_file.h"
#include "model/params.h"
#include "model/trainer.h"
#include "nlohmann/json.hpp"

namespace anorand::cli {
namespace {

const FlagSpec kParam{"param", true, "training parameter NAME=VALUE (repeatable; see docs/CLI.md)"};
const FlagSpec kSeed{"seed", true, "random seed (default 1)"};
const FlagSpec kThreads{"threads", true, "oneDNN threads for training (default: all cores)"};
const FlagSpec kLabel{"label-column", true,
                      "column with labels: 1 = known anomaly, 0 = unlabelled (NPZ: y by default)"};
const FlagSpec kQuiet{"quiet", false, "no per-epoch progress on stderr"};

absl::StatusOr<v1::TrainingParams> ParamsFrom(const Args& a) {
  v1::TrainingParams p;
  for (const std::string& kv : a.GetAll("param")) {
    if (absl::Status s = SetParamFromString(kv, &p); !s.ok()) return s;
  }
  if (a.Has("seed")) {
    uint64_t seed;
    if (!absl::SimpleAtoi(a.Get("seed"), &seed)) {
      return absl::InvalidArgumentError("--seed must be a non-negative integer");
    }
    p.set_seed(seed);
  }
  return p;
}

LoadOptions LoadOptionsFrom(const Args& a) {
  LoadOptions o;
  o.csv.label_column = a.Get("label-column");
  return o;
}

}  // namespace

int RunFit(const Argv& argv) {
  const std::vector<FlagSpec> specs = {
      {"data", true, "training data: .csv, .tsv, .npy or .npz (labels: --label-column, NPZ y)"},
      {"out", true, "where to write the model file"},
      kParam, kSeed, kThreads, kLabel, kQuiet,
      {"format", true, "summary format: json (default) or table"}};
  const char* const usage_head = "usage: anorand fit --data FILE --out MODEL [--param NAME=VALUE ...]\n";
  int exit = kExitOk;
  auto command = ParseCommand(argv, specs, usage_head, &exit);
  if (!command) return exit;
  const auto& [a, usage] = *command;
  if (!a.Has("data") || !a.Has("out")) return UsageError("--data and --out are required", usage);
  auto params = ParamsFrom(a);
  if (!params.ok()) return UsageError(std::string(params.status().message()), usage);
  auto threads = a.GetInt("threads", 0);
  if (!threads.ok() || *threads < 0 || *threads > 1024) return UsageError("--threads must be in [0, 1024]", usage);
  auto data = LoadDataset(a.Get("data"), LoadOptionsFrom(a));
  if (!data.ok()) return Fail(data.status());
  TrainOptions options;
  options.threads = static_cast<int>(*threads);
  if (!a.Has("quiet")) {
    options.on_epoch = [](const EpochProgress& p) {
      std::fprintf(stderr, "epoch %d/%d  loss %.5f (bce %.5f, rec %.5f)  val %.5f  %.1fs\n",
                   p.epoch, p.max_epochs, p.train_loss, p.classification_loss,
                   p.reconstruction_loss, p.validation_loss, p.elapsed_seconds);
    };
  }
  auto model = TrainModel(*data, *params, options);
  if (!model.ok()) return Fail(model.status());
  if (absl::Status s = SaveModelFile(*model, a.Get("out")); !s.ok()) return Fail(s);
  const auto& sum = model->summary();
  const auto& st = model->score_stats();
  nlohmann::json j = {{"model", a.Get("out")},
                      {"rows", sum.rows()},
                      {"features", sum.features()},
                      {"known_anomalies", sum.known_anomalies()},
                      {"preset", model->params().preset()},
                      {"fit_seconds", sum.seconds()},
                      {"epochs", sum.epochs_run()},
                      {"best_epoch", sum.best_epoch()},
                      {"best_val_loss", sum.best_validation_loss()},
                      {"alpha", st.alpha()},
                      {"q3_noise", st.q3_noise()},
                      {"q3_reconstruction", st.q3_reconstruction()},
                      {"threshold", st.threshold()}};
  if (a.Get("format", "json") == "table") {
    for (auto it = j.begin(); it != j.end(); ++it)
      std::printf("%-18s %s\n", it.key().c_str(), it.value().dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  return kExitOk;
}

int RunEval(const Argv& argv) {
  const std::vector<FlagSpec> specs = {
      {"data", true, "labelled data: .npz with X and y, or CSV with --label-column"},
      {"seeds", true, "comma-separated seeds (default 1,2,3)"},
      {"max-rows", true, "rows kept before the split (default 10000, the protocol's; 0 = every row)"},
      {"labeled-anomalies", true,
       "share in [0, 1] of the training split's anomalies that keep label 1 (at least one when above 0;"
       " default 0, unsupervised)"},
      kParam, kThreads, kLabel, kQuiet,
      {"format", true, "json (default) or table"}};
  const char* const usage_head =
      "usage: anorand eval --data FILE.npz [--seeds 1,2,3] [--param NAME=VALUE ...]\n"
      "Runs the ADBench protocol (docs/ACCURACY.md): resample, stratified 70/30 split,\n"
      "unsupervised fit on the train part, AUC-ROC and AUC-PR on the test part.\n";
  int exit = kExitOk;
  auto command = ParseCommand(argv, specs, usage_head, &exit);
  if (!command) return exit;
  const auto& [a, usage] = *command;
  if (!a.Has("data")) return UsageError("--data is required", usage);
  auto params = ParamsFrom(a);
  if (!params.ok()) return UsageError(std::string(params.status().message()), usage);
  std::vector<uint64_t> seeds;
  for (absl::string_view s : absl::StrSplit(a.Get("seeds", "1,2,3"), ',', absl::SkipWhitespace())) {
    uint64_t v;
    if (!absl::SimpleAtoi(s, &v)) return UsageError("--seeds must be a comma list of integers", usage);
    seeds.push_back(v);
  }
  if (seeds.empty()) return UsageError("--seeds is empty", usage);
  auto threads = a.GetInt("threads", 0);
  if (!threads.ok() || *threads < 0 || *threads > 1024) return UsageError("--threads must be in [0, 1024]", usage);
  auto max_rows = a.GetInt("max-rows", kProtocolMaxRows);
  if (!max_rows.ok() || *max_rows < 0) {
    return UsageError("--max-rows must be 0 (every row) or a positive row count", usage);
  }
  auto labeled_fraction = a.GetDouble("labeled-anomalies", 0);
  if (!labeled_fraction.ok() || !(*labeled_fraction >= 0 && *labeled_fraction <= 1)) {
    return UsageError("--labeled-anomalies must be a fraction in [0, 1]", usage);
  }
  LoadOptions lo = LoadOptionsFrom(a);
  lo.require_labels = true;
  auto data = LoadDataset(a.Get("data"), lo);
  if (!data.ok()) return Fail(data.status());
  TrainOptions options;
  options.threads = static_cast<int>(*threads);
  nlohmann::json per_seed = nlohmann::json::array();
  double roc = 0, pr = 0;
  for (uint64_t seed : seeds) {
    auto r = EvaluateSeed(*data, *params, seed, options, *max_rows, *labeled_fraction);
    if (!r.ok()) return Fail(r.status());
    roc += r->auc_roc;
    pr += r->auc_pr;
    per_seed.push_back({{"seed", seed},
                        {"train_rows", r->train_rows},
                        {"test_rows", r->test_rows},
                        {"labeled_anomalies", r->labeled_anomalies},
                        {"auc_roc", r->auc_roc},
                        {"auc_pr", r->auc_pr},
                        {"auc_roc_noise", r->auc_roc_noise},
                        {"auc_roc_reconstruction", r->auc_roc_reconstruction},
                        {"auc_pr_noise", r->auc_pr_noise},
                        {"auc_pr_reconstruction", r->auc_pr_reconstruction},
                        {"alpha", r->alpha},
                        {"epochs", r->epochs},
                        {"fit_seconds", r->fit_seconds}});
    if (!a.Has("quiet")) {
      std::fprintf(stderr, "seed %llu: auc_roc %.4f auc_pr %.4f (%.1fs)\n",
                   static_cast<unsigned long long>(seed), r->auc_roc, r->auc_pr, r->fit_seconds);
    }
  }
  nlohmann::json j = {{"data", a.Get("data")},
                      {"auc_roc", roc / seeds.size()},
                      {"auc_pr", pr / seeds.size()},
                      {"labeled_anomaly_fraction", *labeled_fraction},
                      {"seeds", per_seed}};
  if (a.Get("format", "json") == "table") {
    std::printf("%-6s %-8s %-8s %s\n", "seed", "auc_roc", "auc_pr", "fit_s");
    for (const auto& s : per_seed) {
      std::printf("%-6llu %-8.4f %-8.4f %.2f\n", s["seed"].get<unsigned long long>(),
                  s["auc_roc"].get<double>(), s["auc_pr"].get<double>(),
                  s["fit_seconds"].get<double>());
    }
    std::printf("%-6s %-8.4f %-8.4f\n", "mean", j["auc_roc"].get<double>(), j["auc_pr"].get<double>());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  return kExitOk;
}

int RunScoreLocal(const Argv& argv) {
  const std::vector<FlagSpec> specs = {
      {"model", true, "model file written by `anorand fit` or exported"},
      {"data", true, "records: .csv, .tsv, .npy or .npz, or - for CSV on stdin"},
      kLabel,
      {"batch", true, "records scored at a time (default 4096)"},
      {"explain", false, "add per-feature contributions"},
      {"format", true, "csv (default) or jsonl"}};
  const char* const usage_head =
      "usage: anorand score-local --model MODEL --data FILE [--format csv|jsonl]\n"
      "Scores the records in batches (a CSV file or stdin is streamed: memory holds one\n"
      "batch and one line) and prints a header line, then one line per record.\n";
  int exit = kExitOk;
  auto command = ParseCommand(argv, specs, usage_head, &exit);
  if (!command) return exit;
  const auto& [a, usage] = *command;
  if (!a.Has("model") || !a.Has("data")) return UsageError("--model and --data are required", usage);
  auto format = ParseResultFormat(a.Get("format", "csv"));
  if (!format.ok()) return UsageError(std::string(format.status().message()), usage);
  auto batch = a.GetInt("batch", 4096);
  if (!batch.ok() || *batch < 1 || *batch > 1 << 20) {
    return UsageError("--batch must be in [1, 1048576]", usage);
  }
  auto file = LoadModelFile(a.Get("model"));
  if (!file.ok()) return Fail(file.status());
  auto model = CompiledModel::Create(*std::move(file));
  if (!model.ok()) return Fail(model.status());
  const std::string data_path = a.Get("data");
  std::unique_ptr<DatasetBatches> input;
  if (data_path == "-") {
    input = DatasetBatches::FromCsvStream(STDIN_FILENO, "stdin", LoadOptionsFrom(a));
  } else {
    auto opened = DatasetBatches::Open(data_path, LoadOptionsFrom(a));
    if (!opened.ok()) return Fail(opened.status());
    input = *std::move(opened);
  }
  const int d = (*model)->input_features();
  const bool explain = a.Has("explain");
  std::vector<float> score, nd, rp, err, contrib;
  std::unique_ptr<bool[]> flag;
  int64_t first = 0;
  while (true) {
    auto data = input->Next(*batch, /*stop_when_idle=*/true);
    if (!data.ok()) return Fail(data.status());
    const int64_t n = data->rows;
    if (n == 0) break;
    if (data->cols != d) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          data_path == "-" ? "stdin" : data_path, " has ", data->cols,
          " features; the model takes ", d)));
    }
    if (first == 0 && *format == ResultFormat::kCsv) {
      const std::string header = CsvHeader(explain, d);
      std::fwrite(header.data(), 1, header.size(), stdout);
    }
    score.resize(n), nd.resize(n), rp.resize(n), err.resize(n);
    flag.reset(new bool[n]);
    ScoreOutputs out{score.data(), flag.get(), nd.data(), rp.data(), err.data(), nullptr};
    if (explain) {
      contrib.resize(n * d);
      out.contributions = contrib.data();
    }
    if (absl::Status s = (*model)->Score(data->x.data(), n, out); !s.ok()) return Fail(s);
    ScoredRows rows;
    rows.first_index = first;
    rows.rows = n;
    rows.score = score.data();
    rows.is_anomaly = flag.get();
    rows.noise_probability = nd.data();
    rows.reconstruction_probability = rp.data();
    if (explain) {
      rows.contributions = contrib.data();
      rows.features = d;
    }
    PrintResults(rows, *format);
    first += n;
  }
  return kExitOk;
}

int RunDemoData(const Argv& argv) {
  const std::vector<FlagSpec> specs = {
      {"out", true, "CSV file to write"},
      {"rows", true, "rows (default 10000)"},
      {"features", true, "features (default 20)"},
      {"anomaly-fraction", true, "share of anomalies (default 0.03)"},
      {"shift", true, "move every feature by this many of its standard deviations (drift; "
                      "default 0)"},
      {"anomaly-size", true, "K > 0: every anomaly of one subtle kind, the first quarter of the "
                             "features + K standard deviations (default 0: 4-8 sd, random "
                             "features)"},
      kSeed,
      {"labels", false, "add a 'label' column (1 = anomaly)"}};
  const char* const usage_head =
      "usage: anorand demo-data --out FILE.csv [--rows N] [--features D] [--seed S] [--shift K]\n"
      "       [--anomaly-size K] [--labels]\n"
      "Writes seeded synthetic tabular data with a few percent of anomalies.\n";
  int exit = kExitOk;
  auto command = ParseCommand(argv, specs, usage_head, &exit);
  if (!command) return exit;
  const auto& [a, usage] = *command;
  if (!a.Has("out")) return UsageError("--out is required", usage);
  SyntheticOptions o;
  auto rows = a.GetInt("rows", o.rows);
  auto cols = a.GetInt("features", o.cols);
  auto frac = a.GetDouble("anomaly-fraction", o.anomaly_fraction);
  auto seed = a.GetInt("seed", 1);
  auto shift = a.GetDouble("shift", 0);
  auto size = a.GetDouble("anomaly-size", 0);
  if (!rows.ok() || *rows < 10 || *rows > 100000000) return UsageError("--rows must be in [10, 1e8]", usage);
  if (!cols.ok() || *cols < 1 || *cols > 10000) return UsageError("--features must be in [1, 10000]", usage);
  if (!frac.ok() || *frac < 0 || *frac >= 0.5) return UsageError("--anomaly-fraction must be in [0, 0.5)", usage);
  if (!seed.ok() || *seed < 0) return UsageError("--seed must be a non-negative integer", usage);
  if (!shift.ok() || !(*shift >= -1000 && *shift <= 1000)) {
    return UsageError("--shift must be a number in [-1000, 1000] (standard deviations)", usage);
  }
  if (!size.ok() || !(*size >= 0 && *size <= 100)) {
    return UsageError("--anomaly-size must be a number in [0, 100] (standard deviations)", usage);
  }
  o.rows = *rows;
  o.shift = *shift;
  o.anomaly_size = *size;
  o.cols = static_cast<int>(*cols);
  o.anomaly_fraction = *frac;
  o.seed = static_cast<uint64_t>(*seed);
  Dataset data = MakeSyntheticData(o);
  if (absl::Status s = WriteCsv(data, a.Get("out"), a.Has("labels")); !s.ok()) return Fail(s);
  std::fprintf(stderr, "wrote %lld rows x %lld features to %s\n", static_cast<long long>(data.rows),
               static_cast<long long>(data.cols), a.Get("out").c_str());
  return kExitOk;
}

}  // namespace anorand::cli
