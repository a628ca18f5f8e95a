#include "model/data/number_util.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace anorand {
namespace {

constexpr size_t kMaxQuotedChars = 40;
// Doubles at or above this magnitude round to infinity as floats
// (FLT_MAX plus half a unit in the last place).
constexpr double kFloatOverflowThreshold = 0x1.ffffffp127;

// from_chars reports both overflow and underflow as out of range; strtod
// tells them apart (HUGE_VAL on overflow). Only runs on that rare path.
NumberFault ResolveOutOfRange(absl::string_view text, double* out) {
  const std::string copy(text);
  const double v = std::strtod(copy.c_str(), nullptr);
  if (std::isinf(v)) return NumberFault::kOverflow;
  *out = v;
  return NumberFault::kOk;
}

}  // namespace

NumberFault ParseDouble(absl::string_view text, double* out) {
  if (!text.empty() && text[0] == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text[0] == '-') return NumberFault::kNotANumber;
  }
  if (text.empty()) return NumberFault::kNotANumber;
  const char* first = text.data();
  const char* last = first + text.size();
  double v = 0;
  const std::from_chars_result r =
      std::from_chars(first, last, v, std::chars_format::general);
  if (r.ec == std::errc::invalid_argument || r.ptr != last) {
    return NumberFault::kNotANumber;
  }
  if (r.ec == std::errc::result_out_of_range) {
    return ResolveOutOfRange(text, out);
  }
  if (!std::isfinite(v)) return NumberFault::kNotFinite;
  *out = v;
  return NumberFault::kOk;
}

bool FitsInFloat(double v) {
  return std::isfinite(v) && std::fabs(v) < kFloatOverflowThreshold;
}

std::string QuoteForError(absl::string_view text) {
  const bool cut = text.size() > kMaxQuotedChars;
  if (cut) text = text.substr(0, kMaxQuotedChars);
  return absl::StrCat("\"", absl::CHexEscape(text), cut ? "...\"" : "\"");
}

}  // namespace anorand
