// The independent PyTorch implementation's trained network (../shared/
// golden) imported into this project's model format: the compiled plan must
// reproduce its y_hat, y0_hat and score to 1e-5.
#include <cmath>

#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/data/npy_reader.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using Arrays = std::map<std::string, NpyArray>;

// Test-only importer of the golden layout (PyTorch state_dict names).
void Dense(const Arrays& a, const std::string& prefix, v1::DenseLayer* out) {
  const NpyArray& w = a.at(prefix + ".weight");
  out->set_out_features(static_cast<int>(w.shape[0]));
  out->set_in_features(static_cast<int>(w.shape[1]));
  for (double v : w.data) out->add_weight(static_cast<float>(v));
  for (double v : a.at(prefix + ".bias").data) out->add_bias(static_cast<float>(v));
}

void Hidden(const Arrays& a, const std::string& block, int dense_index,
            google::protobuf::RepeatedPtrField<v1::HiddenLayer>* out) {
  v1::HiddenLayer* h = out->Add();
  Dense(a, block + "." + std::to_string(dense_index), h->mutable_dense());
  const std::string bn = block + "." + std::to_string(dense_index + 1);
  auto* b = h->mutable_batch_norm();
  for (double v : a.at(bn + ".weight").data) b->add_gamma(static_cast<float>(v));
  for (double v : a.at(bn + ".bias").data) b->add_beta(static_cast<float>(v));
  for (double v : a.at(bn + ".running_mean").data) b->add_running_mean(static_cast<float>(v));
  for (double v : a.at(bn + ".running_var").data) b->add_running_var(static_cast<float>(v));
  b->set_eps(1e-5f);
}

v1::ModelFile ImportGolden(const Arrays& a) {
  v1::ModelFile m;
  v1::Network* net = m.mutable_network();
  net->set_input_features(static_cast<int>(a.at("nd.0.weight").shape[1]));
  for (int i : {0, 4, 8}) Hidden(a, "nd", i, net->mutable_noise_detector());
  for (int i : {0, 4, 8}) Hidden(a, "enc", i, net->mutable_encoder());
  for (int i : {0, 4}) Hidden(a, "dec", i, net->mutable_decoder());
  Dense(a, "nd_out", net->mutable_noise_head());
  Dense(a, "dec_out", net->mutable_reconstruction());
  v1::Normalizer* n = m.mutable_normalizer();
  n->set_kind(v1::Normalizer::KIND_Z_SCORE);
  for (double v : a.at("scaler_mean").data) n->add_offset(static_cast<float>(v));
  for (double v : a.at("scaler_scale").data) n->add_scale(static_cast<float>(v));
  v1::ScoreStats* s = m.mutable_score_stats();
  s->set_rule(v1::SCORE_RULE_PAPER);
  s->set_alpha(a.at("alpha").data[0]);
  s->set_q3_noise(a.at("q3_nd").data[0]);
  s->set_q3_reconstruction(a.at("q3_ae").data[0]);
  s->set_threshold(0.5);
  return m;
}

TEST(GoldenTest, CompiledPlanReproducesTheIndependentImplementation) {
  ANORAND_REQUIRE_SHARED(dir, "golden");
  auto model = ReadNpz(dir + "/cardio_model.npz");
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto scores = ReadNpz(dir + "/cardio_scores.npz");
  ASSERT_TRUE(scores.ok()) << scores.status().message();
  auto compiled = CompiledModel::Create(ImportGolden(*model));
  ASSERT_TRUE(compiled.ok()) << compiled.status().message();

  const NpyArray& x = scores->at("X_test_raw");
  const int64_t rows = x.shape[0];
  const int d = static_cast<int>(x.shape[1]);
  ASSERT_EQ(d, (*compiled)->input_features());
  std::vector<float> xf(x.data.begin(), x.data.end());
  std::vector<float> score(rows), yhat(rows), y0(rows);
  ScoreOutputs out;
  out.score = score.data();
  out.noise_probability = yhat.data();
  out.reconstruction_probability = y0.data();
  // Run whole, and record by record (the one-row shape class).
  ASSERT_TRUE((*compiled)->Score(xf.data(), rows, out).ok());
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_NEAR(yhat[r], scores->at("y_hat").data[r], 1e-5) << "row " << r;
    EXPECT_NEAR(y0[r], scores->at("y0_hat").data[r], 1e-5) << "row " << r;
    EXPECT_NEAR(score[r], scores->at("score").data[r], 1e-5) << "row " << r;
    worst = std::max(worst, std::abs(score[r] - scores->at("score").data[r]));
  }
  for (int64_t r = 0; r < rows; r += 37) {
    float one = 0;
    ScoreOutputs single;
    single.score = &one;
    ASSERT_TRUE((*compiled)->Score(xf.data() + r * d, 1, single).ok());
    EXPECT_NEAR(one, scores->at("score").data[r], 1e-5) << "row " << r;
  }
  RecordProperty("max_abs_score_error", std::to_string(worst));
}

}  // namespace
}  // namespace anorand::test_support
