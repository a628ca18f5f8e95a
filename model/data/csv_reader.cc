#include "model/data/csv_reader.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/data/file_io.h"
#include "model/data/number_util.h"
#include "model/status_macros.h"

namespace anorand {
namespace {

constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr size_t kMaxNamesListed = 50;

// Where a line came from, for error messages.
struct LineRef {
  absl::string_view source;
  int64_t line = 0;
};

absl::Status LineError(const LineRef& at, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(at.source, ": line ", at.line, ": ", what));
}

absl::Status FieldError(const LineRef& at, int64_t column,
                        absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      at.source, ": line ", at.line, ", column ", column, ": ", what));
}

bool IsBlankChar(char c, char delimiter) {
  return c == ' ' || (c == '\t' && delimiter != '\t');
}

bool IsBlankLine(absl::string_view line) {
  return absl::StripAsciiWhitespace(line).empty();
}

// Walks the lines of a buffer or a file descriptor: LF or CRLF ends, 1-based
// numbers. Blank lines are skipped but remembered; a content line after one
// is an error. A line longer than kMaxCsvLineBytes is an error, found after
// looking at no more than that many bytes of it. From a descriptor, lines
// are read in blocks of what read(2) returns (a pipe gives what is there):
// memory holds one block and the current line, never the input.
class LineReader {
 public:
  LineReader(absl::string_view content, absl::string_view source)
      : rest_(content), source_(source) {}
  LineReader(int fd, absl::string_view source) : fd_(fd), source_(source) {}

  // Sets *line to the next non-blank line, valid until the next call.
  // Returns false at the end.
  absl::StatusOr<bool> Next(absl::string_view* line, LineRef* at) {
    while (true) {
      absl::string_view text;
      ASSIGN_OR_RETURN(bool more, TakeLine(&text));
      if (!more) return false;
      if (IsBlankLine(text)) {
        if (first_blank_ == 0) first_blank_ = number_;
        continue;
      }
      if (first_blank_ != 0) {
        return LineError({source_, first_blank_},
                         "empty line (blank lines are allowed only at the "
                         "end of the file)");
      }
      *line = text;
      *at = {source_, number_};
      return true;
    }
  }

  // True when Next would return without waiting for input: a whole line is
  // buffered, the input has ended, or the descriptor has data (or EOF)
  // ready now.
  bool Ready() const {
    if (fd_ < 0 || at_eof_ || FindLineEnd() != absl::string_view::npos) {
      return true;
    }
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

 private:
  static constexpr size_t kBlockBytes = size_t{1} << 20;

  absl::StatusOr<bool> TakeLine(absl::string_view* text) {
    size_t end = FindLineEnd();
    while (end == absl::string_view::npos && fd_ >= 0 && !at_eof_ &&
           rest_.size() <= kMaxCsvLineBytes) {
      RETURN_IF_ERROR(ReadBlock());
      end = FindLineEnd();
    }
    if (end == absl::string_view::npos &&
        rest_.size() > kMaxCsvLineBytes) {
      end = rest_.size();  // reported below
    }
    if (rest_.empty()) return false;
    ++number_;
    absl::string_view line = rest_.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxCsvLineBytes) {
      return LineError(
          {source_, number_},
          absl::StrCat("line is longer than ", kMaxCsvLineBytes,
                       " bytes (the limit); is this a CSV file with one "
                       "record per line?"));
    }
    rest_.remove_prefix(end == absl::string_view::npos ? rest_.size()
                                                       : end + 1);
    *text = line;
    return true;
  }

  // The position of the next '\n' within the first kMaxCsvLineBytes + 2
  // bytes (a CRLF line at the limit fits), or npos.
  size_t FindLineEnd() const {
    return rest_.substr(0, kMaxCsvLineBytes + 2).find('\n');
  }

  // Appends what one read(2) returns (up to a block) behind what is left of
  // the buffer; sets at_eof_ when it returns nothing.
  absl::Status ReadBlock() {
    const size_t keep = rest_.size();
    if (keep > 0 && rest_.data() != buffer_.data()) {
      std::memmove(&buffer_[0], rest_.data(), keep);
    }
    buffer_.resize(keep + kBlockBytes);
    ssize_t got = 0;
    do {
      got = ::read(fd_, &buffer_[keep], kBlockBytes);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      const int err = errno;
      buffer_.resize(keep);
      rest_ = buffer_;
      return absl::DataLossError(
          absl::StrCat(source_, ": read error: ", std::strerror(err)));
    }
    if (got == 0) at_eof_ = true;
    buffer_.resize(keep + static_cast<size_t>(got));
    rest_ = buffer_;
    if (!bom_checked_ && (rest_.size() >= kUtf8Bom.size() || at_eof_)) {
      bom_checked_ = true;
      if (absl::StartsWith(rest_, kUtf8Bom)) rest_.remove_prefix(3);
    }
    return absl::OkStatus();
  }

  int fd_ = -1;         // -1: the whole input is in rest_
  std::string buffer_;  // descriptor mode: the bytes being read
  bool at_eof_ = false;
  bool bom_checked_ = false;
  absl::string_view rest_;
  absl::string_view source_;
  int64_t number_ = 0;
  int64_t first_blank_ = 0;
};

// Splits lines into trimmed, unquoted fields. Reuses its string storage from
// line to line; fields()[0, count()) are valid after Split.
class FieldSplitter {
 public:
  explicit FieldSplitter(char delimiter) : delimiter_(delimiter) {}

  absl::Status Split(absl::string_view line, const LineRef& at) {
    count_ = 0;
    size_t pos = 0;
    while (true) {
      if (static_cast<int64_t>(count_) >= kMaxCsvColumns) {
        return LineError(at, absl::StrCat("more than ", kMaxCsvColumns,
                                          " fields (the limit)"));
      }
      if (count_ == fields_.size()) fields_.emplace_back();
      std::string& field = fields_[count_++];
      RETURN_IF_ERROR(ReadField(line, at, &pos, &field));
      if (pos >= line.size()) return absl::OkStatus();
      ++pos;  // Past the delimiter; a field follows even if empty.
    }
  }

  size_t count() const { return count_; }
  const std::string& field(size_t i) const { return fields_[i]; }

 private:
  absl::Status ReadField(absl::string_view line, const LineRef& at, size_t* pos,
                         std::string* field) {
    size_t i = *pos;
    while (i < line.size() && IsBlankChar(line[i], delimiter_)) ++i;
    if (i < line.size() && line[i] == '"') {
      RETURN_IF_ERROR(ReadQuoted(line, at, &i, field));
    } else {
      const size_t start = i;
      while (i < line.size() && line[i] != delimiter_) ++i;
      size_t end = i;
      while (end > start && IsBlankChar(line[end - 1], delimiter_)) --end;
      field->assign(line.data() + start, end - start);
    }
    *pos = i;
    return absl::OkStatus();
  }

  // *i is at the opening quote; leaves *i at the delimiter or line end.
  absl::Status ReadQuoted(absl::string_view line, const LineRef& at, size_t* i,
                          std::string* field) {
    const int64_t column = static_cast<int64_t>(count_);
    field->clear();
    size_t p = *i + 1;
    while (true) {
      if (p >= line.size()) {
        return FieldError(at, column,
                          "unterminated quoted field (quoted fields may not "
                          "span lines)");
      }
      if (line[p] == '"') {
        if (p + 1 < line.size() && line[p + 1] == '"') {
          field->push_back('"');
          p += 2;
          continue;
        }
        ++p;
        break;
      }
      field->push_back(line[p++]);
    }
    while (p < line.size() && IsBlankChar(line[p], delimiter_)) ++p;
    if (p < line.size() && line[p] != delimiter_) {
      return FieldError(at, column, "unexpected text after closing quote");
    }
    *i = p;
    return absl::OkStatus();
  }

  char delimiter_;
  std::vector<std::string> fields_;
  size_t count_ = 0;
};

// Counts ',' and '\t' outside double quotes; the more frequent wins, ties
// (including none) go to comma.
char DetectDelimiter(absl::string_view first_line) {
  int64_t commas = 0;
  int64_t tabs = 0;
  bool quoted = false;
  for (char c : first_line) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == ',') ++commas;
    if (c == '\t') ++tabs;
  }
  return tabs > commas ? '\t' : ',';
}

bool IsBoolWord(absl::string_view text) {
  return absl::EqualsIgnoreCase(text, "true") ||
         absl::EqualsIgnoreCase(text, "false");
}

// Auto-detection: a header has at least one field that is neither empty, a
// number (finite or not) nor a true/false label.
bool LooksLikeHeader(const FieldSplitter& fields) {
  for (size_t i = 0; i < fields.count(); ++i) {
    const std::string& text = fields.field(i);
    double ignored = 0;
    if (text.empty() || IsBoolWord(text)) continue;
    if (ParseDouble(text, &ignored) == NumberFault::kNotANumber) return true;
  }
  return false;
}

absl::StatusOr<float> ParseValue(const std::string& text, const LineRef& at,
                                 int64_t column) {
  double v = 0;
  switch (ParseDouble(text, &v)) {
    case NumberFault::kOk:
      break;
    case NumberFault::kNotANumber:
      return FieldError(at, column,
                        text.empty() ? std::string("empty value")
                                     : absl::StrCat("non-numeric value ",
                                                    QuoteForError(text)));
    case NumberFault::kNotFinite:
      return FieldError(at, column,
                        absl::StrCat("value ", QuoteForError(text),
                                     " is not finite (NaN and infinity are "
                                     "not allowed)"));
    case NumberFault::kOverflow:
      return FieldError(at, column,
                        absl::StrCat("value ", QuoteForError(text),
                                     " overflows (out of double range)"));
  }
  if (!FitsInFloat(v)) {
    return FieldError(at, column,
                      absl::StrCat("value ", QuoteForError(text),
                                   " is outside the range of float"));
  }
  return static_cast<float>(v);
}

absl::StatusOr<int> ParseLabel(const std::string& text, const LineRef& at,
                               int64_t column) {
  if (absl::EqualsIgnoreCase(text, "true")) return 1;
  if (absl::EqualsIgnoreCase(text, "false")) return 0;
  double v = 0;
  if (ParseDouble(text, &v) == NumberFault::kOk && (v == 0.0 || v == 1.0)) {
    return v == 1.0 ? 1 : 0;
  }
  return FieldError(at, column,
                    absl::StrCat("label ", QuoteForError(text),
                                 " is not 0/1 (accepted: 0, 1, 0.0, 1.0, "
                                 "true, false)"));
}

std::string ListNames(const std::vector<std::string>& names) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < names.size() && i < kMaxNamesListed; ++i) {
    shown.push_back(QuoteForError(names[i]));
  }
  std::string list = absl::StrJoin(shown, ", ");
  if (names.size() > kMaxNamesListed) {
    absl::StrAppend(&list, ", ... and ", names.size() - kMaxNamesListed,
                    " more");
  }
  return list;
}

absl::StatusOr<int64_t> LabelByName(const std::string& name,
                                    const std::vector<std::string>& header,
                                    absl::string_view source) {
  std::vector<int64_t> hits;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) hits.push_back(static_cast<int64_t>(i));
  }
  if (hits.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": unknown label column ", QuoteForError(name),
                     "; available columns: ", ListNames(header)));
  }
  if (hits.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": duplicate label column ", QuoteForError(name),
                     ": it names ", hits.size(), " header columns (",
                     hits[0] + 1, " and ", hits[1] + 1, ")"));
  }
  return hits[0];
}

// Returns the 0-based label column, or -1 when there is none. A header
// name wins over the index form, so a header column named "8" is that
// column; "#8" is always the index.
absl::StatusOr<int64_t> ResolveLabelColumn(
    const std::string& spec, const std::vector<std::string>* header,
    int64_t columns, absl::string_view source) {
  if (spec.empty()) return -1;
  if (header != nullptr && spec[0] != '#' &&
      std::find(header->begin(), header->end(), spec) != header->end()) {
    return LabelByName(spec, *header, source);
  }
  const int64_t index = LabelColumnIndex(spec);
  if (index >= 0) {
    if (index >= columns) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": label column ", spec, " is out of range: the file has ",
          columns, " columns (0 to ", columns - 1, ")"));
    }
    return index;
  }
  if (header == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": label column ", QuoteForError(spec),
        " is given by name but the file has no header line; give its 0-based "
        "index (\"8\" or \"#8\")"));
  }
  return LabelByName(spec, *header, source);
}

bool DecideHeader(int header_option, const FieldSplitter& first) {
  if (header_option == 0) return false;
  if (header_option > 0) return true;
  return LooksLikeHeader(first);
}

// Parses the data rows of one line into `out`.
absl::Status AppendRow(const FieldSplitter& fields, const LineRef& at,
                       int64_t label_column, Dataset* out) {
  for (size_t j = 0; j < fields.count(); ++j) {
    const int64_t column = static_cast<int64_t>(j) + 1;
    if (static_cast<int64_t>(j) == label_column) {
      ASSIGN_OR_RETURN(int label, ParseLabel(fields.field(j), at, column));
      out->labels.push_back(label);
    } else {
      ASSIGN_OR_RETURN(float v, ParseValue(fields.field(j), at, column));
      out->x.push_back(v);
    }
  }
  ++out->rows;
  return absl::OkStatus();
}

// Everything after the first line is known: splits and appends rows until
// the input ends or `out` holds max_rows rows; with stop_when_idle also when
// `out` holds a row and no more input is ready.
absl::Status ReadRows(LineReader* lines, FieldSplitter* splitter,
                      size_t columns, int64_t label_column, int64_t max_rows,
                      bool stop_when_idle, const std::function<bool()>& cancelled,
                      Dataset* out, bool* ended) {
  absl::string_view line;
  LineRef at;
  while (out->rows < max_rows) {
    if (cancelled && out->rows % 4096 == 0 && cancelled()) {
      return absl::CancelledError("reading the data was cancelled");
    }
    if (stop_when_idle && out->rows > 0 && !lines->Ready()) break;
    ASSIGN_OR_RETURN(bool more, lines->Next(&line, &at));
    if (!more) {
      *ended = true;
      break;
    }
    RETURN_IF_ERROR(splitter->Split(line, at));
    if (splitter->count() != columns) {
      return absl::InvalidArgumentError(
          absl::StrCat(at.source, ": line ", at.line, " has ",
                       splitter->count(), " fields, expected ", columns));
    }
    RETURN_IF_ERROR(AppendRow(*splitter, at, label_column, out));
  }
  return absl::OkStatus();
}

std::vector<std::string> FieldNames(const FieldSplitter& fields) {
  std::vector<std::string> names;
  names.reserve(fields.count());
  for (size_t i = 0; i < fields.count(); ++i) names.push_back(fields.field(i));
  return names;
}

}  // namespace

int64_t LabelColumnIndex(absl::string_view spec) {
  if (absl::StartsWith(spec, "#")) spec.remove_prefix(1);
  if (spec.empty() || spec.size() > 18) return -1;
  for (char c : spec) {
    if (c < '0' || c > '9') return -1;
  }
  int64_t index = -1;
  return absl::SimpleAtoi(spec, &index) ? index : -1;
}

namespace {

// Reads records from a LineReader: the first line decides the delimiter,
// the header and the label column; every later call appends rows.
class RecordParser {
 public:
  RecordParser(LineReader* lines, std::string source, CsvOptions options)
      : lines_(lines), source_(std::move(source)), options_(std::move(options)) {}

  // Appends up to max_rows rows to *out (cols and feature_names set). At the
  // end of the input sets *ended and checks that there were rows.
  absl::Status Read(int64_t max_rows, bool stop_when_idle, Dataset* out,
                    bool* ended) {
    *ended = false;
    if (!splitter_) {
      RETURN_IF_ERROR(ReadFirstLine(out));
    } else {
      out->cols = cols_;
      out->feature_names = feature_names_;
    }
    const int64_t before = out->rows;
    RETURN_IF_ERROR(ReadRows(lines_, &*splitter_, columns_, label_column_,
                             max_rows, stop_when_idle, options_.cancelled, out,
                             ended));
    rows_ += out->rows - before;
    if (*ended && rows_ == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, has_header_ ? ": has a header line but no data rows"
                               : ": no data rows"));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status ReadFirstLine(Dataset* out) {
    absl::string_view first;
    LineRef at;
    ASSIGN_OR_RETURN(bool any, lines_->Next(&first, &at));
    if (!any) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": is empty (no lines with content)"));
    }
    splitter_.emplace(options_.delimiter != 0 ? options_.delimiter
                                              : DetectDelimiter(first));
    RETURN_IF_ERROR(splitter_->Split(first, at));
    columns_ = splitter_->count();
    has_header_ = DecideHeader(options_.header, *splitter_);
    std::vector<std::string> header;
    if (has_header_) header = FieldNames(*splitter_);
    ASSIGN_OR_RETURN(label_column_,
                     ResolveLabelColumn(options_.label_column,
                                        has_header_ ? &header : nullptr,
                                        static_cast<int64_t>(columns_),
                                        source_));
    cols_ = static_cast<int64_t>(columns_) - (label_column_ >= 0 ? 1 : 0);
    if (cols_ == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": no feature columns (the only column is the label)"));
    }
    for (size_t j = 0; j < header.size(); ++j) {
      if (static_cast<int64_t>(j) != label_column_) {
        feature_names_.push_back(std::move(header[j]));
      }
    }
    out->cols = cols_;
    out->feature_names = feature_names_;
    if (!has_header_) {
      RETURN_IF_ERROR(AppendRow(*splitter_, at, label_column_, out));
      ++rows_;
    }
    return absl::OkStatus();
  }

  LineReader* lines_;
  std::string source_;
  CsvOptions options_;
  std::optional<FieldSplitter> splitter_;  // set by the first line
  size_t columns_ = 0;
  int64_t label_column_ = -1;
  bool has_header_ = false;
  int64_t cols_ = 0;
  std::vector<std::string> feature_names_;
  int64_t rows_ = 0;
};

absl::StatusOr<Dataset> ParseLines(LineReader* lines,
                                   absl::string_view source_name,
                                   const CsvOptions& options) {
  RecordParser parser(lines, std::string(source_name), options);
  Dataset data;
  bool ended = false;
  RETURN_IF_ERROR(parser.Read(std::numeric_limits<int64_t>::max(), false,
                              &data, &ended));
  return data;
}

}  // namespace

struct CsvBatchReader::State {
  State(int fd, std::string source, CsvOptions options)
      : source_storage(std::move(source)),
        lines(fd, source_storage),
        parser(&lines, source_storage, std::move(options)) {}
  FilePtr file;  // set when the reader opened the file itself
  std::string source_storage;
  LineReader lines;
  RecordParser parser;
  absl::Status error;
  bool ended = false;
};

CsvBatchReader::CsvBatchReader(int fd, std::string source_name,
                               CsvOptions options)
    : state_(std::make_unique<State>(fd, std::move(source_name),
                                     std::move(options))) {}

CsvBatchReader::~CsvBatchReader() = default;

absl::StatusOr<std::unique_ptr<CsvBatchReader>> CsvBatchReader::OpenFile(
    const std::string& path, const CsvOptions& options) {
  ASSIGN_OR_RETURN(FilePtr file, OpenFileBounded(path, kMaxCsvFileBytes));
  auto reader = std::unique_ptr<CsvBatchReader>(
      new CsvBatchReader(fileno(file.get()), path, options));
  reader->state_->file = std::move(file);
  return reader;
}

absl::StatusOr<Dataset> CsvBatchReader::Next(int64_t max_rows,
                                             bool stop_when_idle) {
  if (!state_->error.ok()) return state_->error;
  Dataset batch;
  if (state_->ended || max_rows < 1) return batch;
  absl::Status s = state_->parser.Read(max_rows, stop_when_idle, &batch,
                                       &state_->ended);
  if (s.ok()) return batch;
  state_->error = s;
  if (batch.rows == 0) return s;
  // The whole rows before the bad line come out first; the error with the
  // next call. Drop what the bad line had added of itself.
  batch.x.resize(static_cast<size_t>(batch.rows * batch.cols));
  if (batch.labels.size() > static_cast<size_t>(batch.rows)) {
    batch.labels.resize(static_cast<size_t>(batch.rows));
  }
  return batch;
}

absl::StatusOr<Dataset> ParseCsv(absl::string_view content,
                                 absl::string_view source_name,
                                 const CsvOptions& options) {
  if (absl::StartsWith(content, kUtf8Bom)) content.remove_prefix(3);
  LineReader lines(content, source_name);
  return ParseLines(&lines, source_name, options);
}

absl::StatusOr<Dataset> ReadCsvFile(const std::string& path,
                                    const CsvOptions& options) {
  ASSIGN_OR_RETURN(FilePtr file, OpenFileBounded(path, kMaxCsvFileBytes));
  LineReader lines(fileno(file.get()), path);
  return ParseLines(&lines, path, options);
}

}  // namespace anorand
