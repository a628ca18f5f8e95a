#include "client/proto_json.h"

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

}  // namespace anorand::cli
