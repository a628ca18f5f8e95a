// `anorand score`: records from a file or stdin through one StreamScore
// call, one output line per record in input order.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/result_printer.h"
#include "grpcpp/grpcpp.h"
#include "model/data/data_loader.h"

namespace anorand::cli {

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
  // Shared by the writer thread and this one.
  struct Pending {
    absl::Mutex mu;
    std::deque<v1::ScoreRequest> unanswered ABSL_GUARDED_BY(mu);  // sent or to send, oldest first
    std::string read_error ABSL_GUARDED_BY(mu);
    bool input_done ABSL_GUARDED_BY(mu) = false;
  } pending;
  int64_t records = 0, anomalies = 0;
  grpc::Status s;
  while (true) {
    // A stream lives as long as its input; --timeout bounds it only for files.
    auto ctx = from_stdin ? conn.NewStreamContext() : conn.NewContext();
    auto rw = stub->StreamScore(ctx.get());
    std::thread writer([&] {
      std::vector<v1::ScoreRequest> again;  // first what the previous stream left unanswered
      {
        absl::MutexLock lock(&pending.mu);
        again.assign(pending.unanswered.begin(), pending.unanswered.end());
      }
      for (const v1::ScoreRequest& req : again) {
        if (!rw->Write(req)) return;
      }
      v1::ScoreRequest req = base;
      while (true) {
        req.mutable_batch()->clear_values();
        auto next = input->Next(*batch, /*stop_when_idle=*/from_stdin);
        if (!next.ok()) {
          absl::MutexLock lock(&pending.mu);
          pending.read_error = std::string(next.status().message());
          pending.input_done = true;
          break;
        }
        if (next->rows == 0) break;
        req.mutable_batch()->set_num_features(static_cast<int>(next->cols));
        req.mutable_batch()->mutable_values()->Add(next->x.begin(), next->x.end());
        {
          absl::MutexLock lock(&pending.mu);
          pending.unanswered.push_back(req);
        }
        if (!rw->Write(req)) return;  // closed: stays in `unanswered`
      }
      {
        absl::MutexLock lock(&pending.mu);
        pending.input_done = true;
      }
      rw->WritesDone();
    });
    v1::ScoreResponse resp;
    while (rw->Read(&resp)) {
      int d = 0;
      {
        absl::MutexLock lock(&pending.mu);
        if (!pending.unanswered.empty()) {
          d = pending.unanswered.front().batch().num_features();
          pending.unanswered.pop_front();
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
    absl::MutexLock lock(&pending.mu);
    if (!(idle_closed && from_stdin && pending.read_error.empty() &&
          (!pending.input_done || !pending.unanswered.empty()))) {
      break;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "records %lld, anomalies %lld, %.0f records/s\n",
               static_cast<long long>(records), static_cast<long long>(anomalies),
               secs > 0 ? records / secs : 0.0);
  absl::MutexLock lock(&pending.mu);  // the writer has ended; the analysis wants the lock
  if (!pending.read_error.empty()) {
    return Fail(absl::InvalidArgumentError(pending.read_error));
  }
  if (!s.ok()) return ReportRpcError(s);
  return kExitOk;
}

}  // namespace anorand::cli
