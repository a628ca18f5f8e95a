// train and jobs: remote training through the Training service.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "anorand/v1/training.grpc.pb.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/proto_json.h"
#include "model/data/file_io.h"
#include "model/params.h"

namespace anorand::cli {
namespace {

// Largest training file `train --data` uploads (the server's
// --max_upload_bytes usually refuses far less), and the chunk size.
constexpr uint64_t kMaxUploadFileBytes = uint64_t{8} << 30;
constexpr size_t kUploadChunkBytes = size_t{1} << 20;

std::string StateName(v1::JobState s) {
  const std::string n = v1::JobState_Name(s);
  return absl::StartsWith(n, "JOB_STATE_") ? n.substr(10) : n;
}

bool Terminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

std::string PhaseName(v1::JobPhase p) {
  switch (p) {
    case v1::JOB_PHASE_PREPARING: return "preparing";
    case v1::JOB_PHASE_SYNTHETIC_LABELS: return "labels";
    case v1::JOB_PHASE_TRAINING: return "training";
    case v1::JOB_PHASE_SCORING_STATISTICS: return "statistics";
    case v1::JOB_PHASE_PUBLISHING: return "publishing";
    default: return "";
  }
}

// Prints one progress message: a redrawn bar on a terminal, a line
// otherwise. The bar is the whole job (JobProgress.fraction_done, every
// member included) and never moves back: `shown` keeps the furthest
// fraction drawn.
void ShowProgress(const v1::JobProgress& p, bool tty, double* shown) {
  *shown = std::max(*shown, std::clamp(p.fraction_done(), 0.0, 1.0));
  std::string where = PhaseName(p.phase());
  if (p.members() > 1 && p.member() > 0) absl::StrAppend(&where, " ", p.member(), "/", p.members());
  if (p.phase() == v1::JOB_PHASE_TRAINING && p.epoch() > 0) {
    absl::StrAppend(&where, " epoch ", p.epoch(), "/", p.max_epochs());
  }
  if (tty) {
    const int width = 30, filled = static_cast<int>(*shown * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%-9s [%s] %3.0f%%  %-26s loss %.4f  val %.4f  %.0fs  eta %.0fs   ",
                 StateName(p.state()).c_str(), bar.c_str(), 100 * *shown, where.c_str(),
                 p.train_loss(), p.validation_loss(), p.elapsed_seconds(), p.eta_seconds());
    if (Terminal(p.state())) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr,
                 "%s %.1f%% %s train_loss %.5f bce %.5f rec %.5f val_loss %.5f elapsed %.1fs "
                 "eta %.1fs%s%s\n",
                 StateName(p.state()).c_str(), 100 * *shown, where.empty() ? "-" : where.c_str(),
                 p.train_loss(), p.classification_loss(), p.reconstruction_loss(),
                 p.validation_loss(), p.elapsed_seconds(), p.eta_seconds(),
                 p.message().empty() ? "" : " ", p.message().c_str());
  }
}

// Follows WatchJob until the job ends or SIGINT arrives (sets *interrupted).
grpc::Status Follow(v1::Training::Stub* stub, const Connection& conn, const std::string& id,
                    bool* interrupted) {
  auto ctx = conn.NewStreamContext();
  // SIGINT goes to a waiting thread, which cancels the watch (thread-safe),
  // not to a handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<bool> got_int{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGINT) {
      got_int = true;
      ctx->TryCancel();
    }
  });
  v1::WatchJobRequest req;
  req.set_job_id(id);
  auto reader = stub->WatchJob(ctx.get(), req);
  const bool tty = isatty(STDERR_FILENO);
  v1::JobProgress p;
  double shown = 0;
  while (reader->Read(&p)) ShowProgress(p, tty, &shown);
  grpc::Status s = reader->Finish();
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  *interrupted = got_int.load();
  return s;
}

grpc::Status CancelJob(v1::Training::Stub* stub, const Connection& conn, const std::string& id,
                       v1::Job* job) {
  auto ctx = conn.NewContext();
  v1::CancelJobRequest req;
  req.set_job_id(id);
  return stub->CancelJob(ctx.get(), req, job);
}

// After a watch ends: print the job and pick the exit code.
int Conclude(v1::Training::Stub* stub, const Connection& conn, const std::string& id) {
  auto ctx = conn.NewContext();
  v1::GetJobRequest req;
  req.set_job_id(id);
  v1::Job job;
  grpc::Status s = stub->GetJob(ctx.get(), req, &job);
  if (!s.ok()) return ReportRpcError(s);
  if (job.state() == v1::JOB_STATE_SUCCEEDED) {
    std::printf("job %s SUCCEEDED: %s version %lld (epochs %d, best validation loss %.5f, %.1fs)\n",
                job.id().c_str(), job.spec().model_name().c_str(),
                static_cast<long long>(job.published_version()), job.summary().epochs_run(),
                job.summary().best_validation_loss(), job.summary().seconds());
    return kExitOk;
  }
  std::printf("job %s %s%s%s\n", job.id().c_str(), StateName(job.state()).c_str(),
              job.error().empty() ? "" : ": ", job.error().c_str());
  return kExitFailed;
}

int WatchAndConclude(v1::Training::Stub* stub, const Connection& conn, const std::string& id,
                     bool cancel_on_interrupt) {
  bool interrupted = false;
  grpc::Status s = Follow(stub, conn, id, &interrupted);
  if (interrupted) {
    bool cancel = cancel_on_interrupt;
    if (!cancel && isatty(STDIN_FILENO)) {
      std::fprintf(stderr, "\ninterrupted: cancel job %s on the server? [y/N] ", id.c_str());
      std::string answer;
      std::getline(std::cin, answer);
      cancel = answer == "y" || answer == "Y" || answer == "yes";
    }
    if (cancel) {
      v1::Job job;
      grpc::Status c = CancelJob(stub, conn, id, &job);
      if (!c.ok()) return ReportRpcError(c);
      std::printf("job %s: cancel requested\n", id.c_str());
    } else {
      std::printf("job %s keeps running; follow it with `anorand jobs watch %s`\n", id.c_str(),
                  id.c_str());
    }
    return kExitFailed;
  }
  if (!s.ok()) return ReportRpcError(s);
  return Conclude(stub, conn, id);
}

}  // namespace

int RunTrain(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"name", true, "model name (the new version goes there)"},
                           {"data", true, "training data file: .csv/.tsv/.npy/.npz, uploaded"},
                           {"data-path", true, "or: a file under the server's --data_dir"},
                           {"from-reservoir", false, "or: the model's recent traffic (server --reservoir_records)"},
                           {"label-column", true, "column with labels: 1 = known anomaly, 0 = unlabelled"},
                           {"param", true, "training parameter NAME=VALUE (repeatable)"},
                           {"promote", true, "move this alias to the new version on success"},
                           {"description", true, "free text kept in the job record"},
                           {"include-feedback", false, "also train on the model's stored feedback (anorand feedback add)"},
                           {"wait", false, "follow the job until it ends (progress on stderr)"},
                           {"cancel-on-interrupt", false, "with --wait: Ctrl-C cancels the job"}});
  const char* const usage_head =
      "usage: anorand train --name NAME (--data FILE | --data-path PATH | --from-reservoir)\n"
      "                     [--param NAME=VALUE ...] [--include-feedback]\n"
      "                     [--promote ALIAS] [--wait [--cancel-on-interrupt]]\n"
      "Submits a training job; prints its id. With --wait, follows it to the end: exit 0 when\n"
      "it succeeded, 1 when it failed or was cancelled.\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  const auto& [a, conn, usage] = *setup;
  if (!a.Has("name")) return UsageError("--name is required", usage);
  if (a.Has("data") + a.Has("data-path") + a.Has("from-reservoir") != 1) {
    return UsageError("give one of --data, --data-path or --from-reservoir", usage);
  }
  v1::JobSpec spec;
  spec.set_model_name(a.Get("name"));
  spec.set_label_column(a.Get("label-column"));
  spec.set_promote_to_alias(a.Get("promote"));
  spec.set_description(a.Get("description"));
  spec.set_include_feedback(a.Has("include-feedback"));
  for (const std::string& kv : a.GetAll("param")) {
    if (absl::Status s = SetParamFromString(kv, spec.mutable_params()); !s.ok()) {
      return UsageError(std::string(s.message()), usage);
    }
  }
  FilePtr upload;  // streamed in chunks, never held whole
  uint64_t upload_bytes = 0;
  if (a.Has("from-reservoir")) {
    spec.set_from_reservoir(true);
  } else if (a.Has("data-path")) {
    spec.set_data_path(a.Get("data-path"));
  } else {
    const std::string path = a.Get("data");
    if (absl::EndsWith(path, ".npz")) spec.set_upload_format(v1::UPLOAD_FORMAT_NPZ);
    else if (absl::EndsWith(path, ".npy")) spec.set_upload_format(v1::UPLOAD_FORMAT_NPY);
    else spec.set_upload_format(v1::UPLOAD_FORMAT_CSV);
    auto opened = OpenFileBounded(path, kMaxUploadFileBytes);
    if (!opened.ok()) return Fail(opened.status());
    upload = *std::move(opened);
    struct stat st;
    if (::fstat(fileno(upload.get()), &st) == 0) upload_bytes = static_cast<uint64_t>(st.st_size);
  }
  auto stub = v1::Training::NewStub(conn.channel);
  v1::Job job;
  {
    // Uploads can be large: the deadline grows with the size.
    auto ctx = conn.NewContext(conn.timeout_seconds + static_cast<double>(upload_bytes) / 20e6);
    auto writer = stub->SubmitJob(ctx.get(), &job);
    v1::SubmitJobRequest head;
    *head.mutable_spec() = spec;
    bool ok = writer->Write(head);
    std::string block(kUploadChunkBytes, '\0');
    absl::Status read_error;
    while (ok && upload != nullptr) {
      const size_t n = std::fread(block.data(), 1, block.size(), upload.get());
      if (n > 0) {
        v1::SubmitJobRequest c;
        c.mutable_chunk()->set_data(block.data(), n);
        ok = writer->Write(c);
      }
      if (n < block.size()) {
        if (std::ferror(upload.get())) {
          read_error = absl::DataLossError(
              absl::StrCat(a.Get("data"), ": read error: ", std::strerror(errno)));
        }
        break;
      }
    }
    if (!read_error.ok()) {
      ctx->TryCancel();  // the server must not train on part of the file
      (void)writer->Finish();
      return Fail(read_error);
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok()) return ReportRpcError(s);
  }
  std::printf("%s\n", job.id().c_str());
  std::fflush(stdout);
  if (!a.Has("wait")) return kExitOk;
  return WatchAndConclude(stub.get(), conn, job.id(), a.Has("cancel-on-interrupt"));
}

int RunJobs(const Argv& argv) {
  const auto specs = WithConnectionFlags({{"model", true, "list: only jobs of this model"},
                           {"state", true, "list: only jobs in this state (queued, running, ...)"},
                           {"limit", true, "list: at most this many (default 100)"},
                           {"cancel-on-interrupt", false, "watch: Ctrl-C cancels the job"},
                           {"format", true, "table (default), json or jsonl"}});
  const char* const usage_head =
      "usage: anorand jobs list [--model NAME] [--state STATE] [--format table|json|jsonl]\n"
      "       anorand jobs show JOB_ID [--format json]\n"
      "       anorand jobs watch JOB_ID [--cancel-on-interrupt]\n"
      "       anorand jobs cancel JOB_ID\n";
  int exit = kExitOk;
  auto setup = ParseAndConnect(argv, specs, usage_head, &exit);
  if (!setup) return exit;
  const auto& [a, conn, usage] = *setup;
  const auto& pos = a.positional();
  if (pos.empty()) return UsageError("missing subcommand", usage);
  const std::string sub = pos[0];
  const std::string format = a.Get("format", "table");
  if (format != "table" && format != "json" && format != "jsonl") {
    return UsageError("--format must be table, json or jsonl", usage);
  }
  auto stub = v1::Training::NewStub(conn.channel);
  if (sub == "list") {
    v1::ListJobsRequest req;
    req.set_model_name(a.Get("model"));
    if (a.Has("state")) {
      v1::JobState st;
      std::string name = "JOB_STATE_" + a.Get("state");
      for (char& c : name) c = static_cast<char>(toupper(c));
      if (!v1::JobState_Parse(name, &st) || st == v1::JOB_STATE_UNSPECIFIED) {
        return UsageError("--state must be queued, running, succeeded, failed or cancelled", usage);
      }
      req.add_states(st);
    }
    auto limit = a.GetInt("limit", 100);
    if (!limit.ok() || *limit < 1 || *limit > 1000) return UsageError("--limit must be in [1, 1000]", usage);
    req.set_page_size(static_cast<int>(*limit));
    auto ctx = conn.NewContext();
    v1::ListJobsResponse resp;
    grpc::Status s = stub->ListJobs(ctx.get(), req, &resp);
    if (!s.ok()) return ReportRpcError(s);
    if (format == "json") {
      std::printf("%s\n", ToJson(resp, true).c_str());
    } else if (format == "jsonl") {
      for (const auto& j : resp.jobs()) std::printf("%s\n", ToJson(j, false).c_str());
    } else {
      std::printf("%-28s %-20s %-10s %-7s %-8s %s\n", "JOB", "MODEL", "STATE", "EPOCH", "VERSION",
                  "ERROR");
      for (const auto& j : resp.jobs()) {
        std::printf("%-28s %-20s %-10s %-7s %-8s %s\n", j.id().c_str(),
                    j.spec().model_name().c_str(), StateName(j.state()).c_str(),
                    absl::StrCat(j.progress().epoch(), "/", j.progress().max_epochs()).c_str(),
                    j.published_version() ? std::to_string(j.published_version()).c_str() : "-",
                    j.error().c_str());
      }
    }
    return kExitOk;
  }
  if (pos.size() < 2) return UsageError(absl::StrCat("jobs ", sub, " needs a JOB_ID"), usage);
  const std::string id = pos[1];
  if (sub == "show") {
    auto ctx = conn.NewContext();
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    grpc::Status s = stub->GetJob(ctx.get(), req, &job);
    if (!s.ok()) return ReportRpcError(s);
    std::printf("%s\n", ToJson(job, true).c_str());
    return kExitOk;
  }
  if (sub == "watch") return WatchAndConclude(stub.get(), conn, id, a.Has("cancel-on-interrupt"));
  if (sub == "cancel") {
    v1::Job job;
    grpc::Status s = CancelJob(stub.get(), conn, id, &job);
    if (!s.ok()) return ReportRpcError(s);
    std::printf("job %s: %s\n", id.c_str(),
                job.state() == v1::JOB_STATE_CANCELLED ? "CANCELLED" : "cancel requested");
    return kExitOk;
  }
  return UsageError(absl::StrCat("unknown subcommand '", sub, "'"), usage);
}

}  // namespace anorand::cli
