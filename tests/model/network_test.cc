// The training graph: finite-difference gradient checks of every layer type
// and of the whole loss, the compiled plan against eval mode, and one seed
// giving one model bit for bit.
#include <atomic>
#include <cmath>
#include <thread>

#include "gtest/gtest.h"
#include "model/inference_plan.h"
#include "model/network.h"
#include "model/params.h"
#include "model/trainer.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

constexpr int kD = 5;

v1::TrainingParams SmallParams(double dropout, bool stop_grad, double w = 0.4) {
  v1::TrainingParams p;
  p.set_dropout(dropout);
  p.set_stop_reconstruction_gradient(stop_grad);
  p.set_loss_weight(w);
  for (int w : {6, 4}) p.add_noise_detector_widths(w);
  for (int w : {7, 3}) p.add_encoder_widths(w);
  for (int w : {5, 6}) p.add_decoder_widths(w);
  auto r = ResolveParams(p, kD);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return *r;
}

struct Batch {
  std::vector<float> x, y;
  int rows;
};

Batch MakeBatch(int rows, uint64_t seed) {
  Rng rng(seed);
  Batch b{{}, {}, rows};
  for (int i = 0; i < rows * kD; ++i) b.x.push_back(static_cast<float>(rng.Normal()));
  for (int i = 0; i < rows; ++i) b.y.push_back(i % 3 == 0 ? 1.0f : 0.0f);
  return b;
}

// Names of the parameter tensors in TrainingNetwork::Params() order.
std::vector<std::string> ParamNames() {
  std::vector<std::string> n;
  for (const char* block : {"nd", "enc", "dec"})
    for (int l = 0; l < 2; ++l)
      for (const char* t : {"dense.weight", "dense.bias", "bn.gamma", "bn.beta"})
        n.push_back(std::string(block) + std::to_string(l) + "." + t);
  for (const char* t : {"head.weight", "head.bias", "recon.weight", "recon.bias"}) n.push_back(t);
  return n;
}

void CheckGradients(bool stop_grad, double w) {
  const v1::TrainingParams p = SmallParams(/*dropout=*/0.0, stop_grad, w);
  Rng init(3);
  TrainingNetwork net(p, kD, 16, init);
  const Batch b = MakeBatch(12, 5);
  Rng unused(0);
  net.ForwardBackward(b.x.data(), b.y.data(), b.rows, unused);
  std::vector<Param*> params = net.Params();
  std::vector<std::vector<float>> analytic;
  for (Param* q : params) analytic.push_back(q->grad);
  const auto names = ParamNames();
  ASSERT_EQ(names.size(), params.size());
  Rng pick(11);
  auto loss_at = [&](Param* q, size_t i, float v) {
    const float orig = q->value[i];
    q->value[i] = v;
    const double l = net.ForwardBackward(b.x.data(), b.y.data(), b.rows, unused).total;
    q->value[i] = orig;
    return l;
  };
  for (size_t t = 0; t < params.size(); ++t) {
    Param* q = params[t];
    int checked = 0;
    for (int k = 0; k < 12 && checked < 4; ++k) {
      const size_t i = pick.Below(q->value.size());
      const float o = q->value[i];
      // Central differences at two steps: where they disagree, a ReLU kink
      // lies within the step and the entry is skipped (not a gradient error).
      const float h1 = 1e-3f, h2 = 2.5e-4f;
      const double fd1 = (loss_at(q, i, o + h1) - loss_at(q, i, o - h1)) / (2.0 * h1);
      const double fd2 = (loss_at(q, i, o + h2) - loss_at(q, i, o - h2)) / (2.0 * h2);
      if (std::abs(fd1 - fd2) > 1e-3 + 0.02 * std::abs(fd1)) continue;
      const double an = analytic[t][i];
      EXPECT_NEAR(an, fd1, 1e-3 + 2e-2 * std::abs(fd1))
          << names[t] << "[" << i << "] stop_grad=" << stop_grad;
      ++checked;
    }
    EXPECT_GE(checked, 2) << names[t] << ": too many entries sat on a kink";
  }
}

TEST(NetworkTest, GradientsMatchFiniteDifferencesForEveryLayer) { CheckGradients(false, 0.4); }
TEST(NetworkTest, GradientsMatchForClassificationAlone) { CheckGradients(false, 1.0); }
TEST(NetworkTest, GradientsMatchForReconstructionAlone) { CheckGradients(false, 0.0); }

TEST(NetworkTest, StoppedGradientKeepsReconstructionOutOfTheNoiseBlock) {
  // With w = 0 the loss is reconstruction only: the noise-detection block's
  // first layer then gets gradient only when the gradient is not stopped.
  for (bool stop : {false, true}) {
    v1::TrainingParams p = SmallParams(0.0, stop);
    p.set_loss_weight(0.0);
    Rng init(3);
    TrainingNetwork net(p, kD, 16, init);
    const Batch b = MakeBatch(12, 5);
    Rng unused(0);
    net.ForwardBackward(b.x.data(), b.y.data(), b.rows, unused);
    double norm = 0;
    for (float g : net.Params()[0]->grad) norm += std::abs(g);
    if (stop) {
      EXPECT_EQ(norm, 0.0);
    } else {
      EXPECT_GT(norm, 0.0);
    }
  }
}

TEST(NetworkTest, CompiledPlanEqualsEvalModeForEveryShapeClass) {
  const v1::TrainingParams p = SmallParams(0.2, false);
  Rng init(3);
  TrainingNetwork net(p, kD, 512, init);
  // A few training steps so that batch statistics are not the defaults.
  Rng rng(1);
  for (int s = 0; s < 5; ++s) {
    const Batch b = MakeBatch(64, 100 + s);
    net.ForwardBackward(b.x.data(), b.y.data(), b.rows, rng);
    for (Param* q : net.Params())
      for (size_t i = 0; i < q->value.size(); ++i) q->value[i] -= 0.05f * q->grad[i];
  }
  auto plan = InferencePlan::Compile(net.ToProto());
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  for (int rows : {1, 2, 7, 255, 256, 257, 513}) {
    const Batch b = MakeBatch(rows, rows);
    std::vector<float> y_net(rows), x_net(rows * kD), y_plan(rows), x_plan(rows * kD);
    for (int start = 0; start < rows; start += 512) {
      const int n = std::min(512, rows - start);
      net.ForwardEval(b.x.data() + start * kD, n, y_net.data() + start, x_net.data() + start * kD);
    }
    ASSERT_TRUE((*plan)->Run(b.x.data(), rows, y_plan.data(), x_plan.data()).ok());
    for (int i = 0; i < rows; ++i) {
      EXPECT_NEAR(y_plan[i], y_net[i], 1e-5 * std::max(1.0f, std::abs(y_net[i]))) << rows;
    }
    for (int i = 0; i < rows * kD; ++i) {
      EXPECT_NEAR(x_plan[i], x_net[i], 1e-5 * std::max(1.0f, std::abs(x_net[i]))) << rows;
    }
  }
}

TEST(NetworkTest, PlanIsSafeFromManyThreads) {
  const v1::TrainingParams p = SmallParams(0.0, false);
  Rng init(3);
  TrainingNetwork net(p, kD, 300, init);
  auto plan = InferencePlan::Compile(net.ToProto());
  ASSERT_TRUE(plan.ok());
  const Batch b = MakeBatch(300, 9);
  std::vector<float> y_ref(300), x_ref(300 * kD);
  ASSERT_TRUE((*plan)->Run(b.x.data(), 300, y_ref.data(), x_ref.data()).ok());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int it = 0; it < 50; ++it) {
        const int rows = 1 + (t * 50 + it) % 300;
        std::vector<float> y(rows), x(rows * kD);
        if (!(*plan)->Run(b.x.data(), rows, y.data(), x.data()).ok()) ++mismatches;
        for (int i = 0; i < rows; ++i)
          if (std::abs(y[i] - y_ref[i]) > 1e-5f) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(NetworkTest, OneSeedGivesOneModelBitForBit) {
  Dataset d = DemoData(600, 7, 3);
  d.labels.clear();
  v1::TrainingParams p;
  p.set_max_epochs(4);
  p.set_min_steps(0);
  p.set_seed(42);
  auto a = TrainModel(d, p);
  auto b = TrainModel(d, p);
  p.set_seed(43);
  auto c = TrainModel(d, p);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  std::string na, nb, nc, sa, sb;
  a->network().SerializeToString(&na);
  b->network().SerializeToString(&nb);
  c->network().SerializeToString(&nc);
  a->score_stats().SerializeToString(&sa);
  b->score_stats().SerializeToString(&sb);
  EXPECT_EQ(na, nb);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(na, nc);
}

}  // namespace
}  // namespace anorand::test_support
