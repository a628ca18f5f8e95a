// health, score and models: the commands that talk to a server.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/proto_json.h"
#include "client/result_printer.h"
#include "grpcpp/grpcpp.h"
#include "model/data/data_loader.h"
#include "model/model_file.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace anorand::cli {

int RunHealth(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"service", true, "service to ask about (default: the server as a whole)"}});
  const char* const usage_head =
      "usage: anorand health [--address HOST:PORT] [--service anorand.v1.Scoring]\n"
      "Exit 0 only when the server answers SERVING (a container health check).\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  auto& [a, conn, usage] = *setup;
  auto stub = grpc::health::v1::Health::NewStub(conn.channel);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(a.Get("service"));
  grpc::health::v1::HealthCheckResponse resp;
  auto ctx = conn.NewContext();
  grpc::Status s = stub->Check(ctx.get(), req, &resp);
  if (!s.ok()) return ReportRpcError(s);
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
  return serving ? kExitOk : kExitFailed;
}

int RunScore(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"model", true, "model name"},
                           {"version", true, "model version (default: latest ready)"},
                           {"alias", true, "model alias, e.g. production"},
                           {"data", true, "records: .csv/.tsv/.npy/.npz, or - for CSV on stdin (default)"},
                           {"label-column", true, "CSV column to drop before scoring"},
                           {"batch", true, "records per request (default 1024)"},
                           {"explain", false, "add per-feature contributions"},
                           {"format", true, "csv (default) or jsonl"}});
  const char* const usage_head =
      "usage: anorand score --model NAME [--version N | --alias A] [--data FILE | -] [--batch N]\n"
      "Streams the records through StreamScore and prints one line per record, in input order.\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  auto& [a, conn, usage] = *setup;
  if (!a.Has("model")) return UsageError("--model is required", usage);
  if (a.Has("version") && a.Has("alias")) return UsageError("give --version or --alias, not both", usage);
  auto batch = a.GetInt("batch", 1024);
  auto version = a.GetInt("version", 0);
  if (!batch.ok() || *batch < 1 || *batch > 65536) return UsageError("--batch must be in [1, 65536]", usage);
  if (!version.ok() || *version < 0) return UsageError("--version must be a positive integer", usage);
  auto format = ParseResultFormat(a.Get("format", "csv"));
  if (!format.ok()) return UsageError(std::string(format.status().message()), usage);
  const bool explain = a.Has("explain");
  const std::string data_path = a.Get("data", "-");

  // Batches of records: CSV streamed from stdin or a file (memory: one batch
  // and one line), NPY/NPZ read whole within their readers' bounds.
  const bool from_stdin = data_path == "-";
  LoadOptions lo;
  lo.csv.label_column = a.Get("label-column");
  std::unique_ptr<DatasetBatches> input;
  if (from_stdin) {
    input = DatasetBatches::FromCsvStream(STDIN_FILENO, "stdin", lo);
  } else {
    auto opened = DatasetBatches::Open(data_path, lo);
    if (!opened.ok()) return Fail(opened.status());
    input = *std::move(opened);
  }

  v1::ScoreRequest base;
  base.mutable_model()->set_name(a.Get("model"));
  if (*version > 0) base.mutable_model()->set_version(*version);
  if (a.Has("alias")) base.mutable_model()->set_alias(a.Get("alias"));
  base.set_explain(explain);

  // One stream, or several from stdin: the server closes a stream that sat
  // idle for --stream_idle_seconds; the next input then opens a new one and
  // the requests it had not answered are sent again, in order.
  auto stub = v1::Scoring::NewStub(conn.channel);
  const auto start = std::chrono::steady_clock::now();
  std::mutex mu;
  std::deque<v1::ScoreRequest> unanswered;  // sent or to send, oldest first
  std::string read_error;
  bool input_done = false;
  int64_t records = 0, anomalies = 0;
  grpc::Status s;
  while (true) {
    // A stream lives as long as its input; --timeout bounds it only for files.
    auto ctx = from_stdin ? conn.NewStreamContext() : conn.NewContext();
    auto rw = stub->StreamScore(ctx.get());
    std::thread writer([&] {
      std::unique_lock lock(mu);
      // First what the previous stream left unanswered.
      std::vector<v1::ScoreRequest> again(unanswered.begin(), unanswered.end());
      lock.unlock();
      for (const v1::ScoreRequest& req : again) {
        if (!rw->Write(req)) return;
      }
      v1::ScoreRequest req = base;
      while (true) {
        req.mutable_batch()->clear_values();
        auto next = input->Next(*batch, /*stop_when_idle=*/from_stdin);
        if (!next.ok()) {
          lock.lock();
          read_error = std::string(next.status().message());
          input_done = true;
          lock.unlock();
          break;
        }
        if (next->rows == 0) break;
        req.mutable_batch()->set_num_features(static_cast<int>(next->cols));
        req.mutable_batch()->mutable_values()->Add(next->x.begin(), next->x.end());
        lock.lock();
        unanswered.push_back(req);
        lock.unlock();
        if (!rw->Write(req)) return;  // closed: stays in `unanswered`
      }
      lock.lock();
      input_done = true;
      lock.unlock();
      rw->WritesDone();
    });
    v1::ScoreResponse resp;
    while (rw->Read(&resp)) {
      int d = 0;
      {
        std::lock_guard lock(mu);
        if (!unanswered.empty()) {
          d = unanswered.front().batch().num_features();
          unanswered.pop_front();
        }
      }
      PrintResults(RowsOf(resp, records, explain ? d : 0), *format);
      records += resp.scores_size();
      for (bool f : resp.is_anomaly()) anomalies += f;
    }
    writer.join();
    s = rw->Finish();
    const bool idle_closed = s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
                             s.error_message().find("--stream_idle_seconds") != std::string::npos;
    std::lock_guard lock(mu);
    if (!(idle_closed && from_stdin && read_error.empty() &&
          (!input_done || !unanswered.empty()))) {
      break;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "records %lld, anomalies %lld, %.0f records/s\n",
               static_cast<long long>(records), static_cast<long long>(anomalies),
               secs > 0 ? records / secs : 0.0);
  if (!read_error.empty()) {
    return Fail(absl::InvalidArgumentError(read_error));
  }
  if (!s.ok()) return ReportRpcError(s);
  return kExitOk;
}

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

}  // namespace

int RunModels(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"version", true, "version number"},
                           {"alias", true, "alias name"},
                           {"force", false, "delete even if an alias points at the version"},
                           {"out", true, "export: file to write"},
                           {"file", true, "import: model file to upload"},
                           {"format", true, "table (default) or json"}});
  const char* const usage_head =
      "usage: anorand models list|show|load|unload|delete|alias|unalias|export|import [NAME] [flags]\n"
      "  list                          every model and version on the server\n"
      "  show NAME [--version N | --alias A]\n"
      "  load|unload|delete NAME --version N [--force]\n"
      "  alias NAME --alias A --version N    point alias A at version N\n"
      "  unalias NAME --alias A\n"
      "  export NAME [--version N | --alias A] --out FILE\n"
      "  import NAME --file FILE [--version N] [--alias A]\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  auto& [a, conn, usage] = *setup;
  const auto& pos = a.positional();
  if (pos.empty()) return UsageError("missing subcommand", usage);
  const std::string sub = pos[0];
  const std::string name = pos.size() > 1 ? pos[1] : "";
  const bool json = a.Get("format", "table") == "json";
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
