#include "server/retrain_store.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "server/names.h"

namespace anorand {
namespace {

constexpr char kPolicyFile[] = "retrain_policy.json";
constexpr char kHistoryFile[] = "history.jsonl";
constexpr int64_t kMaxPolicyBytes = 1 << 16;
constexpr int64_t kMaxHistoryBytes = int64_t{64} << 20;

absl::Status OutOfRange(const char* field, const char* range, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat("policy.", field, " must be ", range, " (got ", value, ")"));
}

}  // namespace

v1::RetrainPolicy WithRetrainDefaults(v1::RetrainPolicy p) {
  if (p.score_psi_threshold() == 0) p.set_score_psi_threshold(0.25);
  if (p.sustained_seconds() == 0) p.set_sustained_seconds(3600);
  if (p.shadow_sample_fraction() == 0) p.set_shadow_sample_fraction(0.1);
  if (p.min_compared_records() == 0) p.set_min_compared_records(1000);
  if (p.max_shadow_only_flagged_ratio() == 0) p.set_max_shadow_only_flagged_ratio(0.05);
  return p;
}

absl::Status ValidateRetrainPolicy(const v1::RetrainPolicy& p) {
  if (p.alias().empty()) {
    return absl::InvalidArgumentError(
        "policy.alias is required: the alias whose version is watched and moved");
  }
  if (p.alias() == "latest") {
    return absl::InvalidArgumentError(
        "policy.alias cannot be 'latest' (it always means the newest version); name an alias");
  }
  if (absl::Status s = ValidateAliasName(p.alias()); !s.ok()) return s;
  // The negated comparisons also refuse NaN.
  if (!(p.score_psi_threshold() > 0 && p.score_psi_threshold() <= 100)) {
    return OutOfRange("score_psi_threshold", "in (0, 100]", p.score_psi_threshold());
  }
  if (!(p.sustained_seconds() > 0 && p.sustained_seconds() <= 86400 * 366)) {
    return OutOfRange("sustained_seconds", "in (0, 31622400]", p.sustained_seconds());
  }
  if (!(p.shadow_sample_fraction() > 0 && p.shadow_sample_fraction() <= 1)) {
    return OutOfRange("shadow_sample_fraction", "in (0, 1]", p.shadow_sample_fraction());
  }
  if (p.min_compared_records() < 2 || p.min_compared_records() > 10000000) {
    return OutOfRange("min_compared_records", "in [2, 10000000]",
                      static_cast<double>(p.min_compared_records()));
  }
  if (!(p.min_rank_correlation() >= -1 && p.min_rank_correlation() <= 1)) {
    return OutOfRange("min_rank_correlation", "in [-1, 1]", p.min_rank_correlation());
  }
  if (!(p.max_shadow_only_flagged_ratio() > 0 && p.max_shadow_only_flagged_ratio() <= 1)) {
    return OutOfRange("max_shadow_only_flagged_ratio", "in (0, 1]",
                      p.max_shadow_only_flagged_ratio());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::RetrainPolicy>> RetrainStore::ReadPolicy(
    const std::string& model) const {
  auto bytes = store_.ReadModelFile(model, kPolicyFile, kMaxPolicyBytes);
  if (!bytes.ok()) return bytes.status();
  if (!*bytes) return std::optional<v1::RetrainPolicy>();
  v1::RetrainPolicy policy;
  const std::string path = absl::StrCat(store_.root(), "/", model, "/", kPolicyFile);
  if (!google::protobuf::util::JsonStringToMessage(**bytes, &policy).ok()) {
    return absl::DataLossError(absl::StrCat(path, ": not a RetrainPolicy in JSON"));
  }
  if (absl::Status s = ValidateRetrainPolicy(policy); !s.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": ", s.message()));
  }
  return std::optional<v1::RetrainPolicy>(std::move(policy));
}

absl::Status RetrainStore::WritePolicy(const std::string& model,
                                       const std::optional<v1::RetrainPolicy>& policy) const {
  if (!policy) return store_.RemoveModelFile(model, kPolicyFile);
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(*policy, &json, options).ok()) {
    return absl::InternalError("cannot write the retrain policy as JSON");
  }
  return store_.ReplaceModelFile(model, kPolicyFile, json);
}

absl::Status RetrainStore::Append(const std::string& model, const v1::ModelEvent& event) const {
  std::string line;
  if (!google::protobuf::util::MessageToJsonString(event, &line).ok()) {
    return absl::InternalError("cannot write a model event as JSON");
  }
  return store_.AppendModelFile(model, kHistoryFile, absl::StrCat("\n", line, "\n"));
}

absl::StatusOr<std::vector<v1::ModelEvent>> RetrainStore::History(const std::string& model,
                                                                  int limit) const {
  auto bytes = store_.ReadModelFileTail(model, kHistoryFile, kMaxHistoryBytes);
  if (!bytes.ok()) return bytes.status();
  std::deque<v1::ModelEvent> kept;
  if (*bytes) {
    for (absl::string_view line : absl::StrSplit(**bytes, '\n', absl::SkipWhitespace())) {
      v1::ModelEvent event;
      if (!google::protobuf::util::JsonStringToMessage(std::string(line), &event).ok()) continue;
      kept.push_back(std::move(event));
      if (static_cast<int>(kept.size()) > limit) kept.pop_front();
    }
  }
  return std::vector<v1::ModelEvent>(kept.begin(), kept.end());
}

}  // namespace anorand
