// File: csv_fuzzer.cc
//
// libFuzzer target for the CSV reader (model/data/csv_reader.h): bytes ->
// ParseCsv under three option sets, so one input exercises the automatic
// delimiter and header detection, a label column by index on a file read
// without a header, and a label column by name with the delimiter given
// (tab if the input has any, else comma) and a header line required.
// Whatever is accepted must be a consistent Dataset: rows x cols finite
// floats, one 0/1 label per row or none, one name per column or none.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "model/data/csv_reader.h"

namespace {

void ParseAndCheck(absl::string_view text, const anorand::CsvOptions& options) {
  auto data = anorand::ParseCsv(text, "fuzz.csv", options);
  if (!data.ok()) return;
  FUZZ_CHECK(data->rows >= 1 && data->cols >= 1);
  FUZZ_CHECK(data->x.size() == static_cast<size_t>(data->rows * data->cols));
  for (float v : data->x) FUZZ_CHECK(std::isfinite(v));
  FUZZ_CHECK(data->labels.empty() ||
             data->labels.size() == static_cast<size_t>(data->rows));
  for (int label : data->labels) FUZZ_CHECK(label == 0 || label == 1);
  FUZZ_CHECK(options.label_column.empty() || data->has_labels());
  FUZZ_CHECK(data->feature_names.empty() ||
             data->feature_names.size() == static_cast<size_t>(data->cols));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  ParseAndCheck(text, {});

  anorand::CsvOptions by_index;
  by_index.header = 0;
  by_index.label_column = "#0";
  ParseAndCheck(text, by_index);

  anorand::CsvOptions by_name;
  by_name.header = 1;
  // Explicit, as the loader sets it for .tsv: tab whenever there is one.
  by_name.delimiter = text.find('\t') != absl::string_view::npos ? '\t' : ',';
  by_name.label_column = "label";
  ParseAndCheck(text, by_name);
  return 0;
}
