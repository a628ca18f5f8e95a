// `anorand feedback`: operators' labels on records for a model (add),
// what is stored (list) and the records themselves (export, as CSV that
// `anorand train --data` and `feedback add --label-column label` read
// back).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "anorand/v1/feedback.grpc.pb.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/proto_json.h"
#include "grpcpp/grpcpp.h"
#include "model/data/data_loader.h"

namespace anorand::cli {
namespace {

// Records per AddFeedback request.
constexpr int64_t kRecordsPerRequest = 10000;

// A record's id: "row:" and the FNV-1a 64-bit hash of its values' bits, so
// that sending the same file again stores nothing twice, and the same
// record under another label is refused (ALREADY_EXISTS).
std::string ContentId(const float* values, int64_t n) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], sizeof bits);
    for (int b = 0; b < 4; ++b) {
      h ^= (bits >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return absl::StrFormat("row:%016x", h);
}

void PrintCounts(const v1::FeedbackCounts& c) {
  std::printf("%-24s %8d %10lld %10lld %10lld %8lld\n", c.model_name().c_str(), c.num_features(),
              static_cast<long long>(c.anomalies()), static_cast<long long>(c.normal()),
              static_cast<long long>(c.max_records()), static_cast<long long>(c.skipped_lines()));
}

int Add(const Args& a, const Connection& conn, const std::string& usage) {
  if (!a.Has("data")) return UsageError("feedback add needs --data FILE", usage);
  if (a.Has("label") == a.Has("label-column")) {
    return UsageError("give --label anomaly|normal (every record) or --label-column C (1 = "
                      "anomaly, 0 = normal), one of the two", usage);
  }
  v1::FeedbackLabel every = v1::FEEDBACK_LABEL_UNSPECIFIED;
  if (a.Has("label")) {
    const std::string l = a.Get("label");
    if (l == "anomaly") every = v1::FEEDBACK_LABEL_ANOMALY;
    else if (l == "normal") every = v1::FEEDBACK_LABEL_NORMAL;
    else return UsageError(absl::StrCat("--label must be anomaly or normal; got '", l, "'"), usage);
  }
  LoadOptions lo;
  lo.csv.label_column = a.Get("label-column");
  lo.require_labels = a.Has("label-column");
  auto data = LoadDataset(a.Get("data"), lo);
  if (!data.ok()) return Fail(data.status());
  if (data->rows == 0) return Fail(absl::InvalidArgumentError(a.Get("data") + " holds no records"));
  // Identical rows share a content id: send each once.
  std::map<std::string, int> label_of;
  v1::AddFeedbackRequest req;
  req.set_model_name(a.Get("model"));
  req.set_num_features(static_cast<int32_t>(data->cols));
  auto stub = v1::Feedback::NewStub(conn.channel);
  int64_t added = 0, duplicates = 0, repeated = 0, sent = 0;
  v1::FeedbackCounts stored;
  auto flush = [&]() -> int {
    if (req.ids_size() == 0) return kExitOk;
    v1::AddFeedbackResponse resp;
    auto ctx = conn.NewContext();
    grpc::Status s = stub->AddFeedback(ctx.get(), req, &resp);
    if (!s.ok()) {
      if (sent > 0) {
        std::fprintf(stderr, "the first %lld records were stored; sending the file again stores "
                     "nothing twice\n", static_cast<long long>(sent));
      }
      return ReportRpcError(s);
    }
    sent += req.ids_size();
    added += resp.added();
    duplicates += resp.duplicates();
    stored = resp.stored();
    req.clear_values();
    req.clear_labels();
    req.clear_ids();
    return kExitOk;
  };
  for (int64_t r = 0; r < data->rows; ++r) {
    const float* row = data->row(r);
    int label = every;
    if (every == v1::FEEDBACK_LABEL_UNSPECIFIED) {
      const int y = data->labels[r];
      if (y != 0 && y != 1) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "row ", r, " of ", a.Get("data"), " has label ", y, "; use 1 (anomaly) or 0 (normal)")));
      }
      label = y == 1 ? v1::FEEDBACK_LABEL_ANOMALY : v1::FEEDBACK_LABEL_NORMAL;
    }
    const std::string id = ContentId(row, data->cols);
    auto [it, fresh] = label_of.emplace(id, label);
    if (!fresh) {
      if (it->second != label) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "row ", r, " of ", a.Get("data"), " repeats an earlier row with the other label; "
            "label each record once")));
      }
      ++repeated;
      continue;
    }
    req.mutable_values()->Add(row, row + data->cols);
    req.add_labels(static_cast<v1::FeedbackLabel>(label));
    req.add_ids(id);
    if (req.ids_size() >= kRecordsPerRequest) {
      if (int e = flush(); e != kExitOk) return e;
    }
  }
  if (int e = flush(); e != kExitOk) return e;
  std::printf("added %lld, already stored %lld%s; %s holds %lld anomalies and %lld normal records "
              "(at most %lld)\n",
              static_cast<long long>(added), static_cast<long long>(duplicates),
              repeated ? absl::StrCat(", repeated rows skipped ", repeated).c_str() : "",
              stored.model_name().c_str(), static_cast<long long>(stored.anomalies()),
              static_cast<long long>(stored.normal()),
              static_cast<long long>(stored.max_records()));
  return kExitOk;
}

int List(const Args& a, const Connection& conn, bool json) {
  v1::ListFeedbackRequest req;
  req.set_model_name(a.Get("model"));
  v1::ListFeedbackResponse resp;
  auto ctx = conn.NewContext();
  auto stub = v1::Feedback::NewStub(conn.channel);
  grpc::Status s = stub->ListFeedback(ctx.get(), req, &resp);
  if (!s.ok()) return ReportRpcError(s);
  if (json) {
    std::printf("%s\n", ToJson(resp, true).c_str());
    return kExitOk;
  }
  std::printf("%-24s %8s %10s %10s %10s %8s\n", "MODEL", "FEATURES", "ANOMALIES", "NORMAL", "MAX",
              "SKIPPED");
  for (const auto& c : resp.models()) PrintCounts(c);
  return kExitOk;
}

int Export(const Args& a, const Connection& conn, const std::string& usage) {
  if (!a.Has("model")) return UsageError("feedback export needs --model M", usage);
  if (!a.Has("out")) return UsageError("feedback export needs --out FILE.csv", usage);
  const std::string out_path = a.Get("out");
  v1::ExportFeedbackRequest req;
  req.set_model_name(a.Get("model"));
  auto ctx = conn.NewStreamContext();
  auto stub = v1::Feedback::NewStub(conn.channel);
  auto reader = stub->ExportFeedback(ctx.get(), req);
  std::string csv;
  v1::FeedbackRecords page;
  int64_t n = 0;
  bool header = false;
  while (reader->Read(&page)) {
    if (!header) {
      for (int c = 0; c < page.num_features(); ++c) absl::StrAppend(&csv, "x", c, ",");
      csv += "label\n";
      header = true;
    }
    for (const auto& r : page.records()) {
      for (float v : r.values()) absl::StrAppend(&csv, absl::StrFormat("%.9g", v), ",");
      csv += r.label() == v1::FEEDBACK_LABEL_ANOMALY ? "1\n" : "0\n";
      ++n;
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return ReportRpcError(s);
  FILE* f = std::fopen(out_path.c_str(), "wb");
  if (!f || std::fwrite(csv.data(), 1, csv.size(), f) != csv.size() || std::fclose(f) != 0) {
    return Fail(absl::InternalError(absl::StrCat("cannot write ", out_path, ": ",
                                                 std::strerror(errno))));
  }
  std::printf("wrote %lld records to %s (label column 'label': 1 anomaly, 0 normal)\n",
              static_cast<long long>(n), out_path.c_str());
  return kExitOk;
}

}  // namespace

int RunFeedback(const Argv& argv) {
  const auto specs = WithConnectionFlags({
      {"model", true, "the model the feedback is for (list: only this one)"},
      {"data", true, "add: records, .csv/.tsv/.npy/.npz, the model's features"},
      {"label", true, "add: anomaly or normal, for every record of --data"},
      {"label-column", true, "add: or a column of --data: 1 = anomaly, 0 = normal"},
      {"out", true, "export: the CSV file to write"},
      {"format", true, "list: table (default) or json"}});
  const char* const usage_head =
      "usage: anorand feedback add|list|export [flags]\n"
      "  add --model M --data FILE (--label anomaly|normal | --label-column C)\n"
      "                     store labelled records for M; a record's id is its values' hash,\n"
      "                     so sending a file again stores nothing twice\n"
      "  list [--model M]   what is stored, per model\n"
      "  export --model M --out FILE.csv   the stored records, features then 'label'\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  const auto& [a, conn, usage] = *setup;
  const auto& pos = a.positional();
  if (pos.size() != 1) return UsageError("feedback needs one subcommand: add, list or export", usage);
  const std::string format = a.Get("format", "table");
  if (format != "table" && format != "json") {
    return UsageError(absl::StrCat("--format must be table or json; got '", format, "'"), usage);
  }
  if (pos[0] == "add") {
    if (!a.Has("model")) return UsageError("feedback add needs --model M", usage);
    return Add(a, conn, usage);
  }
  if (pos[0] == "list") return List(a, conn, format == "json");
  if (pos[0] == "export") return Export(a, conn, usage);
  return UsageError(absl::StrCat("unknown feedback subcommand '", pos[0], "'"), usage);
}

}  // namespace anorand::cli
