// The fuzz targets' seed corpus for the data readers (fuzz/corpus/{csv,npy,
// npz}/) read through the readers in the ordinary test build: every seed
// must still be what its name says, so the corpus stays meaningful as the
// readers change. A seed named bad_* is near-valid and must be refused by
// the loader (DatasetFromBytes); any other must be accepted by its reader.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "model/data/csv_reader.h"
#include "model/data/data_loader.h"
#include "model/data/npy_reader.h"
#include "tests/data/test_fixtures.h"

namespace anorand {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> Seeds(const std::string& target) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(std::string(ANORAND_FUZZ_CORPUS_DIR) + "/" + target)) {
    files.push_back(e.path());
  }
  return files;
}

bool IsBad(const fs::path& p) { return absl::StartsWith(p.filename().string(), "bad_"); }

// The reader's own verdict on a valid seed. CSV seeds are valid under one
// of csv_fuzzer's option sets: defaults, or a label column named "label".
absl::Status ReadWithReader(const std::string& target, const std::string& bytes) {
  if (target == "npy") return ParseNpy(bytes, "seed").status();
  if (target == "npz") return ParseNpz(bytes, "seed").status();
  const absl::Status plain = ParseCsv(bytes, "seed", {}).status();
  if (plain.ok()) return plain;
  CsvOptions labelled;
  labelled.label_column = "label";
  return ParseCsv(bytes, "seed", labelled).status();
}

class FuzzSeedsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzSeedsTest, EachSeedIsWhatItsNameSays) {
  const std::string target = GetParam();
  int good = 0, bad = 0;
  for (const fs::path& path : Seeds(target)) {
    SCOPED_TRACE(path.string());
    const std::string bytes = test_support::ReadFile(path.string());
    if (IsBad(path)) {
      const std::string format = path.extension().string().substr(1);
      EXPECT_FALSE(DatasetFromBytes(bytes, format, {}).ok());
      ++bad;
    } else {
      const absl::Status s = ReadWithReader(target, bytes);
      EXPECT_TRUE(s.ok()) << s;
      ++good;
    }
  }
  EXPECT_GE(good, 3);
  EXPECT_GE(bad, 3);
}

INSTANTIATE_TEST_SUITE_P(Readers, FuzzSeedsTest, ::testing::Values("csv", "npy", "npz"));

}  // namespace
}  // namespace anorand
