// File: npy_fuzzer.cc
//
// libFuzzer target for the NPY reader (model/data/npy_reader.h): bytes ->
// ParseNpy (magic, version, header dict, dtype, shape, data) and, for
// arrays it accepts, the loader's NPY path (DatasetFromBytes "npy": shape
// checks, float narrowing). Whatever is accepted must be self-consistent:
// as many values as the shape says, every one finite, and a Dataset of
// rows x cols floats.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "model/data/data_loader.h"
#include "model/data/npy_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto array = anorand::ParseNpy(bytes, "fuzz.npy");
  if (!array.ok()) return 0;
  FUZZ_CHECK(array->shape.size() <= 2);
  int64_t count = 1;
  for (int64_t dim : array->shape) {
    FUZZ_CHECK(dim >= 0);
    count *= dim;
  }
  FUZZ_CHECK(static_cast<size_t>(count) == array->data.size());
  for (double v : array->data) FUZZ_CHECK(std::isfinite(v));
  // Parses again, then converts to floats.
  auto dataset = anorand::DatasetFromBytes(bytes, "npy", {});
  if (dataset.ok()) {
    FUZZ_CHECK(dataset->rows >= 1 && dataset->cols >= 1);
    FUZZ_CHECK(dataset->x.size() ==
               static_cast<size_t>(dataset->rows * dataset->cols));
    FUZZ_CHECK(dataset->labels.empty());
  }
  return 0;
}
