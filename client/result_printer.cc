#include "client/result_printer.h"

#include <cstdio>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace anorand::cli {

absl::StatusOr<ResultFormat> ParseResultFormat(const std::string& name) {
  if (name == "csv") return ResultFormat::kCsv;
  if (name == "jsonl") return ResultFormat::kJsonl;
  return absl::InvalidArgumentError("--format must be csv or jsonl");
}

ScoredRows RowsOf(const v1::ScoreResponse& r, int64_t first_index, int features) {
  ScoredRows rows;
  rows.first_index = first_index;
  rows.rows = r.scores_size();
  rows.score = r.scores().data();
  rows.is_anomaly = r.is_anomaly().data();
  rows.noise_probability = r.noise_probability().data();
  rows.reconstruction_probability = r.reconstruction_probability().data();
  if (features > 0 && r.contributions_size() == rows.rows * features) {
    rows.contributions = r.contributions().data();
    rows.features = features;
  }
  rows.model_version = r.model_version();
  return rows;
}

std::string CsvHeader(bool explain, int features) {
  std::string out = "index,score,is_anomaly,noise_probability,reconstruction_probability";
  if (explain) {
    for (int c = 0; c < features; ++c) absl::StrAppend(&out, ",contribution_", c);
  }
  return out + "\n";
}

void PrintResults(const ScoredRows& rows, ResultFormat format) {
  std::string out;
  const int d = rows.contributions != nullptr ? rows.features : 0;
  for (int64_t i = 0; i < rows.rows; ++i) {
    if (format == ResultFormat::kCsv) {
      absl::StrAppend(&out, rows.first_index + i, ",", rows.score[i], ",",
                      rows.is_anomaly[i] ? 1 : 0, ",", rows.noise_probability[i], ",",
                      rows.reconstruction_probability[i]);
      for (int c = 0; c < d; ++c) absl::StrAppend(&out, ",", rows.contributions[i * d + c]);
      out += '\n';
    } else {
      nlohmann::json j = {{"index", rows.first_index + i},
                          {"score", rows.score[i]},
                          {"is_anomaly", rows.is_anomaly[i]},
                          {"noise_probability", rows.noise_probability[i]},
                          {"reconstruction_probability", rows.reconstruction_probability[i]}};
      if (rows.model_version > 0) j["model_version"] = rows.model_version;
      if (d > 0) {
        j["contributions"] = std::vector<float>(rows.contributions + i * d,
                                                rows.contributions + (i + 1) * d);
      }
      absl::StrAppend(&out, j.dump(), "\n");
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace anorand::cli
