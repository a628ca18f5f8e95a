// File: csv_reader.h
//
// Reads delimited text (CSV or TSV) into a Dataset. Every value must be a
// finite number that fits in a float; one optional column holds 0/1 labels.
//
// Accepted input: comma or tab delimiter (auto-detected from the first line
// unless given), an optional header line (auto-detected: a first line with
// any non-numeric field is a header), CRLF or LF line ends, a UTF-8 byte
// order mark, whitespace around fields, simple RFC 4180 double-quoted fields
// ("" inside quotes is one quote; a quoted field may not span lines), and
// blank lines at the end. Blank lines elsewhere are errors.
//
// Labels: `CsvOptions::label_column` names the label column by header name,
// or by 0-based index written "#3". That column is removed from the features
// and parsed as 0/1 (accepted: any number equal to 0 or 1 such as 0, 1, 0.0,
// 1.0, and true/false in any case).
//
// Thread safety: stateless functions; safe to call concurrently.
// Failure behaviour: returns absl::InvalidArgumentError whose message names
// the source, the 1-based line and column, and the fault (ragged row,
// non-numeric text quoted and cut to 40 characters, NaN/inf, overflow, empty
// file, header without rows, unknown or duplicate label column, more than
// kMaxCsvColumns columns). ReadCsvFile adds file errors (NotFound, ...).
// Never throws.
#ifndef ANORAND_MODEL_DATA_CSV_READER_H_
#define ANORAND_MODEL_DATA_CSV_READER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/dataset.h"

namespace anorand {

// Refused above this many fields per line.
inline constexpr int64_t kMaxCsvColumns = 100000;
// ReadCsvFile refuses files larger than this.
inline constexpr uint64_t kMaxCsvFileBytes = uint64_t{4} << 30;

struct CsvOptions {
  // 0 = auto-detect comma or tab from the first line; else ',' or '\t' etc.
  char delimiter = 0;
  // Label column: a header name, or "#N" for the 0-based index N. Empty = no
  // labels.
  std::string label_column;
  // -1 auto-detect (first line has any non-numeric field), 0 no, 1 yes.
  int header = -1;
};

// Parses `content`; `source_name` only labels error messages.
absl::StatusOr<Dataset> ParseCsv(absl::string_view content,
                                 absl::string_view source_name,
                                 const CsvOptions& options);

// Reads the file at `path` (at most kMaxCsvFileBytes) and parses it.
absl::StatusOr<Dataset> ReadCsvFile(const std::string& path,
                                    const CsvOptions& options);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_CSV_READER_H_
