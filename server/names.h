// File: names.h
//
// Validation of user-supplied model and alias names. Model names become
// folder names in the store, so this check is what keeps a request from
// ever naming a path outside it.
//   model: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not "." or ".."-like
//   alias: [a-z][a-z0-9_-]{0,63}, "latest" reserved
#ifndef ANORAND_SERVER_NAMES_H_
#define ANORAND_SERVER_NAMES_H_

#include <string>

#include "absl/status/status.h"

namespace anorand {

absl::Status ValidateModelName(const std::string& name);
absl::Status ValidateAliasName(const std::string& alias);

}  // namespace anorand

#endif  // ANORAND_SERVER_NAMES_H_
