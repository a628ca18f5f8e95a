#include "client/proto_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "google/protobuf/util/json_util.h"

namespace anorand::cli {

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = pretty;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, o);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string EnumLabel(const std::string& name, const std::string& prefix) {
  return absl::AsciiStrToLower(absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name);
}

}  // namespace anorand::cli
