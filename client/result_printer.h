// File: result_printer.h
//
// The one printer of scored records for `score` (server answers) and
// `score-local` (the model library's outputs): CSV lines
//   index,score,is_anomaly,noise_probability,reconstruction_probability
// (then one contribution per feature with --explain), or JSON lines with
// the same fields by name (plus model_version when known).
//
// Thread safety: writes stdout; call from one thread.
#ifndef ANORAND_CLIENT_RESULT_PRINTER_H_
#define ANORAND_CLIENT_RESULT_PRINTER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "anorand/v1/scoring.pb.h"

namespace anorand::cli {

enum class ResultFormat { kCsv, kJsonl };

// "csv" or "jsonl"; INVALID_ARGUMENT otherwise.
absl::StatusOr<ResultFormat> ParseResultFormat(const std::string& name);

// One block of scored records, as pointers into the scorer's outputs; not
// owned, valid while printing.
struct ScoredRows {
  int64_t first_index = 0;  // position of the first record in the input
  int64_t rows = 0;
  const float* score = nullptr;
  const bool* is_anomaly = nullptr;
  const float* noise_probability = nullptr;
  const float* reconstruction_probability = nullptr;
  const float* contributions = nullptr;  // rows x features, or null
  int features = 0;
  int64_t model_version = 0;  // 0: not printed
};

// The rows of a ScoreResponse; `features` is the request's width.
ScoredRows RowsOf(const v1::ScoreResponse& response, int64_t first_index, int features);

// The CSV header line (with '\n'): the column names of PrintResults' lines.
std::string CsvHeader(bool explain, int features);

// Writes one line per record to stdout and flushes.
void PrintResults(const ScoredRows& rows, ResultFormat format);

}  // namespace anorand::cli

#endif  // ANORAND_CLIENT_RESULT_PRINTER_H_
