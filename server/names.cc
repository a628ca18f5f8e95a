#include "server/names.h"

#include "absl/strings/str_cat.h"

namespace anorand {
namespace {

std::string Shown(const std::string& s) {
  return s.size() > 64 ? absl::StrCat(s.substr(0, 64), "...") : s;
}

}  // namespace

absl::Status ValidateModelName(const std::string& name) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model name '", Shown(name), "' is invalid: ", why,
        "; use 1 to 128 of A-Z a-z 0-9 . _ - starting with a letter or digit"));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 128) return bad("it is longer than 128 characters");
  const char c0 = name[0];
  if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || (c0 >= '0' && c0 <= '9'))) {
    return bad("it must start with a letter or digit");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return bad("it contains a character outside the allowed set");
  }
  return absl::OkStatus();
}

absl::Status ValidateAliasName(const std::string& alias) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(
        absl::StrCat("alias '", Shown(alias), "' is invalid: ", why,
                     "; use 1 to 64 of a-z 0-9 _ - starting with a letter"));
  };
  if (alias.empty()) return bad("it is empty");
  if (alias.size() > 64) return bad("it is longer than 64 characters");
  if (alias == "latest") return bad("'latest' is reserved (it means the newest ready version)");
  if (alias[0] < 'a' || alias[0] > 'z') return bad("it must start with a lowercase letter");
  for (char c : alias) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return bad("it contains a character outside the allowed set");
  }
  return absl::OkStatus();
}

absl::Status ValidateVersionNumber(int64_t version) {
  if (version >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "version ", version, " is invalid: versions are numbered from 1; give the version to act "
      "on (`anorand models show NAME` lists them)"));
}

absl::Status ValidateVersionSelector(int64_t version) {
  if (version >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "version ", version, " is invalid: give a version >= 1, or 0 (or none) for the default"));
}

}  // namespace anorand
