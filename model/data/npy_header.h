// File: npy_header.h
//
// Parser for the Python dict literal in an .npy header, for example
//   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
// Internal to the data readers (see npy_reader.h for the accepted format).
//
// Thread safety: pure function. Failure behaviour: InvalidArgumentError whose
// message describes the fault and its byte offset, without a source name
// (the caller adds it). Never throws.
#ifndef ANORAND_MODEL_DATA_NPY_HEADER_H_
#define ANORAND_MODEL_DATA_NPY_HEADER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace anorand {

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;  // Each entry >= 0; at most 32 entries.
};

// Strict: exactly the keys descr, fortran_order and shape, each once, in any
// order; single- or double-quoted strings without escapes; True/False;
// a tuple of non-negative integers ("(3,)" for one dimension); an optional
// trailing comma; only whitespace after the closing brace.
absl::StatusOr<NpyHeader> ParseNpyHeaderDict(absl::string_view text);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_NPY_HEADER_H_
