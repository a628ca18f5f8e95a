// `anorand retrain`: a model's retraining policy (set, pause, resume,
// clear), where its loop stands (status) and its history of steps.
#include <cstdio>
#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "anorand/v1/models.grpc.pb.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/proto_json.h"
#include "grpcpp/grpcpp.h"

namespace anorand::cli {
namespace {

std::string UtcTime(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void PrintStatus(const v1::ModelInfo& m) {
  if (!m.has_retrain()) {
    std::printf("%s has no retrain policy\n", m.name().c_str());
    return;
  }
  const v1::RetrainStatus& r = m.retrain();
  const v1::RetrainPolicy& p = r.policy();
  std::printf("%s: %s", m.name().c_str(), EnumLabel(v1::RetrainStage_Name(r.stage()), "RETRAIN_STAGE_").c_str());
  if (!r.job_id().empty()) std::printf(", job %s", r.job_id().c_str());
  if (r.candidate_version() > 0) {
    std::printf(", candidate version %lld", static_cast<long long>(r.candidate_version()));
  }
  if (r.since_unix_ms() > 0) std::printf(", since %s", UtcTime(r.since_unix_ms()).c_str());
  std::printf("\npolicy: alias %s, score PSI > %g for %g s; shadow sample %g; promote after %lld "
              "records if rank correlation >= %g and candidate-only flags <= %g%s\n",
              p.alias().c_str(), p.score_psi_threshold(), p.sustained_seconds(),
              p.shadow_sample_fraction(), static_cast<long long>(p.min_compared_records()),
              p.min_rank_correlation(), p.max_shadow_only_flagged_ratio(),
              p.paused() ? " (paused)" : "");
}

void PrintHistory(const v1::ModelHistory& h) {
  std::printf("%-20s %-22s %-8s %-9s %-22s %s\n", "TIME", "EVENT", "VERSION", "CANDIDATE", "JOB",
              "DETAIL");
  for (const auto& e : h.events()) {
    std::printf("%-20s %-22s %-8lld %-9s %-22s %s\n", UtcTime(e.unix_ms()).c_str(),
                EnumLabel(v1::ModelEventKind_Name(e.kind()), "MODEL_EVENT_").c_str(),
                static_cast<long long>(e.version()),
                e.candidate_version() ? std::to_string(e.candidate_version()).c_str() : "-",
                e.job_id().empty() ? "-" : e.job_id().c_str(), e.detail().c_str());
  }
}

}  // namespace

int RunRetrain(const Argv& argv) {
  const auto specs = WithConnectionFlags({
      {"alias", true, "set: the alias watched and moved (required)"},
      {"psi", true, "set: score PSI threshold (default 0.25)"},
      {"for", true, "set: seconds the PSI must stay above it (default 3600)"},
      {"sample", true, "set: share of records the candidate scores in shadow (default 0.1)"},
      {"min-records", true, "set: records compared before judging (default 1000)"},
      {"min-correlation", true, "set: least rank correlation to promote (default 0)"},
      {"max-new-flags", true,
       "set: most records flagged by the candidate alone, as a share (default 0.05)"},
      {"paused", false, "set: keep the policy but take no step"},
      {"limit", true, "history: the most recent events (default 100)"},
      {"format", true, "table (default) or json"}});
  const char* const usage_head =
      "usage: anorand retrain set|status|clear|history NAME [flags]\n"
      "  set NAME --alias A [--psi X] [--for SECONDS] [--sample F] [--min-records N]\n"
      "           [--min-correlation R] [--max-new-flags F] [--paused]\n"
      "                     retrain NAME on its reservoir when the score drift of alias A\n"
      "                     stays above X, shadow the new version, promote it to A when the\n"
      "                     comparison passes; setting it again releases a held candidate\n"
      "  status NAME        the policy and the loop's stage\n"
      "  clear NAME         remove the policy\n"
      "  history NAME [--limit N]   every step taken, oldest first\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  auto& [a, conn, usage] = *setup;
  const auto& pos = a.positional();
  if (pos.size() != 2) return UsageError("retrain needs a subcommand and a model NAME", usage);
  const std::string& sub = pos[0];
  const std::string& name = pos[1];
  const std::string format = a.Get("format", "table");
  if (format != "table" && format != "json") {
    return UsageError(absl::StrCat("--format must be table or json; got '", format, "'"), usage);
  }
  const bool json = format == "json";
  auto stub = v1::Models::NewStub(conn.channel);
  auto ctx = conn.NewContext();

  if (sub == "history") {
    auto limit = a.GetInt("limit", 100);
    if (!limit.ok() || *limit < 1 || *limit > 1000000) {
      return UsageError("--limit must be an integer in [1, 1000000]", usage);
    }
    v1::GetModelHistoryRequest req;
    req.set_model_name(name);
    req.set_limit(static_cast<int32_t>(*limit));
    v1::ModelHistory resp;
    grpc::Status s = stub->GetModelHistory(ctx.get(), req, &resp);
    if (!s.ok()) return ReportRpcError(s);
    if (json) {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else {
      PrintHistory(resp);
    }
    return kExitOk;
  }
  v1::ModelInfo resp;
  grpc::Status s;
  if (sub == "set") {
    if (!a.Has("alias")) return UsageError("retrain set needs --alias A", usage);
    v1::SetRetrainPolicyRequest req;
    req.set_model_name(name);
    v1::RetrainPolicy* p = req.mutable_policy();
    p->set_alias(a.Get("alias"));
    struct DoubleFlag {
      const char* flag;
      void (v1::RetrainPolicy::*set)(double);
    };
    for (const DoubleFlag& f :
         {DoubleFlag{"psi", &v1::RetrainPolicy::set_score_psi_threshold},
          DoubleFlag{"for", &v1::RetrainPolicy::set_sustained_seconds},
          DoubleFlag{"sample", &v1::RetrainPolicy::set_shadow_sample_fraction},
          DoubleFlag{"min-correlation", &v1::RetrainPolicy::set_min_rank_correlation},
          DoubleFlag{"max-new-flags", &v1::RetrainPolicy::set_max_shadow_only_flagged_ratio}}) {
      auto v = a.GetDouble(f.flag, 0);
      if (!v.ok()) return UsageError(absl::StrCat("--", f.flag, " must be a number"), usage);
      (p->*f.set)(*v);
    }
    auto records = a.GetInt("min-records", 0);
    if (!records.ok()) return UsageError("--min-records must be an integer", usage);
    p->set_min_compared_records(*records);
    p->set_paused(a.Has("paused"));
    s = stub->SetRetrainPolicy(ctx.get(), req, &resp);
  } else if (sub == "clear") {
    v1::ClearRetrainPolicyRequest req;
    req.set_model_name(name);
    s = stub->ClearRetrainPolicy(ctx.get(), req, &resp);
  } else if (sub == "status") {
    v1::GetModelRequest req;
    req.mutable_model()->set_name(name);
    s = stub->GetModel(ctx.get(), req, &resp);
  } else {
    return UsageError(absl::StrCat("unknown retrain subcommand '", sub, "'"), usage);
  }
  if (!s.ok()) return ReportRpcError(s);
  if (json) {
    std::printf("%s\n", ToJson(resp.retrain(), true).c_str());
  } else {
    PrintStatus(resp);
  }
  return kExitOk;
}

}  // namespace anorand::cli
