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
// or by 0-based index written in decimal, "3" or "#3" (a header column whose
// name is the text itself wins over the index; "#3" is always the index).
// That column is removed from the features and parsed as 0/1 (accepted: any
// number equal to 0 or 1 such as 0, 1, 0.0, 1.0, and true/false in any
// case).
//
// Thread safety: stateless functions; safe to call concurrently.
// Failure behaviour: returns absl::InvalidArgumentError whose message names
// the source, the 1-based line and column, and the fault (ragged row,
// non-numeric text quoted and cut to 40 characters, NaN/inf, overflow, empty
// file, header without rows, unknown or duplicate label column, more than
// kMaxCsvColumns columns, a line over kMaxCsvLineBytes). ReadCsvFile adds file errors (NotFound, ...).
// Never throws.
#ifndef ANORAND_MODEL_DATA_CSV_READER_H_
#define ANORAND_MODEL_DATA_CSV_READER_H_

#include <cstddef>
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
// Refused: a line longer than this many bytes (line end excluded). The
// error names the line; memory is bounded by it, not by the file (a file of
// one huge line, or a binary file, fails after this many bytes).
inline constexpr size_t kMaxCsvLineBytes = size_t{16} << 20;

struct CsvOptions {
  // 0 = auto-detect comma or tab from the first line; else ',' or '\t' etc.
  char delimiter = 0;
  // Label column: a header name, or the 0-based index N written "N" or "#N".
  // Empty = no labels.
  std::string label_column;
  // -1 auto-detect (first line has any non-numeric field), 0 no, 1 yes.
  int header = -1;
};

// The 0-based column index a label-column spec names in index form ("8" or
// "#8", decimal digits only), or -1 when it is not in that form (a name).
int64_t LabelColumnIndex(absl::string_view spec);

// Parses `content`; `source_name` only labels error messages.
absl::StatusOr<Dataset> ParseCsv(absl::string_view content,
                                 absl::string_view source_name,
                                 const CsvOptions& options);

// Reads the file at `path` (at most kMaxCsvFileBytes) and parses it,
// streaming: the file is read in blocks, never held whole.
absl::StatusOr<Dataset> ReadCsvFile(const std::string& path,
                                    const CsvOptions& options);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_CSV_READER_H_
