#include "model/data/data_loader.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/data/test_fixtures.h"
#include "tests/support/expect_error.h"

namespace anorand {
namespace {

using test_support::ExpectError;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test_support::Npy;
using test_support::RawBytes;

// Calls spell the default options LoadOptions(), not {}: GCC 12 at -O3
// reports a false maybe-uninitialized on an aggregate {} temporary that
// holds strings.
std::string X32() {
  // Fortran-order int16, 3 x 2: [[1, 2], [3, 4], [5, 6]].
  return Npy("<i2", true, "(3, 2)",
             RawBytes(std::vector<int16_t>{1, 3, 5, 2, 4, 6}));
}

class DataLoaderTest : public ::testing::Test {
 protected:

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(test_support::WriteFile(path, bytes));
    return path;
  }

  std::string Zip(const std::string& name,
                  const std::vector<test_support::ZipMember>& members) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(test_support::WriteZip(path, members));
    return path;
  }

  test_support::TempDir dir_;
};

TEST_F(DataLoaderTest, CsvWithLabels) {
  LoadOptions options;
  options.csv.label_column = "label";
  auto data = LoadDataset(Write("a.csv", "a,b,label\n1,2,0\n3,4,1\n"), options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 2);
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->labels, ElementsAre(0, 1));
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
}

TEST_F(DataLoaderTest, TsvAndTxtExtensions) {
  auto tsv = LoadDataset(Write("a.tsv", "1\t2\n3\t4\n"), LoadOptions());
  ASSERT_TRUE(tsv.ok()) << tsv.status();
  EXPECT_EQ(tsv->cols, 2);
  auto txt = LoadDataset(Write("b.TXT", "1,2,3\n"), LoadOptions());
  ASSERT_TRUE(txt.ok()) << txt.status();
  EXPECT_EQ(txt->cols, 3);
}

TEST_F(DataLoaderTest, TsvForcesTabDelimiter) {
  // One column whose values contain commas would be misread as CSV.
  ExpectError(LoadDataset(Write("c.tsv", "a\n1,5\n"), LoadOptions()),
              {"non-numeric value \"1,5\""});
}

TEST_F(DataLoaderTest, NpyIsFeaturesOnly) {
  auto data = LoadDataset(Write("x.npy", X32()), LoadOptions());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 3);
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->x, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_FALSE(data->has_labels());
  EXPECT_TRUE(data->feature_names.empty());
}

// DatasetBatches hands out an NPY file in slices and streams a TSV file
// with LoadDataset's rules (the tab delimiter from the extension).
TEST_F(DataLoaderTest, BatchesSliceAnNpyAndStreamATsvWithTheLoadersRules) {
  auto npy = DatasetBatches::Open(Write("x.npy", X32()), {});
  ASSERT_TRUE(npy.ok()) << npy.status();
  auto first = (*npy)->Next(2, false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rows, 2);
  EXPECT_THAT(first->x, ElementsAre(1, 2, 3, 4));
  auto second = (*npy)->Next(2, false);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->rows, 1);
  EXPECT_THAT(second->x, ElementsAre(5, 6));
  auto end = (*npy)->Next(2, false);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->rows, 0);

  auto tsv = DatasetBatches::Open(Write("c.tsv", "a\n1,5\n"), {});
  ASSERT_TRUE(tsv.ok()) << tsv.status();
  ExpectError((*tsv)->Next(10, false), {"non-numeric value \"1,5\""});

  auto unknown = DatasetBatches::Open(Write("d.bin", "1\n"), {});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DataLoaderTest, BatchesWithRequiredLabelsRefuseAnNpy) {
  LoadOptions options;
  options.require_labels = true;
  auto npy = DatasetBatches::Open(Write("x.npy", X32()), options);
  ASSERT_TRUE(npy.ok()) << npy.status();
  ExpectError((*npy)->Next(2, false), {"labels are required"});
}

TEST_F(DataLoaderTest, OneDimensionalXIsOneColumn) {
  auto data = LoadDataset(
      Write("v.npy",
            Npy("<f4", false, "(3,)", RawBytes(std::vector<float>{1, 2, 3}))),
      LoadOptions());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 3);
  EXPECT_EQ(data->cols, 1);
}

TEST_F(DataLoaderTest, NpzWithLabels) {
  const std::string y =
      Npy("<i8", false, "(3,)", RawBytes(std::vector<int64_t>{0, 1, 0}));
  auto data = LoadDataset(Zip("d.npz", {{"X.npy", X32()}, {"y.npy", y}}), LoadOptions());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 3);
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->x, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(data->labels, ElementsAre(0, 1, 0));
}

TEST_F(DataLoaderTest, NpzFloatAndColumnLabels) {
  const std::string y =
      Npy("<f8", false, "(3, 1)", RawBytes(std::vector<double>{1, 0, 1}));
  auto data = LoadDataset(Zip("f.npz", {{"X.npy", X32()}, {"y.npy", y}}), LoadOptions());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->labels, ElementsAre(1, 0, 1));
}

TEST_F(DataLoaderTest, NpzWithoutLabels) {
  const std::string path = Zip("x.npz", {{"X.npy", X32()}});
  auto data = LoadDataset(path, LoadOptions());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_FALSE(data->has_labels());
  LoadOptions options;
  options.require_labels = true;
  ExpectError(LoadDataset(path, options), {path, "labels are required"});
}

TEST_F(DataLoaderTest, RequireLabelsForCsvAndNpy) {
  LoadOptions options;
  options.require_labels = true;
  ExpectError(LoadDataset(Write("n.csv", "1,2\n"), options),
              {"labels are required"});
  ExpectError(LoadDataset(Write("n.npy", X32()), options),
              {"labels are required"});
}

TEST_F(DataLoaderTest, CustomMemberNames) {
  const std::string y =
      Npy("|b1", false, "(3,)", RawBytes(std::vector<uint8_t>{1, 1, 0}));
  LoadOptions options;
  options.x_member = "features";
  options.y_member = "target";
  auto data = LoadDataset(
      Zip("m.npz", {{"features.npy", X32()}, {"target.npy", y}, {"X.npy", y}}),
      options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->labels, ElementsAre(1, 1, 0));
}

TEST_F(DataLoaderTest, MissingXListsMembers) {
  const std::string path =
      Zip("nox.npz", {{"data.npy", X32()}, {"y.npy", X32()}});
  ExpectError(LoadDataset(path, LoadOptions()),
              {path, "no member \"X\"", "members: \"data\", \"y\""});
}

TEST_F(DataLoaderTest, LabelsMustBeZeroOrOne) {
  const std::string y =
      Npy("<i4", false, "(3,)", RawBytes(std::vector<int32_t>{0, 2, 1}));
  const std::string path = Zip("bad.npz", {{"X.npy", X32()}, {"y.npy", y}});
  ExpectError(LoadDataset(path, LoadOptions()),
              {path, "member \"y\"", "label 2 at index 1 is not 0 or 1"});
  const std::string half =
      Npy("<f8", false, "(3,)", RawBytes(std::vector<double>{0, 0.5, 1}));
  ExpectError(
      LoadDataset(Zip("half.npz", {{"X.npy", X32()}, {"y.npy", half}}), LoadOptions()),
      {"label 0.5 at index 1"});
}

TEST_F(DataLoaderTest, LabelLengthMustMatchRows) {
  const std::string y =
      Npy("<i8", false, "(2,)", RawBytes(std::vector<int64_t>{0, 1}));
  ExpectError(LoadDataset(Zip("len.npz", {{"X.npy", X32()}, {"y.npy", y}}), LoadOptions()),
              {"labels have 2 entries but the features have 3 rows"});
}

TEST_F(DataLoaderTest, LabelsMustBeOneDimensional) {
  const std::string y = Npy("<i2", false, "(3, 2)",
                            RawBytes(std::vector<int16_t>{0, 1, 0, 1, 0, 1}));
  ExpectError(LoadDataset(Zip("y2.npz", {{"X.npy", X32()}, {"y.npy", y}}), LoadOptions()),
              {"labels must be a 1-D array, got 2 dimensions"});
}

TEST_F(DataLoaderTest, XShapeChecks) {
  ExpectError(LoadDataset(Write("s.npy", Npy("<f8", false, "()",
                                             RawBytes(std::vector<double>{1}))),
                          LoadOptions()),
              {"features must be a 1-D or 2-D array, got 0 dimensions"});
  ExpectError(LoadDataset(Write("3.npy", Npy("<f8", false, "(1, 1, 1)",
                                             RawBytes(std::vector<double>{1}))),
                          LoadOptions()),
              {"3 dimensions are not supported"});
  ExpectError(LoadDataset(Write("e.npy", Npy("<f8", false, "(0, 4)", "")), LoadOptions()),
              {"features are empty (0 rows, 4 columns)"});
  ExpectError(LoadDataset(Write("e2.npy", Npy("<f8", false, "(4, 0)", "")), LoadOptions()),
              {"features are empty (4 rows, 0 columns)"});
}

TEST_F(DataLoaderTest, FloatOverflowIsAnError) {
  const std::string x = Npy("<f8", false, "(2, 2)",
                            RawBytes(std::vector<double>{1, 2, 3, 1e300}));
  ExpectError(
      LoadDataset(Write("o.npy", x), LoadOptions()),
      {"value 1e+300 at row 1, column 1 is outside the range of float"});
  const std::string edge =
      Npy("<f8", false, "(1,)", RawBytes(std::vector<double>{3.4028234e38}));
  EXPECT_TRUE(LoadDataset(Write("edge.npy", edge), LoadOptions()).ok());
}

TEST_F(DataLoaderTest, UnknownExtension) {
  ExpectError(LoadDataset(Write("a.parquet", "x"), LoadOptions()),
              {"a.parquet", "unsupported format \"parquet\"",
               ".csv, .tsv, .txt, .npy, .npz"});
  ExpectError(LoadDataset(dir_.File("noext"), LoadOptions()), {"unsupported format \"\""});
  ExpectError(LoadDataset(dir_.File("dir.d/file"), LoadOptions()), {"unsupported format"});
}

TEST_F(DataLoaderTest, MissingFile) {
  for (const char* name : {"none.csv", "none.npy", "none.npz"}) {
    auto data = LoadDataset(dir_.File(name), LoadOptions());
    ASSERT_FALSE(data.ok());
    EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound) << name;
    EXPECT_THAT(std::string(data.status().message()), HasSubstr(name));
  }
}

TEST_F(DataLoaderTest, FromBytesAllFormats) {
  LoadOptions options;
  options.csv.label_column = "#2";
  auto csv = DatasetFromBytes("1,2,1\n3,4,0\n", "csv", options);
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_THAT(csv->labels, ElementsAre(1, 0));

  auto npy = DatasetFromBytes(X32(), "NPY", LoadOptions());
  ASSERT_TRUE(npy.ok()) << npy.status();
  EXPECT_EQ(npy->cols, 2);

  const std::string y =
      Npy("<i8", false, "(3,)", RawBytes(std::vector<int64_t>{1, 0, 0}));
  const std::string zip =
      test_support::ReadFile(Zip("u.npz", {{"X.npy", X32(), false}, {"y.npy", y}}));
  auto npz = DatasetFromBytes(zip, "npz", LoadOptions());
  ASSERT_TRUE(npz.ok()) << npz.status();
  EXPECT_THAT(npz->labels, ElementsAre(1, 0, 0));
}

TEST_F(DataLoaderTest, FromBytesErrors) {
  ExpectError(DatasetFromBytes("x", "xlsx", LoadOptions()),
              {"unsupported format \"xlsx\"", "csv, tsv, txt, npy, npz"});
  ExpectError(DatasetFromBytes("1,2\n3,x\n", "csv", LoadOptions()),
              {"uploaded csv data: line 2, column 2"});
  ExpectError(DatasetFromBytes("nope", "npz", LoadOptions()),
              {"uploaded npz data: cannot open as a zip archive"});
  LoadOptions options;
  options.require_labels = true;
  ExpectError(DatasetFromBytes("1,2\n", "csv", options),
              {"labels are required"});
}

// ----------------------------------------------------------- ADBench data

struct IndexRow {
  int64_t rows = 0;
  int64_t features = 0;
  int64_t anomalies = 0;
};

std::map<std::string, IndexRow> ReadIndex(const std::string& path) {
  std::map<std::string, IndexRow> index;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // Header.
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() < 4) continue;
    IndexRow row;
    if (absl::SimpleAtoi(f[1], &row.rows) &&
        absl::SimpleAtoi(f[2], &row.features) &&
        absl::SimpleAtoi(f[3], &row.anomalies)) {
      index[f[0]] = row;
    }
  }
  return index;
}

TEST(AdbenchTest, LoadsAllDatasets) {
  const std::string dir = std::string(ANORAND_SHARED_DIR) + "/datasets/adbench";
  if (!std::filesystem::exists(dir + "/INDEX.tsv")) {
    GTEST_SKIP() << "../shared/datasets/adbench not found";
  }
  const std::map<std::string, IndexRow> index = ReadIndex(dir + "/INDEX.tsv");
  ASSERT_EQ(index.size(), 13u);
  for (const auto& [name, expected] : index) {
    SCOPED_TRACE(name);
    LoadOptions options;
    options.require_labels = true;
    auto data = LoadDataset(dir + "/" + name + ".npz", options);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->rows, expected.rows);
    EXPECT_EQ(data->cols, expected.features);
    ASSERT_EQ(data->labels.size(), static_cast<size_t>(expected.rows));
    int64_t anomalies = 0;
    for (int label : data->labels) {
      ASSERT_TRUE(label == 0 || label == 1);
      anomalies += label;
    }
    EXPECT_EQ(anomalies, expected.anomalies);
    EXPECT_EQ(data->x.size(), static_cast<size_t>(data->rows * data->cols));
  }
}

}  // namespace
}  // namespace anorand
