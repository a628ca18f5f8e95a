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
#include <functional>
#include <memory>
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
  // Polled every 4,096 rows when set; true ends the read with CANCELLED.
  std::function<bool()> cancelled;
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

// Reads CSV records in batches from a file descriptor (stdin, a pipe, a
// file) by the same rules and with the same errors as ParseCsv: the first
// line decides delimiter, header and label column for the whole input.
// Memory holds one block of input, the current line (at most
// kMaxCsvLineBytes) and one batch, never the whole input.
//
//   CsvBatchReader in(STDIN_FILENO, "stdin", options);
//   while (true) {
//     ASSIGN_OR_RETURN(Dataset batch, in.Next(1024, /*stop_when_idle=*/true));
//     if (batch.rows == 0) break;  // end of input
//     ...
//   }
//
// Thread safety: one thread at a time. Failure behaviour: the first error
// ends the reader. The whole rows read before the bad line are returned
// first, as a batch; the error comes with the next call and every later one.
class CsvBatchReader {
 public:
  // Reads `fd`, which it does not own: it must stay open while the reader
  // lives. `source_name` labels error messages.
  CsvBatchReader(int fd, std::string source_name, CsvOptions options);
  // Opens the regular file at `path` (at most kMaxCsvFileBytes; the errors of
  // ReadCsvFile) and reads it.
  static absl::StatusOr<std::unique_ptr<CsvBatchReader>> OpenFile(
      const std::string& path, const CsvOptions& options);
  ~CsvBatchReader();
  CsvBatchReader(const CsvBatchReader&) = delete;
  CsvBatchReader& operator=(const CsvBatchReader&) = delete;

  // The next batch of at most `max_rows` rows, with cols and feature_names
  // set; rows == 0 once the input has ended. With `stop_when_idle`, a batch
  // that holds at least one row is returned as soon as no further input is
  // ready to read, so records fed slowly through a pipe (`tail -f`) come out
  // as they arrive. An input without content, or with a header and no rows,
  // is an error (at the end of the input for the latter).
  absl::StatusOr<Dataset> Next(int64_t max_rows, bool stop_when_idle);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_CSV_READER_H_
