#include "model/data/data_loader.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/data/npy_reader.h"
#include "model/data/number_util.h"
#include "model/status_macros.h"

namespace anorand {
namespace {

constexpr absl::string_view kSupported = ".csv, .tsv, .txt, .npy, .npz";

enum class Format { kCsv, kTsv, kNpy, kNpz, kUnknown };

Format FormatFromName(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "csv" || lower == "txt") return Format::kCsv;
  if (lower == "tsv") return Format::kTsv;
  if (lower == "npy") return Format::kNpy;
  if (lower == "npz") return Format::kNpz;
  return Format::kUnknown;
}

absl::string_view Extension(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return "";
  }
  return absl::string_view(path).substr(dot + 1);
}

absl::Status Fail(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

CsvOptions CsvFor(Format format, const LoadOptions& options) {
  CsvOptions out = options.csv;
  if (!out.cancelled) out.cancelled = options.cancelled;
  if (format == Format::kTsv && out.delimiter == 0) out.delimiter = '\t';
  return out;
}

absl::Status CheckLabelsPresent(const Dataset& data, const LoadOptions& options,
                                absl::string_view source) {
  if (!options.require_labels || data.has_labels()) return absl::OkStatus();
  return Fail(source,
              "labels are required but the source has none (CSV: set "
              "the label column; NPZ: add a y member; NPY files hold "
              "no labels)");
}

// Copies X into `out` as floats; 1-D X becomes one column.
absl::Status FillFeatures(const NpyArray& x, absl::string_view what,
                          Dataset* out) {
  if (x.shape.empty() || x.shape.size() > 2) {
    return Fail(what, absl::StrCat("features must be a 1-D or 2-D array, got ",
                                   x.shape.size(), " dimensions"));
  }
  out->rows = x.shape[0];
  out->cols = x.shape.size() == 2 ? x.shape[1] : 1;
  if (out->rows == 0 || out->cols == 0) {
    return Fail(what, absl::StrCat("features are empty (", out->rows, " rows, ",
                                   out->cols, " columns)"));
  }
  out->x.resize(x.data.size());
  for (size_t k = 0; k < x.data.size(); ++k) {
    if (!FitsInFloat(x.data[k])) {
      const auto cols = static_cast<size_t>(out->cols);
      return Fail(what, absl::StrCat("value ", x.data[k], " at row ", k / cols,
                                     ", column ", k % cols,
                                     " is outside the range of float"));
    }
    out->x[k] = static_cast<float>(x.data[k]);
  }
  return absl::OkStatus();
}

// Copies y into `out->labels`; it must hold one 0/1 value per row.
absl::Status FillLabels(const NpyArray& y, absl::string_view what,
                        Dataset* out) {
  const bool column = y.shape.size() == 2 && y.shape[1] == 1;
  if (y.shape.size() != 1 && !column) {
    return Fail(what, absl::StrCat("labels must be a 1-D array, got ",
                                   y.shape.size(), " dimensions"));
  }
  if (y.shape[0] != out->rows) {
    return Fail(what, absl::StrCat("labels have ", y.shape[0],
                                   " entries but the features have ", out->rows,
                                   " rows"));
  }
  out->labels.resize(y.data.size());
  for (size_t k = 0; k < y.data.size(); ++k) {
    const double v = y.data[k];
    if (v != 0.0 && v != 1.0) {
      return Fail(what,
                  absl::StrCat("label ", v, " at index ", k, " is not 0 or 1"));
    }
    out->labels[k] = v == 1.0 ? 1 : 0;
  }
  return absl::OkStatus();
}

std::string MemberNames(const std::map<std::string, NpyArray>& arrays) {
  std::vector<std::string> names;
  for (const auto& entry : arrays) names.push_back(QuoteForError(entry.first));
  return absl::StrJoin(names, ", ");
}

// The label column of an array (CsvOptions::label_column in index form)
// leaves the features and becomes the labels. Arrays have no column names,
// so a name is refused.
absl::Status TakeLabelColumn(const std::string& spec, absl::string_view what,
                             Dataset* data) {
  if (spec.empty()) return absl::OkStatus();
  const int64_t column = LabelColumnIndex(spec);
  if (column < 0) {
    return Fail(what, absl::StrCat("label column ", QuoteForError(spec),
                                   " is a name, but array columns have no "
                                   "names; give its 0-based index (\"8\")"));
  }
  if (column >= data->cols) {
    return Fail(what, absl::StrCat("label column ", spec,
                                   " is out of range: the features have ",
                                   data->cols, " columns (0 to ",
                                   data->cols - 1, ")"));
  }
  if (data->cols == 1) {
    return Fail(what, "no feature columns (the only column is the label)");
  }
  const int64_t cols = data->cols;
  std::vector<float> x;
  x.reserve(static_cast<size_t>(data->rows * (cols - 1)));
  data->labels.assign(static_cast<size_t>(data->rows), 0);
  for (int64_t r = 0; r < data->rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float v = data->x[static_cast<size_t>(r * cols + c)];
      if (c != column) {
        x.push_back(v);
      } else if (v == 0.0f || v == 1.0f) {
        data->labels[static_cast<size_t>(r)] = v == 1.0f ? 1 : 0;
      } else {
        return Fail(what, absl::StrCat("label ", v, " at row ", r,
                                       ", column ", column,
                                       " is not 0 or 1"));
      }
    }
  }
  data->x = std::move(x);
  data->cols = cols - 1;
  return absl::OkStatus();
}

absl::StatusOr<Dataset> FromNpz(const std::map<std::string, NpyArray>& arrays,
                                absl::string_view source,
                                const LoadOptions& options) {
  auto x = arrays.find(options.x_member);
  // Without the named member, an archive's only array is the features.
  if (x == arrays.end() && arrays.size() == 1) x = arrays.begin();
  if (x == arrays.end()) {
    return Fail(
        source,
        absl::StrCat("no member ", QuoteForError(options.x_member),
                     " for the features and more than one array to choose "
                     "from; members: ", MemberNames(arrays)));
  }
  Dataset data;
  const std::string what =
      absl::StrCat(source, ": member ", QuoteForError(x->first));
  RETURN_IF_ERROR(FillFeatures(x->second, what, &data));
  if (!options.csv.label_column.empty()) {
    // The label column replaces any y member.
    RETURN_IF_ERROR(TakeLabelColumn(options.csv.label_column, what, &data));
    return data;
  }
  const auto y = arrays.find(options.y_member);
  if (y != arrays.end() && y != x) {
    RETURN_IF_ERROR(FillLabels(
        y->second, absl::StrCat(source, ": member ", QuoteForError(y->first)),
        &data));
  }
  return data;
}

absl::StatusOr<Dataset> FromNpy(const NpyArray& x, absl::string_view source,
                                const LoadOptions& options) {
  Dataset data;
  RETURN_IF_ERROR(FillFeatures(x, source, &data));
  RETURN_IF_ERROR(TakeLabelColumn(options.csv.label_column, source, &data));
  return data;
}

absl::Status UnknownFormat(absl::string_view source, absl::string_view ext) {
  return Fail(source, absl::StrCat("unsupported format ", QuoteForError(ext),
                                   "; supported: ", kSupported));
}

absl::StatusOr<Dataset> LoadByFormat(const std::string& path, Format format,
                                     const LoadOptions& options) {
  switch (format) {
    case Format::kCsv:
    case Format::kTsv:
      return ReadCsvFile(path, CsvFor(format, options));
    case Format::kNpy: {
      ASSIGN_OR_RETURN(NpyArray x, ParseNpyFile(path));
      return FromNpy(x, path, options);
    }
    case Format::kNpz: {
      ASSIGN_OR_RETURN(auto arrays, ReadNpz(path, options.max_decompressed_bytes, options.cancelled));
      return FromNpz(arrays, path, options);
    }
    case Format::kUnknown:
      break;
  }
  return UnknownFormat(path, Extension(path));
}

absl::StatusOr<Dataset> ParseByFormat(absl::string_view bytes, Format format,
                                      absl::string_view source,
                                      const LoadOptions& options) {
  switch (format) {
    case Format::kCsv:
    case Format::kTsv:
      return ParseCsv(bytes, source, CsvFor(format, options));
    case Format::kNpy: {
      ASSIGN_OR_RETURN(NpyArray x, ParseNpy(bytes, source));
      return FromNpy(x, source, options);
    }
    case Format::kNpz: {
      ASSIGN_OR_RETURN(auto arrays, ParseNpz(bytes, source, options.max_decompressed_bytes, options.cancelled));
      return FromNpz(arrays, source, options);
    }
    case Format::kUnknown:
      break;
  }
  return Fail(source, "unsupported format");
}

}  // namespace

absl::StatusOr<Dataset> LoadDataset(const std::string& path,
                                    const LoadOptions& options) {
  const Format format = FormatFromName(Extension(path));
  if (format == Format::kUnknown) return UnknownFormat(path, Extension(path));
  ASSIGN_OR_RETURN(Dataset data, LoadByFormat(path, format, options));
  RETURN_IF_ERROR(CheckLabelsPresent(data, options, path));
  return data;
}

absl::StatusOr<Dataset> DatasetFromBytes(absl::string_view bytes,
                                         absl::string_view format,
                                         const LoadOptions& options) {
  const Format parsed = FormatFromName(format);
  if (parsed == Format::kUnknown) {
    return Fail("uploaded data",
                absl::StrCat("unsupported format ", QuoteForError(format),
                             "; supported: csv, tsv, txt, npy, npz"));
  }
  const std::string source =
      absl::StrCat("uploaded ", absl::AsciiStrToLower(format), " data");
  ASSIGN_OR_RETURN(Dataset data, ParseByFormat(bytes, parsed, source, options));
  RETURN_IF_ERROR(CheckLabelsPresent(data, options, source));
  return data;
}

absl::StatusOr<std::unique_ptr<DatasetBatches>> DatasetBatches::Open(
    const std::string& path, const LoadOptions& options) {
  const Format format = FormatFromName(Extension(path));
  if (format == Format::kUnknown) return UnknownFormat(path, Extension(path));
  std::unique_ptr<DatasetBatches> batches(new DatasetBatches());
  batches->source_ = path;
  batches->require_labels_ = options.require_labels;
  if (format == Format::kCsv || format == Format::kTsv) {
    ASSIGN_OR_RETURN(batches->csv_,
                     CsvBatchReader::OpenFile(path, CsvFor(format, options)));
  } else {
    ASSIGN_OR_RETURN(Dataset whole, LoadByFormat(path, format, options));
    batches->whole_ = std::move(whole);
  }
  return batches;
}

std::unique_ptr<DatasetBatches> DatasetBatches::FromCsvStream(
    int fd, std::string source, const LoadOptions& options) {
  std::unique_ptr<DatasetBatches> batches(new DatasetBatches());
  batches->source_ = source;
  batches->require_labels_ = options.require_labels;
  batches->csv_ =
      std::make_unique<CsvBatchReader>(fd, std::move(source), options.csv);
  return batches;
}

absl::StatusOr<Dataset> DatasetBatches::Next(int64_t max_rows,
                                             bool stop_when_idle) {
  Dataset batch;
  if (csv_ != nullptr) {
    ASSIGN_OR_RETURN(batch, csv_->Next(max_rows, stop_when_idle));
  } else if (whole_.has_value() && max_rows > 0) {
    const Dataset& w = *whole_;
    const int64_t rows = std::min(max_rows, w.rows - at_);
    batch.cols = w.cols;
    batch.feature_names = w.feature_names;
    if (rows > 0) {
      batch.rows = rows;
      batch.x.assign(w.x.begin() + at_ * w.cols,
                     w.x.begin() + (at_ + rows) * w.cols);
      if (w.has_labels()) {
        batch.labels.assign(w.labels.begin() + at_,
                            w.labels.begin() + at_ + rows);
      }
      at_ += rows;
    }
  }
  if (first_ && batch.rows > 0) {
    first_ = false;
    LoadOptions check;
    check.require_labels = require_labels_;
    RETURN_IF_ERROR(CheckLabelsPresent(batch, check, source_));
  }
  return batch;
}

}  // namespace anorand
