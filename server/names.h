// File: names.h
//
// Validation of user-supplied model and alias names. Model names become
// folder names in the store, so this check is what keeps a request from
// ever naming a path outside it.
//   model: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not "." or ".."-like
//   alias: [a-z][a-z0-9_-]{0,63}, "latest" reserved
//   version: >= 1 where a request names one version to act on (Load,
//   Unload, Delete, SetAlias); >= 0 where 0 means "no selector" (GetModel,
//   ExportVersion, ImportVersion: 0 = the next free number)
// Each returns INVALID_ARGUMENT with a message saying what is accepted.
#ifndef ANORAND_SERVER_NAMES_H_
#define ANORAND_SERVER_NAMES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace anorand {

absl::Status ValidateModelName(const std::string& name);
absl::Status ValidateAliasName(const std::string& alias);
absl::Status ValidateVersionNumber(int64_t version);
absl::Status ValidateVersionSelector(int64_t version);

}  // namespace anorand

#endif  // ANORAND_SERVER_NAMES_H_
