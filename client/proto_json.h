// File: proto_json.h
//
// The JSON form of a response for `--format json|jsonl`: proto field names
// as in the .proto files (snake_case), enums by name, int64 as strings
// (protobuf's JSON mapping). Stateless; thread-safe.
#ifndef ANORAND_CLIENT_PROTO_JSON_H_
#define ANORAND_CLIENT_PROTO_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace anorand::cli {

// Indented when `pretty`, else one line; never ends with a line break.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// An enum value's name for a table: without `prefix`, lower case
// ("RETRAIN_STAGE_HELD", "RETRAIN_STAGE_" -> "held").
std::string EnumLabel(const std::string& name, const std::string& prefix);

}  // namespace anorand::cli

#endif  // ANORAND_CLIENT_PROTO_JSON_H_
