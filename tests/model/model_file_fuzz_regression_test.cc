// Regression inputs found by fuzzing (fuzz/, docs/RELIABILITY.md "Fuzzing"),
// kept in tests/data/regressions/: model files that are valid yet once
// crashed the process when scored. Every file must still load, so the
// tests keep testing what they were written for.
//
// The two NaN cases below were fixed in model/score_rule.cc: a record that
// overflows the forward pass scores 1 (most anomalous), never NaN.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/model_file.h"

namespace anorand::test_support {
namespace {

const std::string kDir = std::string(ANORAND_REGRESSIONS_DIR) + "/model_file";

std::shared_ptr<const CompiledModel> Compile(const std::string& name) {
  auto file = LoadModelFile(kDir + "/" + name);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto model = CompiledModel::Create(*file);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *model : nullptr;
}

// Scores `x` (rows x input_features) with every output on: either a clean
// refusal (INVALID_ARGUMENT) or scores in [0, 1].
void ExpectScoresOrRefuses(const CompiledModel& model, const std::vector<float>& x) {
  const int d = model.input_features();
  const int64_t rows = static_cast<int64_t>(x.size()) / d;
  std::vector<float> score(rows), noise(rows), recon(rows), error(rows), contributions(x.size());
  std::unique_ptr<bool[]> anomaly(new bool[rows]);
  ScoreOutputs out;
  out.score = score.data();
  out.is_anomaly = anomaly.get();
  out.noise_probability = noise.data();
  out.reconstruction_probability = recon.data();
  out.reconstruction_error = error.data();
  out.contributions = contributions.data();
  const absl::Status s = model.Score(x.data(), rows, out);
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    return;
  }
  for (float v : score) EXPECT_TRUE(v >= 0 && v <= 1) << v;
}

TEST(ModelFileFuzzRegression, EveryReproducerIsAValidModelFile) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    auto model = LoadModelFile(entry.path().string());
    EXPECT_TRUE(model.ok()) << model.status();
    ++files;
  }
  EXPECT_GE(files, 2);
}

// model_file_fuzzer: batch-norm betas up to 8e32 and a running variance of
// 1.6e-28, all finite, so the model validates; the forward pass overflows
// to inf - inf = NaN, and the calibrated rule's Surprisal() looked NaN up
// past the end of its quantile table (model/score_rule.cc).
TEST(ModelFileFuzzRegression, OverflowingWeightsScoreWithoutCrash) {
  auto model = Compile("nan_activations_calibrated.anorand");
  ASSERT_NE(model, nullptr);
  std::vector<float> x;
  for (float v : {0.5f, 0.0f, 1.0f, -1.0f, 100.0f}) x.resize(x.size() + model->input_features(), v);
  ExpectScoresOrRefuses(*model, x);
}

// score_request_fuzzer: the model its registry serves (trained on features
// of small range, so the normaliser divides by less than 1) and records of
// finite but extreme values; the same NaN reaches Surprisal() through the
// server's Score call, so one request aborted the server. The first record
// is the fuzzer's (tests/data/regressions/score_request/
// nan_error_one_record.pb), then every mix of +-3.4e38 and 0.
TEST(ModelFileFuzzRegression, ExtremeFiniteInputsScoreWithoutCrash) {
  auto model = Compile("small_range_calibrated_4_features.anorand");
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(model->input_features(), 4);
  std::vector<float> x = {-3.9614081e28f, -3.1690640e38f, 1.8101528e28f, 7.3786976e19f};
  const float values[] = {3.4e38f, -3.4e38f, 0.0f};
  for (float a : values)
    for (float b : values)
      for (float c : values)
        for (float d : values) x.insert(x.end(), {a, b, c, d});
  ExpectScoresOrRefuses(*model, x);
}

}  // namespace
}  // namespace anorand::test_support
