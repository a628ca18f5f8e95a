#include "model/nearest_neighbours.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "model/rng.h"

namespace anorand {
namespace {

// Every pair compared: the definition the search must reproduce.
std::vector<int64_t> Reference(const std::vector<float>& x, int64_t rows, int cols, int k) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < rows; ++i) {
    std::vector<std::pair<double, int64_t>> dist;
    for (int64_t j = 0; j < rows; ++j) {
      if (j == i) continue;
      double d = 0;
      for (int c = 0; c < cols; ++c)
        d += (x[i * cols + c] - x[j * cols + c]) * double(x[i * cols + c] - x[j * cols + c]);
      dist.emplace_back(d, j);
    }
    std::sort(dist.begin(), dist.end());
    for (int t = 0; t < k; ++t) out.push_back(dist[t].second);
  }
  return out;
}

// Gaussian rows, a fifth of them copies of earlier rows (ties at distance
// 0) and some on a coarse grid (ties at equal non-zero distances).
std::vector<float> RowsWithTies(int64_t rows, int cols, uint64_t seed) {
  Rng g(seed);
  std::vector<float> x(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    const double kind = g.Uniform();
    for (int c = 0; c < cols; ++c) {
      if (kind < 0.2 && r > 0) {
        x[r * cols + c] = x[static_cast<int64_t>(g.Below(r)) * cols + c];
      } else if (kind < 0.4) {
        x[r * cols + c] = static_cast<float>(g.Below(3));
      } else {
        x[r * cols + c] = static_cast<float>(g.Normal());
      }
    }
  }
  return x;
}

class NearestNeighboursTest : public ::testing::TestWithParam<int> {};

TEST_P(NearestNeighboursTest, MatchesEveryPairComparedIncludingTies) {
  const int cols = GetParam();
  const int64_t rows = 700;
  for (int k : {1, 5}) {
    const std::vector<float> x = RowsWithTies(rows, cols, 10 + cols + k);
    auto nn = NearestNeighbours(x.data(), rows, cols, k, {});
    ASSERT_TRUE(nn.ok()) << nn.status();
    EXPECT_EQ(nn->k, k);
    EXPECT_EQ(nn->index, Reference(x, rows, cols, k)) << "cols " << cols << " k " << k;
  }
}

// 3 and 20 columns use the k-d tree, 40 compares every pair.
INSTANTIATE_TEST_SUITE_P(NarrowAndWide, NearestNeighboursTest,
                         ::testing::Values(1, 3, 20, kKdTreeMaxCols + 8));

TEST(NearestNeighboursTest, ManyIdenticalRowsTieToTheLowestIndices) {
  const int cols = 4;
  const int64_t rows = 200;
  std::vector<float> x(rows * cols, 1.5f);
  auto nn = NearestNeighbours(x.data(), rows, cols, 5, {});
  ASSERT_TRUE(nn.ok());
  EXPECT_EQ(std::vector<int64_t>(nn->index.begin(), nn->index.begin() + 5),
            (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(std::vector<int64_t>(nn->index.begin() + 5 * 150, nn->index.begin() + 5 * 151),
            (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(NearestNeighboursTest, FewerRowsThanKGivesEveryOtherRow) {
  const std::vector<float> x = {0, 1, 3};
  auto nn = NearestNeighbours(x.data(), 3, 1, 5, {});
  ASSERT_TRUE(nn.ok());
  EXPECT_EQ(nn->k, 2);
  EXPECT_EQ(nn->index, (std::vector<int64_t>{1, 2, 0, 2, 1, 0}));
  auto one = NearestNeighbours(x.data(), 1, 1, 5, {});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->k, 0);
  EXPECT_TRUE(one->index.empty());
}

TEST(NearestNeighboursTest, BadShapeIsInvalidArgument) {
  const std::vector<float> x = {0, 1};
  EXPECT_EQ(NearestNeighbours(x.data(), 2, 0, 5, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NearestNeighbours(x.data(), 2, 1, 0, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The callback turns true only after the search has started, so CANCELLED
// proves it is polled during the search and not just before it.
TEST_P(NearestNeighboursTest, CancelDuringTheSearchReturnsCancelled) {
  const int cols = GetParam();
  const int64_t rows = 20000;
  const std::vector<float> x = RowsWithTies(rows, cols, 3);
  int calls = 0;
  auto nn = NearestNeighbours(x.data(), rows, cols, 5, [&] { return ++calls > 3; });
  EXPECT_EQ(nn.status().code(), absl::StatusCode::kCancelled) << nn.status();
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace anorand
