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

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_DATA_LOADER_H_
