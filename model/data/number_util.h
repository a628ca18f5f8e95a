// File: number_util.h
//
// Small numeric helpers shared by the data readers: locale-independent text
// to double parsing and checked double to float narrowing.
//
// Thread safety: pure functions. Failure behaviour: results are reported by
// return value; nothing throws and nothing has undefined behaviour for any
// input (a double outside float range is never cast).
#ifndef ANORAND_MODEL_DATA_NUMBER_UTIL_H_
#define ANORAND_MODEL_DATA_NUMBER_UTIL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace anorand {

enum class NumberFault {
  kOk,
  kNotANumber,  // Not decimal floating-point syntax (whole text must match).
  kNotFinite,   // Spelled nan / inf / infinity.
  kOverflow,    // Finite syntax whose magnitude exceeds double range.
};

// Parses `text` (no surrounding whitespace; an optional leading '+' or '-')
// with std::from_chars, independent of the C locale. Values that underflow
// become 0 or a subnormal, as strtod does.
NumberFault ParseDouble(absl::string_view text, double* out);

// True when `v` is finite and rounds to a finite float.
bool FitsInFloat(double v);

// Text for an error message: at most 40 characters of `text` (then "..."),
// double-quoted, with control and non-ASCII bytes escaped.
std::string QuoteForError(absl::string_view text);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_NUMBER_UTIL_H_
