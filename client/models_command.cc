// `anorand models`: the Models API's subcommands (list, show, load,
// unload, delete, alias, unalias, export, import, shadow, unshadow,
// compare, drift).
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "anorand/v1/models.grpc.pb.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/proto_json.h"
#include "grpcpp/grpcpp.h"
#include "model/model_file.h"

namespace anorand::cli {

namespace {

void PrintVersionTable(const v1::ModelInfo& m) {
  for (const auto& v : m.versions()) {
    std::string aliases;
    for (const auto& al : v.aliases()) absl::StrAppend(&aliases, aliases.empty() ? "" : ",", al);
    std::printf("%-24s %-8lld %-10s %-9d %-10.4g %s\n", m.name().c_str(),
                static_cast<long long>(v.version()),
                v1::VersionState_Name(v.state()).substr(14).c_str(), v.input_features(),
                v.score_stats().threshold(), aliases.c_str());
  }
}

void PrintShadow(const v1::ModelInfo& m) {
  if (!m.has_shadow()) return;
  const v1::Shadow& sh = m.shadow();
  std::printf("shadow: %s, sample %g\n",
              sh.version() ? absl::StrCat("version ", sh.version()).c_str()
                           : absl::StrCat("alias ", sh.alias()).c_str(),
              sh.sample_fraction());
}

void PrintComparison(const v1::CompareShadowResponse& r) {
  if (!r.has_shadow()) std::printf("%s has no shadow\n", r.model_name().c_str());
  std::printf("%-8s %-8s %-10s %-8s %-9s %-13s %-12s %-15s %s\n", "VERSION", "SHADOW",
              "COMPARED", "WINDOW", "SPEARMAN", "SERVING_ONLY", "SHADOW_ONLY",
              "SERVING_P50/99", "SHADOW_P50/99");
  for (const auto& c : r.comparisons()) {
    std::printf("%-8lld %-8lld %-10lld %-8lld %-9.4f %-13.4f %-12.4f %-15s %s\n",
                static_cast<long long>(c.version()), static_cast<long long>(c.shadow_version()),
                static_cast<long long>(c.compared_records()),
                static_cast<long long>(c.window_records()), c.rank_correlation(),
                c.serving_only_flagged_ratio(), c.shadow_only_flagged_ratio(),
                absl::StrFormat("%.4f/%.4f", c.serving_scores().p50(), c.serving_scores().p99())
                    .c_str(),
                absl::StrFormat("%.4f/%.4f", c.shadow_scores().p50(), c.shadow_scores().p99())
                    .c_str());
  }
  std::printf("dropped (shadow queue full): %lld\n",
              static_cast<long long>(r.dropped_records()));
}

void PrintDrift(const v1::DriftReport& r) {
  std::printf("%s version %lld\n", r.model_name().c_str(), static_cast<long long>(r.version()));
  if (!r.tracked()) {
    std::printf("drift is not tracked: the server runs with --drift_window_records=0, or the "
                "model file has no drift profile (retrain it to get one)\n");
    return;
  }
  std::printf("records: %lld observed, %lld in the window (of %lld)\n",
              static_cast<long long>(r.observed_records()),
              static_cast<long long>(r.window_records()),
              static_cast<long long>(r.window_capacity()));
  std::printf("score PSI: %.4f\nout of training range: %.4f of the records\n", r.score_psi(),
              r.out_of_range_ratio());
  std::printf("%-6s %-32s %-9s %s\n", "INDEX", "FEATURE", "PSI", "OUT_OF_RANGE");
  for (const auto& f : r.worst_features()) {
    std::printf("%-6d %-32s %-9.4f %.4f\n", f.index(), f.name().c_str(), f.psi(),
                f.out_of_range_ratio());
  }
}

}  // namespace

int RunModels(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"version", true, "version number"},
                           {"alias", true, "alias name"},
                           {"force", false, "delete even if an alias points at the version"},
                           {"out", true, "export: file to write"},
                           {"file", true, "import: model file to upload"},
                           {"sample", true, "shadow: share of records the shadow scores, in (0, 1]"},
                           {"top", true, "drift: features to list, worst first (default 10)"},
                           {"format", true, "table (default) or json"}});
  const char* const usage_head =
      "usage: anorand models list|show|load|unload|delete|alias|unalias|export|import|shadow|unshadow|compare|drift\n"
      "       [NAME] [flags]\n"
      "  list                          every model and version on the server\n"
      "  show NAME [--version N | --alias A]\n"
      "  load|unload|delete NAME --version N [--force]\n"
      "  alias NAME --alias A --version N    point alias A at version N\n"
      "  unalias NAME --alias A\n"
      "  export NAME [--version N | --alias A] --out FILE\n"
      "  import NAME --file FILE [--version N] [--alias A]\n"
      "  shadow NAME (--version N | --alias A) --sample F   score a share F of NAME's records\n"
      "                                with that version too, off the response path\n"
      "  unshadow NAME\n"
      "  compare NAME                  how the shadow compares with the serving version\n"
      "  drift NAME [--version N | --alias A] [--top K]   how recent records compare with\n"
      "                                the training data (PSI per feature and of the score)\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  auto& [a, conn, usage] = *setup;
  const auto& pos = a.positional();
  if (pos.empty()) return UsageError("missing subcommand", usage);
  const std::string sub = pos[0];
  const std::string name = pos.size() > 1 ? pos[1] : "";
  const std::string format = a.Get("format", "table");
  if (format != "table" && format != "json") {
    return UsageError(absl::StrCat("--format must be table or json; got '", format, "'"), usage);
  }
  const bool json = format == "json";
  auto version = a.GetInt("version", 0);
  if (!version.ok() || *version < 0) return UsageError("--version must be a positive integer", usage);
  auto stub = v1::Models::NewStub(conn.channel);
  auto ctx = conn.NewContext();
  auto need_name = [&]() { return name.empty(); };

  if (sub == "list") {
    v1::ListModelsResponse resp;
    grpc::Status s = stub->ListModels(ctx.get(), v1::ListModelsRequest(), &resp);
    if (!s.ok()) return ReportRpcError(s);
    if (json) {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else {
      std::printf("%-24s %-8s %-10s %-9s %-10s %s\n", "MODEL", "VERSION", "STATE", "FEATURES",
                  "THRESHOLD", "ALIASES");
      for (const auto& m : resp.models()) PrintVersionTable(m);
    }
    return kExitOk;
  }
  if (need_name()) return UsageError(absl::StrCat("models ", sub, " needs a model NAME"), usage);
  if (sub == "show") {
    v1::GetModelRequest req;
    req.mutable_model()->set_name(name);
    if (*version > 0) req.mutable_model()->set_version(*version);
    if (a.Has("alias")) req.mutable_model()->set_alias(a.Get("alias"));
    v1::ModelInfo resp;
    grpc::Status s = stub->GetModel(ctx.get(), req, &resp);
    if (!s.ok()) return ReportRpcError(s);
    if (json) {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else {
      std::printf("%-24s %-8s %-10s %-9s %-10s %s\n", "MODEL", "VERSION", "STATE", "FEATURES",
                  "THRESHOLD", "ALIASES");
      PrintVersionTable(resp);
      PrintShadow(resp);
      if (resp.has_retrain()) {
        std::printf("retrain policy: %s (anorand retrain status %s)\n",
                    EnumLabel(v1::RetrainStage_Name(resp.retrain().stage()), "RETRAIN_STAGE_")
                        .c_str(),
                    name.c_str());
      }
    }
    return kExitOk;
  }
  if (sub == "shadow" || sub == "unshadow") {
    v1::ModelInfo resp;
    grpc::Status s;
    if (sub == "shadow") {
      if ((*version > 0) == a.Has("alias")) {
        return UsageError("models shadow needs exactly one of --version and --alias", usage);
      }
      double sample = 0;
      if (!a.Has("sample") || !absl::SimpleAtod(a.Get("sample"), &sample) ||
          !(sample > 0 && sample <= 1)) {
        return UsageError("models shadow needs --sample F with F in (0, 1], e.g. 0.1", usage);
      }
      v1::SetShadowRequest req;
      req.set_model_name(name);
      req.set_version(*version);
      req.set_alias(a.Get("alias"));
      req.set_sample_fraction(sample);
      s = stub->SetShadow(ctx.get(), req, &resp);
    } else {
      v1::ClearShadowRequest req;
      req.set_model_name(name);
      s = stub->ClearShadow(ctx.get(), req, &resp);
    }
    if (!s.ok()) return ReportRpcError(s);
    if (json) {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else if (resp.has_shadow()) {
      PrintShadow(resp);
    } else {
      std::printf("%s has no shadow\n", name.c_str());
    }
    return kExitOk;
  }
  if (sub == "compare") {
    v1::CompareShadowRequest req;
    req.set_model_name(name);
    v1::CompareShadowResponse resp;
    grpc::Status s = stub->CompareShadow(ctx.get(), req, &resp);
    if (!s.ok()) return ReportRpcError(s);
    if (json) {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else {
      PrintComparison(resp);
    }
    return kExitOk;
  }
  if (sub == "drift") {
    v1::GetDriftRequest req;
    req.mutable_model()->set_name(name);
    if (*version > 0) req.mutable_model()->set_version(*version);
    if (a.Has("alias")) req.mutable_model()->set_alias(a.Get("alias"));
    auto top = a.GetInt("top", 10);
    if (!top.ok() || *top < 1 || *top > 100000) {
      return UsageError("--top must be an integer in [1, 100000]", usage);
    }
    req.set_top(static_cast<int32_t>(*top));
    v1::DriftReport resp;
    grpc::Status s = stub->GetDrift(ctx.get(), req, &resp);
    if (!s.ok()) return ReportRpcError(s);
    if (json) {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else {
      PrintDrift(resp);
    }
    return kExitOk;
  }
  if (sub == "load" || sub == "unload" || sub == "delete") {
    if (*version == 0) return UsageError(absl::StrCat("models ", sub, " needs --version"), usage);
    grpc::Status s;
    if (sub == "load") {
      v1::LoadVersionRequest req;
      req.set_model_name(name);
      req.set_version(*version);
      v1::VersionInfo resp;
      s = stub->LoadVersion(ctx.get(), req, &resp);
    } else if (sub == "unload") {
      v1::UnloadVersionRequest req;
      req.set_model_name(name);
      req.set_version(*version);
      v1::VersionInfo resp;
      s = stub->UnloadVersion(ctx.get(), req, &resp);
    } else {
      v1::DeleteVersionRequest req;
      req.set_model_name(name);
      req.set_version(*version);
      req.set_force(a.Has("force"));
      v1::DeleteVersionResponse resp;
      s = stub->DeleteVersion(ctx.get(), req, &resp);
    }
    if (!s.ok()) return ReportRpcError(s);
    std::printf("%s: %s version %lld\n", sub.c_str(), name.c_str(), static_cast<long long>(*version));
    return kExitOk;
  }
  if (sub == "alias" || sub == "unalias") {
    if (!a.Has("alias")) return UsageError(absl::StrCat("models ", sub, " needs --alias"), usage);
    v1::ModelInfo resp;
    grpc::Status s;
    if (sub == "alias") {
      if (*version == 0) return UsageError("models alias needs --version", usage);
      v1::SetAliasRequest req;
      req.set_model_name(name);
      req.set_alias(a.Get("alias"));
      req.set_version(*version);
      s = stub->SetAlias(ctx.get(), req, &resp);
    } else {
      v1::RemoveAliasRequest req;
      req.set_model_name(name);
      req.set_alias(a.Get("alias"));
      s = stub->RemoveAlias(ctx.get(), req, &resp);
    }
    if (!s.ok()) return ReportRpcError(s);
    for (const auto& [al, v] : resp.aliases())
      std::printf("%s -> %lld\n", al.c_str(), static_cast<long long>(v));
    return kExitOk;
  }
  if (sub == "export") {
    if (!a.Has("out")) return UsageError("models export needs --out FILE", usage);
    v1::ExportVersionRequest req;
    req.mutable_model()->set_name(name);
    if (*version > 0) req.mutable_model()->set_version(*version);
    if (a.Has("alias")) req.mutable_model()->set_alias(a.Get("alias"));
    auto reader = stub->ExportVersion(ctx.get(), req);
    std::string bytes;
    v1::ExportChunk chunk;
    int64_t exported = 0;
    while (reader->Read(&chunk)) {
      if (chunk.version()) exported = chunk.version();
      bytes += chunk.data();
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return ReportRpcError(s);
    if (absl::Status w = WriteFileAtomic(a.Get("out"), bytes); !w.ok()) {
      return Fail(w);
    }
    std::printf("exported %s version %lld to %s (%zu bytes)\n", name.c_str(),
                static_cast<long long>(exported), a.Get("out").c_str(), bytes.size());
    return kExitOk;
  }
  if (sub == "import") {
    if (!a.Has("file")) return UsageError("models import needs --file MODEL", usage);
    auto bytes = ReadFileBounded(a.Get("file"), kMaxModelBytes + kModelHeaderBytes);
    if (!bytes.ok()) {
      return Fail(bytes.status());
    }
    v1::VersionInfo resp;
    auto writer = stub->ImportVersion(ctx.get(), &resp);
    v1::ImportChunk header;
    header.mutable_header()->set_model_name(name);
    header.mutable_header()->set_version(*version);
    header.mutable_header()->set_alias(a.Get("alias"));
    bool ok = writer->Write(header);
    for (size_t at = 0; ok && at < bytes->size(); at += 1 << 20) {
      v1::ImportChunk c;
      c.set_data(bytes->substr(at, 1 << 20));
      ok = writer->Write(c);
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok()) return ReportRpcError(s);
    std::printf("imported %s version %lld\n", name.c_str(), static_cast<long long>(resp.version()));
    return kExitOk;
  }
  return UsageError(absl::StrCat("unknown subcommand '", sub, "'"), usage);
}

}  // namespace anorand::cli
