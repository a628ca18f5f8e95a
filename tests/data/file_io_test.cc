// ReadFileBounded's one error policy: missing, over the bound, not a regular
// file, and a file whose bytes do not match its size while being read
// (shrunk or grown) is DataLoss, never a silently short result.
#include "model/data/file_io.h"

#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/data/test_fixtures.h"

namespace anorand {
namespace {

using ::testing::HasSubstr;

TEST(FileIoTest, ReadsAWholeFileWithinTheBound) {
  test_support::TempDir dir;
  const std::string path = dir.File("f");
  ASSERT_TRUE(test_support::WriteFile(path, "hello"));
  auto bytes = ReadFileBounded(path, 5);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, "hello");
}

TEST(FileIoTest, MissingFileIsNotFound) {
  auto bytes = ReadFileBounded("/nonexistent/dir/f", 10);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("/nonexistent/dir/f"));
}

TEST(FileIoTest, FileOverTheBoundIsRefusedBeforeReading) {
  test_support::TempDir dir;
  const std::string path = dir.File("f");
  ASSERT_TRUE(test_support::WriteFile(path, "hello!"));
  auto bytes = ReadFileBounded(path, 5);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("more than the limit of 5"));
}

TEST(FileIoTest, FolderIsNotARegularFile) {
  test_support::TempDir dir;
  auto bytes = ReadFileBounded(dir.File(""), 1 << 20);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("not a regular file"));
}

// The file is cut short between the size check and the read (another
// process truncating it): the reader says so instead of returning the part.
TEST(FileIoTest, FileTruncatedWhileReadIsDataLossNotAShortResult) {
  test_support::TempDir dir;
  const std::string path = dir.File("f");
  ASSERT_TRUE(test_support::WriteFile(path, std::string(100, 'a')));
  auto file = OpenFileBounded(path, 100);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(::truncate(path.c_str(), 40), 0);
  auto bytes = ReadOpenedFile(file->get(), path, 100);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("got 40 of the 100 bytes"));
}

TEST(FileIoTest, FileGrownWhileReadIsDataLoss) {
  test_support::TempDir dir;
  const std::string path = dir.File("f");
  ASSERT_TRUE(test_support::WriteFile(path, std::string(100, 'a')));
  auto file = OpenFileBounded(path, 1000);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE(test_support::WriteFile(path, std::string(150, 'a')));
  auto bytes = ReadOpenedFile(file->get(), path, 100);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("grew past its size of 100"));
}

}  // namespace
}  // namespace anorand
