// File: data_loader.h
//
// One entry point that turns a data file (or uploaded bytes) into a Dataset,
// choosing the reader from the file extension or the given format:
//   .csv .tsv .txt  delimited text (csv_reader.h); labels from
//                   LoadOptions::csv.label_column
//   .npy            one array: the features
//   .npz            member `x_member` holds the features (an archive without
//                   it but with exactly one array: that array); member
//                   `y_member`, when present, holds 0/1 labels; other
//                   members are ignored
// For .npy and .npz, LoadOptions::csv.label_column in index form ("8" or
// "#8", 0-based) names a column of the feature array that is removed from
// the features and holds the 0/1 labels instead (an NPZ's y member is then
// ignored); a column name is refused (arrays have none).
// X must be 1-D (read as one column) or 2-D with at least one row and one
// column; y must be 1-D (or rows x 1) with one 0/1 value per row of X.
// Values are narrowed to float; a finite value beyond float range is an
// error, never a silent infinity.
//
// Thread safety: stateless functions; safe to call concurrently.
// Failure behaviour: InvalidArgumentError naming the source and the fault
// (unknown extension with the supported list, missing member with the list
// of members, wrong shapes, labels other than 0/1, missing labels when
// required, overflow); NotFound etc. for unreadable paths. Never throws.
#ifndef ANORAND_MODEL_DATA_DATA_LOADER_H_
#define ANORAND_MODEL_DATA_DATA_LOADER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/data/csv_reader.h"
#include "model/data/npy_reader.h"
#include "model/dataset.h"

namespace anorand {

struct LoadOptions {
  CsvOptions csv;
  std::string x_member = "X";   // NPZ member with the features.
  std::string y_member = "y";   // NPZ member with the labels (optional).
  bool require_labels = false;  // Fail when the source yields no labels.
  // Most bytes the members of an NPZ may inflate to, together; over it:
  // ResourceExhaustedError before anything is inflated (npy_reader.h).
  uint64_t max_decompressed_bytes = kMaxNpzTotalBytes;
  // Polled while CSV is parsed (unless csv.cancelled is set) and while NPZ
  // members inflate, about every 64 KiB: true stops the read with
  // CancelledError. Empty: never cancelled.
  std::function<bool()> cancelled;
};

// Loads the file at `path`; the extension (case-insensitive) picks the
// reader.
absl::StatusOr<Dataset> LoadDataset(const std::string& path,
                                    const LoadOptions& options);

// Parses uploaded bytes; `format` is "csv", "tsv", "txt", "npy" or "npz"
// (case-insensitive).
absl::StatusOr<Dataset> DatasetFromBytes(absl::string_view bytes,
                                         absl::string_view format,
                                         const LoadOptions& options);

// Reads a data file in batches of records, with LoadDataset's formats,
// options and errors: CSV and TSV stream through CsvBatchReader (memory: one
// batch and one line, whatever the file size); NPY and NPZ are read whole,
// within their readers' size bounds, and handed out in slices. One thread at
// a time.
class DatasetBatches {
 public:
  // The file at `path`; the extension picks the reader as in LoadDataset.
  static absl::StatusOr<std::unique_ptr<DatasetBatches>> Open(
      const std::string& path, const LoadOptions& options);
  // CSV read from `fd` (not owned), e.g. stdin; `source` labels errors.
  static std::unique_ptr<DatasetBatches> FromCsvStream(
      int fd, std::string source, const LoadOptions& options);

  // At most `max_rows` records; rows == 0 at the end. `stop_when_idle`: see
  // CsvBatchReader::Next (ignored for NPY and NPZ). With
  // LoadOptions::require_labels, a first batch without labels is an error.
  absl::StatusOr<Dataset> Next(int64_t max_rows, bool stop_when_idle);

 private:
  DatasetBatches() = default;

  std::string source_;
  bool require_labels_ = false;
  bool first_ = true;
  std::unique_ptr<CsvBatchReader> csv_;  // CSV and TSV
  std::optional<Dataset> whole_;         // NPY and NPZ
  int64_t at_ = 0;                       // next row of whole_
};

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_DATA_LOADER_H_
