// WriteCsv, declared in synthetic_data.h.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "model/data/synthetic_data.h"
#include "model/status_macros.h"

namespace anorand {
namespace {

constexpr absl::string_view kLabelName = "label";

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

absl::Status CheckShape(const Dataset& data, bool include_labels) {
  if (data.rows < 0 || data.cols < 1 ||
      data.x.size() != static_cast<size_t>(data.rows * data.cols)) {
    return absl::InvalidArgumentError(
        absl::StrCat("WriteCsv: dataset holds ", data.x.size(),
                     " values, not rows ", data.rows, " x cols ", data.cols));
  }
  if (!data.feature_names.empty() &&
      data.feature_names.size() != static_cast<size_t>(data.cols)) {
    return absl::InvalidArgumentError("WriteCsv: feature_names size != cols");
  }
  if (include_labels && data.labels.size() != static_cast<size_t>(data.rows)) {
    return absl::InvalidArgumentError(
        absl::StrCat("WriteCsv: labels requested but the dataset has ",
                     data.labels.size(), " labels for ", data.rows, " rows"));
  }
  return absl::OkStatus();
}

// A header field that reads back as `name` (quoted when needed).
absl::StatusOr<std::string> HeaderField(const std::string& name) {
  if (name.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("WriteCsv: feature name with a line break: ", name));
  }
  const bool quote = name.empty() ||
                     name.find_first_of(",\"\t") != std::string::npos ||
                     name.front() == ' ' || name.back() == ' ';
  if (!quote) return name;
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

absl::StatusOr<std::string> HeaderLine(const Dataset& data,
                                       bool include_labels) {
  std::string line;
  for (int64_t j = 0; j < data.cols; ++j) {
    const std::string name = data.feature_names.empty() ? absl::StrCat("f", j)
                                                        : data.feature_names[j];
    if (include_labels && name == kLabelName) {
      return absl::InvalidArgumentError(
          "WriteCsv: a feature is named \"label\", like the label column");
    }
    auto field = HeaderField(name);
    if (!field.ok()) return field.status();
    absl::StrAppend(&line, j == 0 ? "" : ",", *field);
  }
  if (include_labels) absl::StrAppend(&line, ",", kLabelName);
  line.push_back('\n');
  return line;
}

absl::StatusOr<std::string> RowLine(const Dataset& data, int64_t r,
                                    bool include_labels) {
  std::string line;
  const float* row = data.row(r);
  for (int64_t j = 0; j < data.cols; ++j) {
    if (!std::isfinite(row[j])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "WriteCsv: non-finite value at row ", r, ", column ", j));
    }
    absl::StrAppendFormat(&line, "%s%.9g", j == 0 ? "" : ",", row[j]);
  }
  if (include_labels) absl::StrAppend(&line, ",", data.labels[r]);
  line.push_back('\n');
  return line;
}

absl::Status IoError(const std::string& path, absl::string_view what, int err) {
  return absl::InternalError(
      absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
}

}  // namespace

absl::Status WriteCsv(const Dataset& data, const std::string& path,
                      bool include_labels) {
  RETURN_IF_ERROR(CheckShape(data, include_labels));
  ASSIGN_OR_RETURN(std::string header, HeaderLine(data, include_labels));
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (file == nullptr) return IoError(path, "cannot open for writing", errno);
  std::string text = std::move(header);
  for (int64_t r = 0; r < data.rows; ++r) {
    ASSIGN_OR_RETURN(std::string line, RowLine(data, r, include_labels));
    text += line;
    if (text.size() >= (size_t{1} << 20) || r + 1 == data.rows) {
      if (std::fwrite(text.data(), 1, text.size(), file.get()) != text.size()) {
        return IoError(path, "write failed", errno);
      }
      text.clear();
    }
  }
  if (!text.empty() &&
      std::fwrite(text.data(), 1, text.size(), file.get()) != text.size()) {
    return IoError(path, "write failed", errno);
  }
  if (std::fclose(file.release()) != 0)
    return IoError(path, "close failed", errno);
  return absl::OkStatus();
}

}  // namespace anorand
