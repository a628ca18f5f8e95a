#include "model/synthetic_labels.h"

#include <cmath>

#include "gtest/gtest.h"
#include "model/params.h"

namespace anorand {
namespace {

TEST(SyntheticLabelsTest, CountsFollowThePapersFractions) {
  const int n = 1000, d = 4;
  std::vector<float> x(n * d);
  Rng gen(1);
  for (float& v : x) v = static_cast<float>(gen.Normal());
  v1::TrainingParams user;
  user.set_preset("paper");
  auto p = ResolveParams(user, d);
  ASSERT_TRUE(p.ok());
  Rng rng(2);
  LabelledSet s = MakeSyntheticLabels(x.data(), n, d, *p, rng, {}).value();
  EXPECT_EQ(s.originals, 20);
  // (20 + syn) / (1000 + syn) = 0.05  =>  syn = 30 / 0.95 = 31.6 -> 32
  EXPECT_EQ(s.synthetic, 32);
  EXPECT_EQ(s.rows, n + 32);
  double positives = 0;
  for (float y : s.labels) positives += y;
  EXPECT_EQ(positives, 52);
  EXPECT_NEAR(positives / s.rows, 0.05, 0.001);
  // Originals keep their values (paper: no noise on X00).
  for (int i = 0; i < n * d; ++i) EXPECT_EQ(s.x[i], x[i]);
  // Synthetic rows differ from every original.
  for (int64_t r = n; r < s.rows; ++r) {
    bool same = false;
    for (int o = 0; o < n && !same; ++o) same = std::equal(&x[o * d], &x[o * d] + d, &s.x[r * d]);
    EXPECT_FALSE(same);
  }
}

TEST(SyntheticLabelsTest, NoiseOriginalsMovesTheSeedRows) {
  const int n = 500, d = 3;
  std::vector<float> x(n * d, 1.0f);
  for (int i = 0; i < n * d; i += 7) x[i] = 2.0f;
  v1::TrainingParams user;
  user.set_noise_originals(true);
  auto p = ResolveParams(user, d);
  ASSERT_TRUE(p.ok());
  Rng rng(2);
  LabelledSet s = MakeSyntheticLabels(x.data(), n, d, *p, rng, {}).value();
  int moved = 0;
  for (int r = 0; r < n; ++r)
    if (s.labels[r] == 1 && !std::equal(&x[r * d], &x[r * d] + d, &s.x[r * d])) ++moved;
  EXPECT_EQ(moved, s.originals);
}

TEST(SyntheticLabelsTest, TheNeighbourPoolShrinksOnWideRowsToBoundTheSearchsWork) {
  // Up to 20 features the pool is kMaxSmoteSeeds; wider rows get the largest
  // pool whose all-pairs search stays within kMaxSmoteDistanceTerms.
  for (int cols : {1, 6, 20}) EXPECT_EQ(SmotePoolSize(cols), kMaxSmoteSeeds) << cols;
  for (int cols : {21, 40, 1555, 100000}) {
    const double n = static_cast<double>(SmotePoolSize(cols));
    EXPECT_LT(n, kMaxSmoteSeeds) << cols;
    EXPECT_LE(n * n * cols, kMaxSmoteDistanceTerms) << cols;
    EXPECT_GT((n + 1) * (n + 1) * cols, kMaxSmoteDistanceTerms) << cols;
  }
  EXPECT_GE(SmotePoolSize(2'000'000'000), 1);
}

// The callback turns true after a few polls, inside the work (robust
// spreads, neighbour search, generation), so CANCELLED proves the
// generator polls while it runs.
TEST(SyntheticLabelsTest, CancelWhileMakingAnomaliesReturnsCancelled) {
  const int n = 20000, d = 6;
  std::vector<float> x(n * d);
  Rng gen(1);
  for (float& v : x) v = static_cast<float>(gen.Normal());
  v1::TrainingParams user;
  user.set_robust_noise(true);
  auto p = ResolveParams(user, d);
  ASSERT_TRUE(p.ok());
  for (int after : {0, 3, 8, 20}) {
    Rng rng(2);
    int calls = 0;
    auto s = MakeSyntheticLabels(x.data(), n, d, *p, rng, [&] { return ++calls > after; });
    EXPECT_EQ(s.status().code(), absl::StatusCode::kCancelled) << after << ": " << s.status();
    EXPECT_EQ(calls, after + 1);
  }
}

}  // namespace
}  // namespace anorand
