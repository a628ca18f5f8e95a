#include "model/data/csv_reader.h"

#include <unistd.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/data/test_fixtures.h"
#include "tests/support/expect_error.h"

namespace anorand {
namespace {

using test_support::ExpectError;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<Dataset> Parse(const std::string& text,
                              CsvOptions options = {}) {
  return ParseCsv(text, "data.csv", options);
}

CsvOptions Label(const std::string& column) {
  CsvOptions options;
  options.label_column = column;
  return options;
}

TEST(CsvReaderTest, CommaWithHeader) {
  auto data = Parse("a,b,c\n1,2,3\n4,5,6.5\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 2);
  EXPECT_EQ(data->cols, 3);
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b", "c"));
  EXPECT_THAT(data->x, ElementsAre(1, 2, 3, 4, 5, 6.5f));
  EXPECT_FALSE(data->has_labels());
}

TEST(CsvReaderTest, TabDelimiterDetected) {
  auto data = Parse("a\tb\n1\t2\n3\t4\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->x, ElementsAre(1, 2, 3, 4));
}

TEST(CsvReaderTest, ExplicitDelimiter) {
  CsvOptions options;
  options.delimiter = ';';
  auto data = Parse("a;b\n1;2\n", options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->x, ElementsAre(1, 2));
}

TEST(CsvReaderTest, NoHeaderAutoDetected) {
  auto data = Parse("1,2\n3,4\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 2);
  EXPECT_TRUE(data->feature_names.empty());
}

TEST(CsvReaderTest, HeaderForcedOnNumericNames) {
  CsvOptions options;
  options.header = 1;
  auto data = Parse("1,2\n3,4\n", options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 1);
  EXPECT_THAT(data->feature_names, ElementsAre("1", "2"));
}

TEST(CsvReaderTest, HeaderForcedOffRejectsNames) {
  CsvOptions options;
  options.header = 0;
  ExpectError(Parse("a,b\n1,2\n", options),
              {"data.csv: line 1, column 1: non-numeric value \"a\""});
}

TEST(CsvReaderTest, CrlfAndTrailingBlankLines) {
  auto data = Parse("a,b\r\n1,2\r\n3,4\r\n\r\n\n   \n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 2);
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
}

TEST(CsvReaderTest, NoFinalNewline) {
  auto data = Parse("1,2\n3,4");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 2);
}

TEST(CsvReaderTest, WhitespaceTrimmed) {
  auto data = Parse(" a , b \n 1 ,\t2 \n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(data->x, ElementsAre(1, 2));
}

TEST(CsvReaderTest, QuotedHeaderNames) {
  auto data = Parse("\"x,y\",\"say \"\"hi\"\"\" , c\n1,2,3\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("x,y", "say \"hi\"", "c"));
}

TEST(CsvReaderTest, QuotedNumbers) {
  auto data = Parse("\"1.5\",\"2\"\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->x, ElementsAre(1.5f, 2));
}

TEST(CsvReaderTest, Utf8BomIgnored) {
  auto data = Parse(
      "\xEF\xBB\xBF"
      "a,b\n1,2\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
}

TEST(CsvReaderTest, NumberForms) {
  auto data = Parse("+1.5,-2e-3,1E2,.5,-0,1e-999\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->x, ElementsAre(1.5f, -2e-3f, 100, 0.5f, 0, 0));
  EXPECT_TRUE(std::signbit(data->x[4]));
}

TEST(CsvReaderTest, SingleColumn) {
  auto data = Parse("v\n1\n2\n3\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->cols, 1);
  EXPECT_EQ(data->rows, 3);
}

TEST(CsvReaderTest, LabelByName) {
  auto data = Parse("a,label,b\n1,0,2\n3,1,4\n", Label("label"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(data->x, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(data->labels, ElementsAre(0, 1));
}

TEST(CsvReaderTest, LabelByIndexWithoutHeader) {
  auto data = Parse("1,2,1\n3,4,0\n", Label("#2"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->cols, 2);
  EXPECT_THAT(data->labels, ElementsAre(1, 0));
}

TEST(CsvReaderTest, LabelSpellings) {
  auto data = Parse("x,y\n1,0\n2,1\n3,0.0\n4,1.0\n5,true\n6,FALSE\n7,True\n",
                    Label("y"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->labels, ElementsAre(0, 1, 0, 1, 1, 0, 1));
}

TEST(CsvReaderTest, BoolLabelsDoNotLookLikeHeader) {
  auto data = Parse("1,true\n2,false\n", Label("#1"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 2);
  EXPECT_THAT(data->labels, ElementsAre(1, 0));
}

TEST(CsvReaderTest, EmptyFile) {
  ExpectError(Parse(""), {"data.csv", "is empty"});
  ExpectError(Parse("\n \r\n\n"), {"data.csv", "is empty"});
}

TEST(CsvReaderTest, HeaderOnly) {
  ExpectError(Parse("a,b,c\n"), {"data.csv", "header line but no data rows"});
}

TEST(CsvReaderTest, RaggedRowTooFew) {
  std::string text = "a,b,c,d,e\n";
  for (int i = 0; i < 5; ++i) text += "1,2,3,4,5\n";
  text += "1,2,3,4\n";
  ExpectError(Parse(text), {"data.csv: line 7 has 4 fields, expected 5"});
}

TEST(CsvReaderTest, RaggedRowTooMany) {
  ExpectError(Parse("1,2\n3,4,5\n"), {"line 2 has 3 fields, expected 2"});
}

TEST(CsvReaderTest, NonNumericValue) {
  ExpectError(Parse("a,b\n1,2\n3,abc\n"),
              {"data.csv: line 3, column 2: non-numeric value \"abc\""});
}

TEST(CsvReaderTest, HexIsNotANumber) {
  ExpectError(Parse("a\n0x10\n"), {"non-numeric value \"0x10\""});
}

TEST(CsvReaderTest, ACancelledParseStopsWithinAFewThousandRows) {
  std::string csv = "a,b\n";
  for (int i = 0; i < 100000; ++i) csv += "1,2\n";
  CsvOptions options;
  int polls = 0;
  options.cancelled = [&] { return ++polls > 3; };
  auto result = ParseCsv(csv, "big.csv", options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled) << result.status();
  EXPECT_EQ(polls, 4);  // rows 0, 4096, 8192 went on; row 12288 stopped
  options.cancelled = [] { return false; };
  auto whole = ParseCsv(csv, "big.csv", options);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->rows, 100000);
}

TEST(CsvReaderTest, LongBadTextIsTruncated) {
  const std::string bad(100, 'z');
  CsvOptions with_header;
  with_header.header = 1;
  auto result = Parse("a\n1\n" + bad + "\n", with_header);
  ExpectError(result, {"line 3, column 1", std::string(40, 'z') + "...\""});
  EXPECT_THAT(std::string(result.status().message()),
              Not(HasSubstr(std::string(41, 'z'))));
}

TEST(CsvReaderTest, NonFiniteRejected) {
  for (const char* text : {"nan", "NaN", "inf", "-Infinity", "+inf"}) {
    ExpectError(Parse(absl::StrCat("a,b\n1,", text, "\n")),
                {"line 2, column 2", "is not finite", text});
  }
}

TEST(CsvReaderTest, DoubleOverflowRejected) {
  ExpectError(Parse("a\n1e999\n"), {"line 2, column 1", "\"1e999\" overflows"});
}

TEST(CsvReaderTest, FloatOverflowRejected) {
  ExpectError(Parse("a\n-1e39\n"), {"\"-1e39\" is outside the range of float"});
}

TEST(CsvReaderTest, EmptyFieldRejected) {
  ExpectError(Parse("1,,3\n"), {"line 1, column 2: empty value"});
  ExpectError(Parse("a,b\n1,\n"), {"line 2, column 2: empty value"});
}

TEST(CsvReaderTest, BlankLineInMiddleRejected) {
  ExpectError(Parse("a\n1\n\n2\n"), {"data.csv: line 3: empty line"});
}

TEST(CsvReaderTest, UnterminatedQuote) {
  ExpectError(Parse("\"abc,d\n1,2\n"), {"line 1, column 1", "unterminated"});
}

TEST(CsvReaderTest, TextAfterClosingQuote) {
  ExpectError(Parse("a,\"b\"x\n1,2\n"),
              {"line 1, column 2", "unexpected text after closing quote"});
}

TEST(CsvReaderTest, UnknownLabelColumnListsNames) {
  ExpectError(
      Parse("a,b\n1,2\n", Label("y")),
      {"unknown label column \"y\"", "available columns: \"a\", \"b\""});
}

TEST(CsvReaderTest, DuplicateLabelColumn) {
  ExpectError(Parse("y,a,y\n1,2,0\n", Label("y")),
              {"duplicate label column \"y\"", "1 and 3"});
}

TEST(CsvReaderTest, LabelNameNeedsHeader) {
  CsvOptions options = Label("y");
  options.header = 0;
  ExpectError(Parse("1,0\n", options), {"no header line", "0-based index"});
}

TEST(CsvReaderTest, LabelIndexOutOfRange) {
  ExpectError(Parse("1,0\n", Label("#2")),
              {"label column #2 is out of range", "2 columns"});
}

TEST(CsvReaderTest, BadLabelValue) {
  ExpectError(Parse("x,y\n1,0\n2,2\n", Label("y")),
              {"line 3, column 2: label \"2\" is not 0/1"});
  ExpectError(Parse("x,y\n1,yes\n", Label("y")), {"label \"yes\""});
}

TEST(CsvReaderTest, OnlyLabelColumn) {
  ExpectError(Parse("y\n1\n0\n", Label("y")), {"no feature columns"});
}

TEST(CsvReaderTest, TooManyColumns) {
  std::string line = "1";
  for (int i = 0; i < 100000; ++i) line += ",1";
  ExpectError(Parse(line + "\n"), {"line 1", "more than 100000 fields"});
}

TEST(CsvReaderTest, ExactlyMaxColumnsAccepted) {
  std::string line = "1";
  for (int i = 1; i < 100000; ++i) line += ",1";
  auto data = Parse(line + "\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->cols, 100000);
}

TEST(CsvReaderTest, ReadCsvFileMissing) {
  auto result = ReadCsvFile("/nonexistent/dir/x.csv", {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("/nonexistent/dir/x.csv"));
}

TEST(CsvReaderTest, ReadCsvFileNamesPathInErrors) {
  test_support::TempDir dir;
  const std::string path = dir.File("bad.csv");
  ASSERT_TRUE(test_support::WriteFile(path, "a\n1\nx\n"));
  auto result = ReadCsvFile(path, {});
  ExpectError(result, {path + ": line 3, column 1"});
  ASSERT_TRUE(test_support::WriteFile(path, "a\n1\n2\n"));
  auto ok = ReadCsvFile(path, {});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->rows, 2);
}

// A pipe whose write end the test holds: the reader sees what was written
// so far, then waits, like `tail -f records.csv | ...`.
class Pipe {
 public:
  Pipe() { ok_ = ::pipe(fds_) == 0; }
  ~Pipe() {
    CloseWrite();
    if (ok_) ::close(fds_[0]);
  }
  bool ok() const { return ok_; }
  int read_fd() const { return fds_[0]; }
  int write_fd() const { return fds_[1]; }
  void Write(const std::string& text) {
    ASSERT_EQ(::write(fds_[1], text.data(), text.size()),
              static_cast<ssize_t>(text.size()));
  }
  void CloseWrite() {
    if (ok_ && fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
  bool ok_ = false;
};

// A pipe that holds `text`, its write end closed: all the input there is.
std::unique_ptr<Pipe> ClosedPipeWith(const std::string& text) {
  auto pipe = std::make_unique<Pipe>();
  EXPECT_TRUE(pipe->ok());
  pipe->Write(text);
  pipe->CloseWrite();
  return pipe;
}

TEST(CsvBatchReaderTest, ReturnsWhatArrivedWithoutWaitingForAFullBatch) {
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());
  CsvBatchReader reader(pipe.read_fd(), "stdin", {});
  pipe.Write("a,b\n1,2\n3,4\n");
  auto first = reader.Next(100, /*stop_when_idle=*/true);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rows, 2);
  EXPECT_THAT(first->feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(first->x, ElementsAre(1, 2, 3, 4));
  pipe.Write("5,6\n");
  auto second = reader.Next(100, true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->rows, 1);
  EXPECT_THAT(second->feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(second->x, ElementsAre(5, 6));
  pipe.CloseWrite();
  auto end = reader.Next(100, true);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->rows, 0);
}

TEST(CsvBatchReaderTest, BatchesOfAFileHoldAtMostMaxRows) {
  test_support::TempDir dir;
  const std::string path = dir.File("rows.csv");
  std::string text;
  for (int i = 0; i < 10; ++i) text += absl::StrCat(i, ",", i % 2, "\n");
  ASSERT_TRUE(test_support::WriteFile(path, text));
  auto reader = CsvBatchReader::OpenFile(path, Label("1"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<int64_t> sizes;
  std::vector<float> all;
  std::vector<int> labels;
  while (true) {
    auto batch = (*reader)->Next(4, /*stop_when_idle=*/false);
    ASSERT_TRUE(batch.ok()) << batch.status();
    if (batch->rows == 0) break;
    sizes.push_back(batch->rows);
    all.insert(all.end(), batch->x.begin(), batch->x.end());
    labels.insert(labels.end(), batch->labels.begin(), batch->labels.end());
  }
  EXPECT_THAT(sizes, ElementsAre(4, 4, 2));
  EXPECT_THAT(all, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
  EXPECT_THAT(labels, ElementsAre(0, 1, 0, 1, 0, 1, 0, 1, 0, 1));
}

// The first line decides the header by the library's one rule: a record
// whose label reads `true` is data, not a header.
TEST(CsvBatchReaderTest, FirstRecordWithATrueLabelIsData) {
  auto pipe = ClosedPipeWith("0.5,1.5,true\n2.5,3.5,false\n");
  CsvBatchReader reader(pipe->read_fd(), "stdin", Label("2"));
  auto batch = reader.Next(100, true);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->rows, 2);
  EXPECT_THAT(batch->labels, ElementsAre(1, 0));
}

TEST(CsvBatchReaderTest, LineOverTheLimitFromAPipeIsAnErrorThatSaysSo) {
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());
  CsvBatchReader reader(pipe.read_fd(), "stdin", {});
  std::thread writer([&] {
    // One line of kMaxCsvLineBytes + 100 bytes, no line end. The reader
    // stops after the limit; the few bytes it leaves fit the pipe's buffer.
    const std::string block(1 << 20, 'x');
    for (int i = 0; i < 16; ++i) pipe.Write(block);
    pipe.Write(std::string(100, 'x'));
    pipe.CloseWrite();
  });
  auto batch = reader.Next(100, true);
  writer.join();
  ExpectError(batch, {"stdin: line 1", "longer than 16777216 bytes"});
  auto again = reader.Next(100, true);
  EXPECT_EQ(again.status(), batch.status()) << "the first error ends the reader";
}

TEST(CsvBatchReaderTest, RowsBeforeABadLineComeOutBeforeTheError) {
  auto pipe = ClosedPipeWith("1,2,0\n3,4,1\n5,x,1\n7,8,0\n");
  CsvBatchReader reader(pipe->read_fd(), "stdin", Label("2"));
  auto rows = reader.Next(100, true);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->rows, 2);
  EXPECT_THAT(rows->x, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(rows->labels, ElementsAre(0, 1));
  ExpectError(reader.Next(100, true), {"stdin: line 3, column 2: non-numeric value"});
}

TEST(CsvBatchReaderTest, HeaderWithoutRowsIsReportedAtTheEnd) {
  auto pipe = ClosedPipeWith("a,b\n");
  CsvBatchReader reader(pipe->read_fd(), "stdin", {});
  ExpectError(reader.Next(100, true), {"stdin: has a header line but no data rows"});
}

// Random short inputs over a CSV-ish alphabet must only ever yield a
// status (run under the sanitizers to catch memory errors).
TEST(CsvReaderTest, RandomInputsNeverCrash) {
  const std::string alphabet = "01.e-+,\t\"\r\n abnif#";
  std::mt19937_64 rng(7);
  int ok = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text(rng() % 40, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    CsvOptions options;
    options.label_column = (i % 3 == 0) ? "#0" : "";
    auto result = ParseCsv(text, "fuzz", options);
    if (result.ok()) {
      ++ok;
      EXPECT_EQ(result->x.size(),
                static_cast<size_t>(result->rows * result->cols));
    } else {
      EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace anorand
