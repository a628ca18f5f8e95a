#include "model/data/synthetic_data.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/csv_reader.h"
#include "tests/data/test_fixtures.h"

namespace anorand {
namespace {

using ::testing::HasSubstr;

SyntheticOptions Small(uint64_t seed) {
  SyntheticOptions options;
  options.rows = 2000;
  options.cols = 12;
  options.seed = seed;
  return options;
}

bool SameBytes(const Dataset& a, const Dataset& b) {
  return a.rows == b.rows && a.cols == b.cols && a.labels == b.labels &&
         a.feature_names == b.feature_names && a.x.size() == b.x.size() &&
         std::memcmp(a.x.data(), b.x.data(), a.x.size() * sizeof(float)) == 0;
}

TEST(SyntheticDataTest, ShapeNamesAndLabels) {
  const Dataset data = MakeSyntheticData(Small(1));
  EXPECT_EQ(data.rows, 2000);
  EXPECT_EQ(data.cols, 12);
  ASSERT_EQ(data.x.size(), 2000u * 12u);
  ASSERT_EQ(data.feature_names.size(), 12u);
  EXPECT_EQ(data.feature_names.front(), "f0");
  EXPECT_EQ(data.feature_names.back(), "f11");
  ASSERT_EQ(data.labels.size(), 2000u);
  for (int label : data.labels) EXPECT_TRUE(label == 0 || label == 1);
  for (float v : data.x) ASSERT_TRUE(std::isfinite(v));
}

TEST(SyntheticDataTest, DefaultOptions) {
  const Dataset data = MakeSyntheticData({});
  EXPECT_EQ(data.rows, 10000);
  EXPECT_EQ(data.cols, 20);
  int anomalies = 0;
  for (int label : data.labels) anomalies += label;
  EXPECT_EQ(anomalies, 300);
}

TEST(SyntheticDataTest, DeterministicForSeed) {
  EXPECT_TRUE(
      SameBytes(MakeSyntheticData(Small(42)), MakeSyntheticData(Small(42))));
}

TEST(SyntheticDataTest, AnomalySizeMakesOneKindOfAnomalyInTheFirstQuarterOfTheFeatures) {
  SyntheticOptions o = Small(6);
  o.rows = 4000;
  o.cols = 8;
  o.anomaly_fraction = 0.1;
  o.anomaly_size = 1.5;
  const Dataset d = MakeSyntheticData(o);
  for (int64_t j = 0; j < d.cols; ++j) {
    double sum[2] = {0, 0}, sq[2] = {0, 0}, n[2] = {0, 0};
    for (int64_t r = 0; r < d.rows; ++r) {
      const double v = d.x[static_cast<size_t>(r * d.cols + j)];
      sum[d.labels[r]] += v;
      sq[d.labels[r]] += v * v;
      ++n[d.labels[r]];
    }
    const double sd = std::sqrt(sq[0] / n[0] - (sum[0] / n[0]) * (sum[0] / n[0]));
    const double moved = (sum[1] / n[1] - sum[0] / n[0]) / sd;
    // Features 0 and 1 (ceil(8 / 4)) move by 1.5 sd; the rest are normal.
    EXPECT_NEAR(moved, j < 2 ? 1.5 : 0.0, 0.3) << "feature " << j;
  }
}

TEST(SyntheticDataTest, ShiftMovesEveryFeatureByItsStandardDeviation) {
  const Dataset base = MakeSyntheticData(Small(4));
  SyntheticOptions shifted_options = Small(4);
  shifted_options.shift = 3;
  const Dataset shifted = MakeSyntheticData(shifted_options);
  ASSERT_EQ(shifted.x.size(), base.x.size());
  EXPECT_EQ(shifted.labels, base.labels);
  for (int64_t j = 0; j < base.cols; ++j) {
    // The same rows moved by one constant per feature: 3 sd of its normal rows.
    double sum = 0, sum_sq = 0, normal = 0;
    const double move = shifted.x[j] - base.x[j];
    for (int64_t r = 0; r < base.rows; ++r) {
      const size_t at = static_cast<size_t>(r * base.cols + j);
      EXPECT_NEAR(shifted.x[at] - base.x[at], move, 1e-3 * std::fabs(move) + 1e-4);
      if (base.labels[r]) continue;
      sum += base.x[at];
      sum_sq += double(base.x[at]) * base.x[at];
      ++normal;
    }
    const double sd = std::sqrt(sum_sq / normal - (sum / normal) * (sum / normal));
    EXPECT_NEAR(move / sd, 3.0, 0.3) << "feature " << j;
  }
  shifted_options.shift = std::nan("");
  EXPECT_TRUE(SameBytes(MakeSyntheticData(shifted_options), base));  // NaN: no shift
}

TEST(SyntheticDataTest, DifferentSeedsDiffer) {
  const Dataset a = MakeSyntheticData(Small(1));
  const Dataset b = MakeSyntheticData(Small(2));
  EXPECT_FALSE(SameBytes(a, b));
  EXPECT_NE(a.labels, b.labels);
}

// Pins the generator's output so that a change of algorithm, or a standard
// library that draws differently, is noticed.
TEST(SyntheticDataTest, GoldenFirstValues) {
  SyntheticOptions options;
  options.rows = 3;
  options.cols = 4;
  options.seed = 1;
  const Dataset data = MakeSyntheticData(options);
  const std::vector<float> golden = {-1.72415614f, 2.10980177f,  -5.65796661f,
                                     2.98577142f,  -3.85026908f, -0.499759614f,
                                     -3.20819879f, 2.1989162f,   -4.16658878f,
                                     -1.88769186f, -3.32220292f, 2.75302935f};
  ASSERT_EQ(data.x.size(), golden.size());
  for (size_t i = 0; i < golden.size(); ++i) {
    EXPECT_FLOAT_EQ(data.x[i], golden[i]) << "index " << i;
  }
}

TEST(SyntheticDataTest, AnomalyFraction) {
  for (double fraction : {0.0, 0.01, 0.03, 0.25}) {
    SyntheticOptions options = Small(3);
    options.anomaly_fraction = fraction;
    const Dataset data = MakeSyntheticData(options);
    int anomalies = 0;
    for (int label : data.labels) anomalies += label;
    EXPECT_NEAR(anomalies, fraction * options.rows, 1.0) << fraction;
  }
}

TEST(SyntheticDataTest, AnomaliesInterleaved) {
  const Dataset data = MakeSyntheticData(Small(4));
  int64_t first = -1;
  int64_t last = -1;
  for (int64_t r = 0; r < data.rows; ++r) {
    if (data.labels[r] == 0) continue;
    if (first < 0) first = r;
    last = r;
  }
  EXPECT_LT(first, data.rows / 4);
  EXPECT_GT(last, 3 * data.rows / 4);
}

// Per-feature z-scores against the normal rows: anomalies have at least one
// extreme feature, normal rows rarely do.
TEST(SyntheticDataTest, AnomaliesAreFarFromNormalRows) {
  const Dataset data = MakeSyntheticData(Small(5));
  std::vector<double> mean(data.cols, 0.0), var(data.cols, 0.0);
  int64_t normals = 0;
  for (int64_t r = 0; r < data.rows; ++r) {
    if (data.labels[r] != 0) continue;
    ++normals;
    for (int64_t j = 0; j < data.cols; ++j) mean[j] += data.row(r)[j];
  }
  for (double& m : mean) m /= normals;
  for (int64_t r = 0; r < data.rows; ++r) {
    if (data.labels[r] != 0) continue;
    for (int64_t j = 0; j < data.cols; ++j) {
      const double d = data.row(r)[j] - mean[j];
      var[j] += d * d / normals;
    }
  }
  int extreme_normals = 0, extreme_anomalies = 0, anomalies = 0;
  for (int64_t r = 0; r < data.rows; ++r) {
    double max_z = 0.0;
    for (int64_t j = 0; j < data.cols; ++j) {
      max_z = std::max(max_z,
                       std::fabs(data.row(r)[j] - mean[j]) / std::sqrt(var[j]));
    }
    const bool extreme = max_z > 3.5;
    if (data.labels[r] == 1) {
      ++anomalies;
      extreme_anomalies += extreme;
    } else {
      extreme_normals += extreme;
    }
  }
  EXPECT_GT(extreme_anomalies, 0.8 * anomalies);
  EXPECT_LT(extreme_normals, 0.02 * normals);
}

// Correlation matrix of the normal rows.
std::vector<double> NormalCorrelation(const Dataset& data) {
  const int64_t d = data.cols;
  std::vector<double> mean(d, 0.0), cov(d * d, 0.0);
  int64_t n = 0;
  for (int64_t r = 0; r < data.rows; ++r) {
    if (data.labels[r] != 0) continue;
    ++n;
    for (int64_t j = 0; j < d; ++j) mean[j] += data.row(r)[j];
  }
  for (double& m : mean) m /= n;
  for (int64_t r = 0; r < data.rows; ++r) {
    if (data.labels[r] != 0) continue;
    for (int64_t a = 0; a < d; ++a) {
      for (int64_t b = 0; b < d; ++b) {
        cov[a * d + b] +=
            (data.row(r)[a] - mean[a]) * (data.row(r)[b] - mean[b]);
      }
    }
  }
  std::vector<double> corr(d * d);
  for (int64_t a = 0; a < d; ++a) {
    for (int64_t b = 0; b < d; ++b) {
      corr[a * d + b] =
          cov[a * d + b] / std::sqrt(cov[a * d + a] * cov[b * d + b]);
    }
  }
  return corr;
}

// Share of the total variance left after `steps` steps of pivoted Cholesky
// (the variance not explained by the best `steps` features, greedily).
double ResidualAfter(std::vector<double> m, int64_t d, int steps) {
  for (int s = 0; s < steps; ++s) {
    int64_t p = 0;
    for (int64_t i = 1; i < d; ++i) {
      if (m[i * d + i] > m[p * d + p]) p = i;
    }
    const double pivot = m[p * d + p];
    std::vector<double> col(d);
    for (int64_t i = 0; i < d; ++i) col[i] = m[i * d + p];
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j < d; ++j) m[i * d + j] -= col[i] * col[j] / pivot;
    }
  }
  double trace = 0.0;
  for (int64_t i = 0; i < d; ++i) trace += m[i * d + i];
  return trace / d;
}

// Normal rows lie close to an `informative`-dimensional subspace: a handful
// of features explain nearly all the variance of the others.
TEST(SyntheticDataTest, NormalRowsAreNearlyLowRank) {
  SyntheticOptions options = Small(6);
  options.informative = 4;
  const Dataset data = MakeSyntheticData(options);
  const std::vector<double> corr = NormalCorrelation(data);
  EXPECT_LT(ResidualAfter(corr, data.cols, 4), 0.02);
  EXPECT_GT(ResidualAfter(corr, data.cols, 3), 0.05);
}

TEST(SyntheticDataTest, OptionsAreClamped) {
  SyntheticOptions options;
  options.rows = -5;
  options.cols = 0;
  Dataset data = MakeSyntheticData(options);
  EXPECT_EQ(data.rows, 0);
  EXPECT_EQ(data.cols, 1);
  EXPECT_TRUE(data.x.empty());

  options = Small(7);
  options.anomaly_fraction = 2.0;
  options.informative = 1000;
  options.clusters = 0;
  data = MakeSyntheticData(options);
  for (int label : data.labels) EXPECT_EQ(label, 1);

  options.anomaly_fraction = std::nan("");
  data = MakeSyntheticData(options);
  for (int label : data.labels) EXPECT_EQ(label, 0);
}

TEST(SyntheticDataTest, CsvRoundTripIsExact) {
  test_support::TempDir dir;
  const Dataset data = MakeSyntheticData(Small(8));
  const std::string path = dir.File("demo.csv");
  ASSERT_TRUE(WriteCsv(data, path, true).ok());
  CsvOptions options;
  options.label_column = "label";
  auto back = ReadCsvFile(path, options);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(SameBytes(data, *back));
}

TEST(SyntheticDataTest, CsvWithoutLabels) {
  test_support::TempDir dir;
  const Dataset data = MakeSyntheticData(Small(9));
  const std::string path = dir.File("nolabel.csv");
  ASSERT_TRUE(WriteCsv(data, path, false).ok());
  auto back = ReadCsvFile(path, {});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->has_labels());
  EXPECT_EQ(back->x, data.x);
  EXPECT_EQ(back->feature_names, data.feature_names);
}

TEST(SyntheticDataTest, CsvQuotesAwkwardNames) {
  test_support::TempDir dir;
  Dataset data;
  data.rows = 1;
  data.cols = 3;
  data.x = {1.0f / 3.0f, -0.0f, 3e38f};
  data.feature_names = {"a,b", "say \"hi\"", " padded "};
  const std::string path = dir.File("names.csv");
  ASSERT_TRUE(WriteCsv(data, path, false).ok());
  auto back = ReadCsvFile(path, {});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(SameBytes(data, *back));
}

TEST(SyntheticDataTest, WriteCsvErrors) {
  test_support::TempDir dir;
  Dataset data;
  data.rows = 1;
  data.cols = 2;
  data.x = {1, 2};
  auto no_labels = WriteCsv(data, dir.File("a.csv"), true);
  EXPECT_EQ(no_labels.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_labels.message()), HasSubstr("labels"));

  auto bad_path = WriteCsv(data, dir.File("no/such/dir.csv"), false);
  EXPECT_FALSE(bad_path.ok());
  EXPECT_THAT(std::string(bad_path.message()), HasSubstr("no/such/dir.csv"));

  data.x = {1};
  EXPECT_EQ(WriteCsv(data, dir.File("b.csv"), false).code(),
            absl::StatusCode::kInvalidArgument);

  data.x = {1, std::nanf("")};
  EXPECT_EQ(WriteCsv(data, dir.File("c.csv"), false).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace anorand
