#include "server/training_service.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "model/data/data_loader.h"
#include "server/names.h"
#include "server/raw_call.h"
#include "server/refused_call.h"
#include "server/status_util.h"

namespace anorand {

absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir,
                                            const std::string& relative) {
  if (data_dir.empty()) {
    return absl::FailedPreconditionError(
        "this server has no --data_dir: upload the data instead (upload_format + chunks)");
  }
  if (relative.empty()) return absl::InvalidArgumentError("data_path is empty");
  if (relative[0] == '/') {
    return absl::PermissionDeniedError(absl::StrCat(
        "data_path '", relative, "' is absolute; give a path relative to the server's --data_dir"));
  }
  char root[PATH_MAX], full[PATH_MAX];
  if (realpath(data_dir.c_str(), root) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data_dir ", data_dir, " is not readable: ", std::strerror(errno)));
  }
  const std::string joined = absl::StrCat(root, "/", relative);
  if (realpath(joined.c_str(), full) == nullptr) {
    // Refuse escapes even when the target does not exist.
    if (relative == ".." || relative.rfind("../", 0) == 0 ||
        relative.find("/../") != std::string::npos) {
      return absl::PermissionDeniedError(
          absl::StrCat("data_path '", relative, "' points outside --data_dir"));
    }
    return absl::NotFoundError(absl::StrCat("data_path '", relative, "' is not a file under --data_dir"));
  }
  const std::string root_s(root), full_s(full);
  if (full_s.compare(0, root_s.size() + 1, root_s + "/") != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "data_path '", relative, "' resolves outside --data_dir (\"..\" or a symbolic link)"));
  }
  struct stat st;
  if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(
        "data_path '", relative, "' is a folder, not a file under --data_dir; name a .csv, .npy "
        "or .npz file in it"));
  }
  return full_s;
}

namespace {

const char* FormatName(v1::UploadFormat f) {
  switch (f) {
    case v1::UPLOAD_FORMAT_CSV: return "csv";
    case v1::UPLOAD_FORMAT_NPZ: return "npz";
    case v1::UPLOAD_FORMAT_NPY: return "npy";
    default: return "";
  }
}

}  // namespace

class TrainingService::SubmitReader final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  SubmitReader(TrainingService* service, grpc::CallbackServerContext* ctx,
               grpc::ByteBuffer* response)
      : service_(service), ctx_(ctx), response_(response) {
    StartRead(&request_bytes_);
  }
  // A failed read is either the client's WritesDone or the call's end by
  // cancel, deadline or disconnect; the second is told apart in Cancelled().
  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete();
      return;
    }
    if (grpc::Status s = ParseRequest(&request_bytes_, index_++, &request_); !s.ok()) {
      Finish(s);
      return;
    }
    absl::Status s = first_ ? TakeSpec() : TakeChunk();
    first_ = false;
    if (!s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    if (service_->limits_.upload.after_message) service_->limits_.upload.after_message(index_);
    StartRead(&request_bytes_);
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  // True once the client can no longer receive a reply: an upload it cut
  // short must not become a job on the rows that happened to arrive.
  bool Cancelled() const { return cancelled_.load() || ctx_->IsCancelled(); }

  absl::Status TakeSpec() {
    if (!request_.has_spec()) {
      return absl::InvalidArgumentError("the first SubmitJobRequest must carry the spec");
    }
    spec_ = request_.spec();
    if (absl::Status s = ValidateModelName(spec_.model_name()); !s.ok()) return s;
    if (!spec_.promote_to_alias().empty()) {
      if (absl::Status s = ValidateAliasName(spec_.promote_to_alias()); !s.ok()) return s;
    }
    if (spec_.data_source_case() == v1::JobSpec::DATA_SOURCE_NOT_SET ||
        (spec_.has_upload_format() && spec_.upload_format() == v1::UPLOAD_FORMAT_UNSPECIFIED) ||
        (spec_.has_from_reservoir() && !spec_.from_reservoir())) {
      return absl::InvalidArgumentError(
          "set data_path (a file under the server's --data_dir), upload_format (then send "
          "chunks) or from_reservoir (the model's recent traffic)");
    }
    if (spec_.has_from_reservoir() && !spec_.label_column().empty()) {
      return absl::InvalidArgumentError(
          "label_column is set, but from_reservoir records carry no labels; leave it empty");
    }
    return service_->jobs_->CheckQueueRoom();
  }

  absl::Status TakeChunk() {
    if (request_.has_spec()) return absl::InvalidArgumentError("only the first message may carry a spec");
    if (spec_.data_source_case() == v1::JobSpec::kDataPath) {
      return absl::InvalidArgumentError("data chunks were sent, but the spec names a data_path");
    }
    if (spec_.data_source_case() == v1::JobSpec::kFromReservoir) {
      return absl::InvalidArgumentError("data chunks were sent, but the spec sets from_reservoir");
    }
    const v1::DataChunk& c = request_.chunk();
    if (spec_.upload_format() == v1::UPLOAD_FORMAT_DENSE) {
      if (!c.data().empty()) return absl::InvalidArgumentError("DENSE chunks carry values, not data bytes");
      if (c.num_features() < 1) return absl::InvalidArgumentError("a DENSE chunk needs num_features >= 1");
      if (dense_.cols == 0) {
        dense_.cols = c.num_features();
        dense_.feature_names.assign(c.feature_names().begin(), c.feature_names().end());
        if (!dense_.feature_names.empty() && static_cast<int64_t>(dense_.feature_names.size()) != dense_.cols) {
          return absl::InvalidArgumentError("feature_names must have num_features entries");
        }
      } else if (c.num_features() != dense_.cols) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk ", chunks_, " has num_features ", c.num_features(), "; the first had ", dense_.cols));
      } else if (c.feature_names_size() > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk ", chunks_, " carries feature_names; only the first DENSE chunk may"));
      }
      if (c.values_size() % c.num_features() != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk ", chunks_, ": values is not a multiple of num_features"));
      }
      for (int i = 0; i < c.values_size(); ++i) {
        if (!std::isfinite(c.values(i))) {
          return absl::InvalidArgumentError(absl::StrCat(
              "chunk ", chunks_, ", value ", i, " is not finite; every value must be a number"));
        }
      }
      if (absl::Status s = TakeDenseLabels(c); !s.ok()) return s;
      bytes_ += 4ll * c.values_size() + 4ll * c.labels_size();
      dense_.x.insert(dense_.x.end(), c.values().begin(), c.values().end());
    } else {
      if (c.values_size() > 0 || c.num_features() != 0 || c.feature_names_size() > 0) {
        return absl::InvalidArgumentError(
            "only DENSE chunks carry values, num_features and feature_names; a CSV, NPY or NPZ "
            "chunk carries the file's bytes in data");
      }
      if (c.labels_size() > 0) {
        return absl::InvalidArgumentError(
            "only DENSE chunks carry labels; for CSV, NPY and NPZ set label_column (NPZ: or a y "
            "array)");
      }
      bytes_ += static_cast<int64_t>(c.data().size());
      upload_ += c.data();
    }
    ++chunks_;
    if (bytes_ > service_->limits_.upload.max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the upload is over ", service_->limits_.upload.max_bytes,
          " bytes (--max_upload_bytes); train from a file under --data_dir instead"));
    }
    return absl::OkStatus();
  }

  // A DENSE chunk's labels: none, or one 0/1 per record; every chunk with
  // records like the first one.
  absl::Status TakeDenseLabels(const v1::DataChunk& c) {
    const int64_t records = c.values_size() / c.num_features();
    if (c.labels_size() > 0 && c.labels_size() != records) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk ", chunks_, " has ", c.labels_size(), " labels for ", records,
          " records; send one label per record or none"));
    }
    if (records == 0) return absl::OkStatus();
    const bool labelled = c.labels_size() > 0;
    if (dense_labelled_ == -1) dense_labelled_ = labelled ? 1 : 0;
    if (labelled != (dense_labelled_ == 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk ", chunks_, labelled ? " has labels but the first chunk with records had none"
                                      : " has no labels but the first chunk with records had them",
          "; label every chunk or none"));
    }
    for (int i = 0; i < c.labels_size(); ++i) {
      if (c.labels(i) != 0 && c.labels(i) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk ", chunks_, ", label ", i, " is ", c.labels(i),
            "; labels are 1 (known anomaly) or 0 (unlabelled)"));
      }
    }
    dense_.labels.insert(dense_.labels.end(), c.labels().begin(), c.labels().end());
    return absl::OkStatus();
  }

  void Complete() {
    if (first_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no SubmitJobRequest was sent"));
      return;
    }
    service_->work_->Run([this] { LoadAndSubmit(); });
  }

  // On the work queue. The reactor lives until OnDone, which follows Finish.
  void LoadAndSubmit() {
    absl::StatusOr<Dataset> data = LoadData();
    int64_t feedback_rows = 0;
    if (data.ok() && spec_.include_feedback()) {
      auto added = AddFeedback(&*data);
      if (added.ok()) feedback_rows = *added;
      else data = added.status();
    }
    absl::Status s = data.status();
    if (Cancelled()) {
      s = absl::CancelledError("SubmitJob was cancelled before its data was parsed; no job");
    }
    if (s.ok()) {
      auto job = service_->jobs_->Submit(spec_, *std::move(data), feedback_rows);
      s = job.status();
      if (job.ok()) {
        Finish(SerializeResponse(*job, response_));
        return;
      }
    }
    Finish(ToGrpcStatus(s));
  }

  // A decompressed size over the bound stays RESOURCE_EXHAUSTED and names
  // the flag, a cancelled read CANCELLED; every other data fault is
  // INVALID_ARGUMENT.
  absl::Status DataError(const absl::Status& s) const {
    if (absl::IsCancelled(s)) return s;
    if (absl::IsResourceExhausted(s)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          s.message(), " (--max_upload_bytes bounds decompressed data too; send less data or "
          "ask the operator to raise it)"));
    }
    return absl::InvalidArgumentError(s.message());
  }

  // Appends the model's stored feedback to `data`; returns the rows added.
  absl::StatusOr<int64_t> AddFeedback(Dataset* data) const {
    if (!service_->feedback_) {
      return absl::FailedPreconditionError("include_feedback is set but this server keeps no feedback");
    }
    auto added = AppendFeedback(*service_->feedback_, spec_.model_name(), data);
    if (added.ok() && *added == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "include_feedback is set but model '", spec_.model_name(), "' has no stored "
          "feedback; send some with AddFeedback (anorand feedback add) or leave "
          "include_feedback unset"));
    }
    return added;
  }

  absl::StatusOr<Dataset> LoadData() {
    LoadOptions lo;
    lo.csv.label_column = spec_.label_column();
    lo.cancelled = [this] { return Cancelled(); };
    lo.max_decompressed_bytes = static_cast<uint64_t>(service_->limits_.upload.max_bytes);
    if (spec_.data_source_case() == v1::JobSpec::kFromReservoir) {
      return service_->reservoirs_->TrainingData(spec_.model_name());
    }
    if (spec_.data_source_case() == v1::JobSpec::kDataPath) {
      auto path = ResolveDataPath(service_->limits_.data_dir, spec_.data_path());
      if (!path.ok()) return path.status();
      auto d = LoadDataset(*path, lo);
      if (!d.ok()) return DataError(d.status());
      return d;
    }
    if (chunks_ == 0) return absl::InvalidArgumentError("upload_format is set but no chunk was sent");
    if (spec_.upload_format() == v1::UPLOAD_FORMAT_DENSE) {
      dense_.rows = static_cast<int64_t>(dense_.x.size()) / dense_.cols;
      if (dense_.rows == 0) return absl::InvalidArgumentError("the upload holds no rows");
      return std::move(dense_);
    }
    auto d = DatasetFromBytes(upload_, FormatName(spec_.upload_format()), lo);
    if (!d.ok()) return DataError(d.status());
    return d;
  }

  TrainingService* service_;
  grpc::CallbackServerContext* ctx_;  // lives until OnDone
  grpc::ByteBuffer* response_;
  grpc::ByteBuffer request_bytes_;
  int64_t index_ = 0;  // of the next message
  v1::SubmitJobRequest request_;
  v1::JobSpec spec_;
  bool first_ = true;
  int64_t chunks_ = 0, bytes_ = 0;
  std::string upload_;
  Dataset dense_;
  int dense_labelled_ = -1;  // DENSE: -1 before the first chunk with records, then 0 or 1
  std::atomic<bool> cancelled_{false};
};

grpc::ServerReadReactor<grpc::ByteBuffer>* TrainingService::SubmitJob(
    grpc::CallbackServerContext* ctx, grpc::ByteBuffer* response) {
  if (grpc::Status s = auth_->Check(*ctx); !s.ok()) {
    return RefusedCall<grpc::ServerReadReactor<grpc::ByteBuffer>>(s);
  }
  return new SubmitReader(this, ctx, response);
}

grpc::ServerUnaryReactor* TrainingService::GetJob(grpc::CallbackServerContext* ctx,
                                                  const grpc::ByteBuffer* in,
                                                  grpc::ByteBuffer* out) {
  return ServeUnary<v1::GetJobRequest, v1::Job>(
      ctx, in, out,
      [&](const v1::GetJobRequest& req, v1::Job* resp) -> absl::Status {
        auto job = jobs_->Get(req.job_id());
        if (job.ok()) *resp = *std::move(job);
        return job.status();
      },
      auth_->Check(*ctx));
}

grpc::ServerUnaryReactor* TrainingService::ListJobs(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* in,
                                                    grpc::ByteBuffer* out) {
  return ServeUnary<v1::ListJobsRequest, v1::ListJobsResponse>(
      ctx, in, out,
      [&](const v1::ListJobsRequest& req, v1::ListJobsResponse* resp) -> absl::Status {
        if (!req.model_name().empty()) {
          if (absl::Status s = ValidateModelName(req.model_name()); !s.ok()) return s;
        }
        auto list = jobs_->List(req);
        if (list.ok()) *resp = *std::move(list);
        return list.status();
      },
      auth_->Check(*ctx));
}

grpc::ServerUnaryReactor* TrainingService::CancelJob(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* in,
                                                     grpc::ByteBuffer* out) {
  return ServeUnary<v1::CancelJobRequest, v1::Job>(
      ctx, in, out,
      [&](const v1::CancelJobRequest& req, v1::Job* resp) -> absl::Status {
        auto job = jobs_->Cancel(req.job_id());
        if (job.ok()) *resp = *std::move(job);
        return job.status();
      },
      auth_->Check(*ctx));
}

// One write in flight; a newer intermediate message replaces a pending one.
class TrainingService::WatchJobWriter final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // Shared with the JobManager callback, which may outlive the reactor.
  struct State {
    absl::Mutex mu;
    WatchJobWriter* reactor ABSL_GUARDED_BY(mu) = nullptr;  // null once the call is done
  };

  WatchJobWriter(JobManager* jobs, const std::string& id)
      : jobs_(jobs), state_(std::make_shared<State>()) {
    state_->reactor = this;
    std::shared_ptr<State> state = state_;
    auto token = jobs_->Watch(id, [state](const v1::JobProgress& p) {
      absl::MutexLock lock(&state->mu);
      if (state->reactor) {
        state->reactor->state_->mu.AssertHeld();  // state is the reactor's state_
        state->reactor->Push(p);
      }
    });
    if (!token.ok()) {
      {
        absl::MutexLock lock(&state_->mu);
        state_->reactor = nullptr;
      }
      Finish(ToGrpcStatus(token.status()));
      return;
    }
    token_ = *token;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    writing_ = false;
    if (!ok || cancelled_) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away"));
      return;
    }
    if (has_pending_) {
      WriteLocked();
    } else if (final_written_) {
      FinishLocked(grpc::Status::OK);
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&state_->mu);
    // With a write in flight, OnWriteDone finishes the call (it sees the flag).
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }

  void OnDone() override {
    jobs_->Unwatch(token_);
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
    }
    delete this;
  }

 private:
  void Push(const v1::JobProgress& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    // Nothing after a terminal message: the snapshot taken at Watch() can
    // arrive after the final update it predates.
    if (finished_ || cancelled_ || terminal_seen_) return;
    const v1::JobState s = p.state();
    terminal_seen_ = s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
                     s == v1::JOB_STATE_CANCELLED;
    pending_ = p;
    has_pending_ = true;
    if (!writing_) WriteLocked();
  }
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    current_ = pending_;
    has_pending_ = false;
    writing_ = true;
    const v1::JobState s = current_.state();
    final_written_ = s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
                     s == v1::JOB_STATE_CANCELLED;
    if (grpc::Status status = SerializeResponse(current_, &current_bytes_); !status.ok()) {
      writing_ = false;
      FinishLocked(status);
      return;
    }
    StartWrite(&current_bytes_);
  }
  void FinishLocked(const grpc::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }

  JobManager* jobs_;
  std::shared_ptr<State> state_;
  uint64_t token_ = 0;
  // Guarded by state_->mu (the JobManager callback and gRPC's reactions).
  v1::JobProgress pending_ ABSL_GUARDED_BY(state_->mu);
  v1::JobProgress current_ ABSL_GUARDED_BY(state_->mu);
  grpc::ByteBuffer current_bytes_ ABSL_GUARDED_BY(state_->mu);
  bool has_pending_ ABSL_GUARDED_BY(state_->mu) = false;
  bool writing_ ABSL_GUARDED_BY(state_->mu) = false;
  bool final_written_ ABSL_GUARDED_BY(state_->mu) = false;
  bool finished_ ABSL_GUARDED_BY(state_->mu) = false;
  bool cancelled_ ABSL_GUARDED_BY(state_->mu) = false;
  bool terminal_seen_ ABSL_GUARDED_BY(state_->mu) = false;
};

grpc::ServerWriteReactor<grpc::ByteBuffer>* TrainingService::WatchJob(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request_bytes) {
  using Reactor = grpc::ServerWriteReactor<grpc::ByteBuffer>;
  if (grpc::Status s = auth_->Check(*ctx); !s.ok()) return RefusedCall<Reactor>(s);
  v1::WatchJobRequest req;
  grpc::ByteBuffer bytes(*request_bytes);  // shares the slices, copies no data
  if (grpc::Status s = ParseRequest(&bytes, -1, &req); !s.ok()) return RefusedCall<Reactor>(s);
  return new WatchJobWriter(jobs_, req.job_id());
}

}  // namespace anorand
