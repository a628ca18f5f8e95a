#include "model/data/npy_header.h"

#include <cctype>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "model/data/number_util.h"
#include "model/status_macros.h"

namespace anorand {
namespace {

constexpr size_t kMaxDims = 32;

class DictParser {
 public:
  explicit DictParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<NpyHeader> Parse() {
    RETURN_IF_ERROR(Expect('{'));
    while (!AtChar('}')) {
      RETURN_IF_ERROR(ParseEntry());
      if (AtChar(',')) {
        ++pos_;
      } else if (!AtChar('}')) {
        return Error("expected ',' or '}'");
      }
    }
    ++pos_;
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after '}'");
    return Finish();
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("bad header dict at offset ", pos_, ": ", what));
  }

  void SkipSpace() {
    while (pos_ < text_.size() &&
           std::isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }

  // Skips whitespace, then tells whether the next character is `c`.
  bool AtChar(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }

  absl::Status Expect(char c) {
    if (!AtChar(c))
      return Error(absl::StrCat("expected '", std::string(1, c), "'"));
    ++pos_;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ParseString() {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return Error("expected a quoted string");
    }
    const char quote = text_[pos_++];
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\')
        return Error("escapes in strings are not supported");
      ++pos_;
    }
    if (pos_ >= text_.size()) return Error("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool ConsumeWord(absl::string_view word) {
    SkipSpace();
    if (text_.substr(pos_, word.size()) != word) return false;
    const size_t end = pos_ + word.size();
    if (end < text_.size() &&
        (std::isalnum(static_cast<unsigned char>(text_[end])) ||
         text_[end] == '_')) {
      return false;
    }
    pos_ = end;
    return true;
  }

  absl::StatusOr<bool> ParseBool() {
    if (ConsumeWord("True")) return true;
    if (ConsumeWord("False")) return false;
    return Error("expected True or False for 'fortran_order'");
  }

  absl::StatusOr<int64_t> ParseDim() {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
    if (pos_ == start) {
      return Error("expected a non-negative integer in 'shape'");
    }
    int64_t dim = 0;
    if (!absl::SimpleAtoi(text_.substr(start, pos_ - start), &dim)) {
      return Error("dimension in 'shape' is too large");
    }
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long.
    return dim;
  }

  absl::StatusOr<std::vector<int64_t>> ParseShape() {
    RETURN_IF_ERROR(Expect('('));
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    while (!AtChar(')')) {
      if (shape.size() >= kMaxDims) return Error("too many dimensions");
      ASSIGN_OR_RETURN(int64_t dim, ParseDim());
      shape.push_back(dim);
      trailing_comma = AtChar(',');
      if (trailing_comma) {
        ++pos_;
      } else if (!AtChar(')')) {
        return Error("expected ',' or ')' in 'shape'");
      }
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma) {
      return Error("'shape' (n) is not a tuple; a 1-tuple is written (n,)");
    }
    return shape;
  }

  absl::Status ParseEntry() {
    ASSIGN_OR_RETURN(std::string key, ParseString());
    RETURN_IF_ERROR(Expect(':'));
    if (key == "descr") {
      if (seen_descr_) return Error("duplicate key 'descr'");
      if (AtChar('['))
        return Error("structured dtypes (a list 'descr') are not supported");
      seen_descr_ = true;
      ASSIGN_OR_RETURN(header_.descr, ParseString());
    } else if (key == "fortran_order") {
      if (seen_fortran_) return Error("duplicate key 'fortran_order'");
      seen_fortran_ = true;
      ASSIGN_OR_RETURN(header_.fortran_order, ParseBool());
    } else if (key == "shape") {
      if (seen_shape_) return Error("duplicate key 'shape'");
      seen_shape_ = true;
      ASSIGN_OR_RETURN(header_.shape, ParseShape());
    } else {
      return Error(absl::StrCat("unexpected key ", QuoteForError(key),
                                " (expected descr, fortran_order, shape)"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NpyHeader> Finish() {
    if (!seen_descr_) return Error("missing key 'descr'");
    if (!seen_fortran_) return Error("missing key 'fortran_order'");
    if (!seen_shape_) return Error("missing key 'shape'");
    return std::move(header_);
  }

  absl::string_view text_;
  size_t pos_ = 0;
  NpyHeader header_;
  bool seen_descr_ = false;
  bool seen_fortran_ = false;
  bool seen_shape_ = false;
};

}  // namespace

absl::StatusOr<NpyHeader> ParseNpyHeaderDict(absl::string_view text) {
  return DictParser(text).Parse();
}

}  // namespace anorand
