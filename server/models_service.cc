#include "server/models_service.h"

#include <atomic>
#include <functional>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "server/client_paths.h"
#include "server/drift_report.h"
#include "server/names.h"
#include "server/queued_writer.h"
#include "server/raw_call.h"
#include "server/refused_call.h"
#include "server/status_util.h"

namespace anorand {
namespace {

constexpr size_t kExportChunkBytes = 1 << 20;
// Worst features in VersionInfo.drift, and in GetDrift by default.
constexpr int kVersionInfoDriftFeatures = 5;
constexpr int kGetDriftFeatures = 10;

v1::VersionState ToProto(VersionState s) {
  switch (s) {
    case VersionState::kLoading: return v1::VERSION_STATE_LOADING;
    case VersionState::kReady: return v1::VERSION_STATE_READY;
    case VersionState::kUnloaded: return v1::VERSION_STATE_UNLOADED;
    case VersionState::kFailed: return v1::VERSION_STATE_FAILED;
  }
  return v1::VERSION_STATE_UNSPECIFIED;
}

void FillVersion(const std::string& name, int64_t version, const VersionEntry& e,
                 const std::map<std::string, int64_t>& aliases, v1::VersionInfo* info) {
  info->set_model_name(name);
  info->set_version(version);
  info->set_state(ToProto(e.state));
  info->set_error(ClientText(e.error));
  info->set_file_bytes(e.file_bytes);
  for (const auto& [alias, target] : aliases)
    if (target == version) info->add_aliases(alias);
  if (e.model) {
    const v1::ModelFile& m = e.model->info();
    info->set_input_features(e.model->input_features());
    *info->mutable_feature_names() = m.feature_names();
    *info->mutable_score_stats() = m.score_stats();
    // The quantile tables are large and internal; the summary stays small.
    info->mutable_score_stats()->clear_noise_quantiles();
    info->mutable_score_stats()->clear_error_quantiles();
    *info->mutable_params() = m.params();
    *info->mutable_summary() = m.summary();
    info->set_created_unix_seconds(m.created_unix_seconds());
    info->set_training_job_id(m.training_job_id());
    if (e.state == VersionState::kReady) {
      FillDriftReport(name, version, *e.model, e.drift.get(), kVersionInfoDriftFeatures,
                      info->mutable_drift());
    }
  }
}

void FillShadow(const ShadowSpec& shadow, v1::Shadow* out) {
  out->set_version(shadow.version);
  out->set_alias(shadow.alias);
  out->set_sample_fraction(shadow.sample);
}

void FillQuantiles(const ScoreQuantileSet& q, v1::ScoreQuantiles* out) {
  out->set_p50(q.p50);
  out->set_p90(q.p90);
  out->set_p99(q.p99);
}

void FillModel(const std::string& name, const ModelEntry& m, v1::ModelInfo* info) {
  info->set_name(name);
  if (m.shadow) FillShadow(*m.shadow, info->mutable_shadow());
  for (const auto& [version, e] : m.versions) {
    FillVersion(name, version, e, m.aliases, info->add_versions());
    if (e.state == VersionState::kReady) info->set_latest_ready_version(version);
  }
  for (const auto& [alias, v] : m.aliases) (*info->mutable_aliases())[alias] = v;
}

// Parses the request after the token check, runs `body` and finishes the
// default reactor (raw_call.h).
template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const TokenAuth* auth,
                                const grpc::ByteBuffer* in, grpc::ByteBuffer* out, Body body) {
  return ServeUnary<Request, Response>(ctx, in, out, std::move(body), auth->Check(*ctx));
}

// The same, with `body` on `work` (raw_call.h, ServeUnaryOn).
template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* UnaryOn(WorkQueue* work, grpc::CallbackServerContext* ctx,
                                  const TokenAuth* auth, const grpc::ByteBuffer* in,
                                  grpc::ByteBuffer* out, Body body) {
  return ServeUnaryOn<Request, Response>(work, ctx, in, out, std::move(body), auth->Check(*ctx));
}

}  // namespace

absl::Status ModelsService::FillModelInfo(const std::string& name, v1::ModelInfo* info) const {
  auto m = manager_->registry().GetModel(name);
  if (!m) return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  FillModel(name, *m, info);
  FillRetrain(name, info);
  return absl::OkStatus();
}

void ModelsService::FillRetrain(const std::string& name, v1::ModelInfo* info) const {
  if (!retrain_) return;
  if (auto status = retrain_->Status(name)) *info->mutable_retrain() = *std::move(status);
}

absl::Status ModelsService::FillVersionInfo(const std::string& name, int64_t version,
                                            v1::VersionInfo* info) const {
  auto m = manager_->registry().GetModel(name);
  if (!m) return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  auto v = m->versions.find(version);
  if (v == m->versions.end()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  }
  FillVersion(name, version, v->second, m->aliases, info);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ModelsService::ListModels(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return Unary<v1::ListModelsRequest, v1::ListModelsResponse>(ctx, auth_, in, out, [&](const v1::ListModelsRequest&, v1::ListModelsResponse* resp) {
    for (const auto& [name, m] : manager_->registry().Snapshot()) {
      v1::ModelInfo* info = resp->add_models();
      FillModel(name, m, info);
      FillRetrain(name, info);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelsService::GetModel(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return Unary<v1::GetModelRequest, v1::ModelInfo>(ctx, auth_, in, out, [&](const v1::GetModelRequest& req, v1::ModelInfo* resp) -> absl::Status {
    const v1::ModelSpec& spec = req.model();
    if (absl::Status s = ValidateModelName(spec.name()); !s.ok()) return s;
    if (spec.version() < 0) return absl::InvalidArgumentError("model.version must be >= 1");
    if (spec.version() == 0 && spec.alias().empty()) return FillModelInfo(spec.name(), resp);
    int64_t version = spec.version();
    auto m = manager_->registry().GetModel(spec.name());
    if (!m) return absl::NotFoundError(absl::StrCat("model '", spec.name(), "' not found"));
    if (spec.alias() == "latest") {
      auto h = manager_->registry().Resolve(spec.name(), 0, "");
      if (!h.ok()) return h.status();
      version = h->version;
    } else if (!spec.alias().empty()) {
      if (absl::Status s = ValidateAliasName(spec.alias()); !s.ok()) return s;
      auto a = m->aliases.find(spec.alias());
      if (a == m->aliases.end()) {
        return absl::NotFoundError(
            absl::StrCat("model '", spec.name(), "' has no alias '", spec.alias(), "'"));
      }
      version = a->second;
    }
    resp->set_name(spec.name());
    if (m->shadow) FillShadow(*m->shadow, resp->mutable_shadow());
    FillRetrain(spec.name(), resp);
    for (const auto& [alias, v] : m->aliases) (*resp->mutable_aliases())[alias] = v;
    for (const auto& [v, e] : m->versions)
      if (e.state == VersionState::kReady) resp->set_latest_ready_version(v);
    return FillVersionInfo(spec.name(), version, resp->add_versions());
  });
}

grpc::ServerUnaryReactor* ModelsService::LoadVersion(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return UnaryOn<v1::LoadVersionRequest, v1::VersionInfo>(work_, ctx, auth_, in, out, [this](const v1::LoadVersionRequest& req, v1::VersionInfo* resp) -> absl::Status {
    if (absl::Status s = manager_->LoadVersion(req.model_name(), req.version()); !s.ok()) return s;
    return FillVersionInfo(req.model_name(), req.version(), resp);
  });
}

grpc::ServerUnaryReactor* ModelsService::UnloadVersion(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return UnaryOn<v1::UnloadVersionRequest, v1::VersionInfo>(admin_, ctx, auth_, in, out, [this](const v1::UnloadVersionRequest& req, v1::VersionInfo* resp) -> absl::Status {
    if (absl::Status s = manager_->UnloadVersion(req.model_name(), req.version()); !s.ok())
      return s;
    return FillVersionInfo(req.model_name(), req.version(), resp);
  });
}

grpc::ServerUnaryReactor* ModelsService::DeleteVersion(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return UnaryOn<v1::DeleteVersionRequest, v1::DeleteVersionResponse>(admin_, ctx, auth_, in, out, [this](const v1::DeleteVersionRequest& req, v1::DeleteVersionResponse*) {
    return manager_->DeleteVersion(req.model_name(), req.version(), req.force());
  });
}

grpc::ServerUnaryReactor* ModelsService::SetAlias(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return UnaryOn<v1::SetAliasRequest, v1::ModelInfo>(admin_, ctx, auth_, in, out, [this](const v1::SetAliasRequest& req, v1::ModelInfo* resp) -> absl::Status {
    if (absl::Status s = manager_->SetAlias(req.model_name(), req.alias(), req.version());
        !s.ok())
      return s;
    return FillModelInfo(req.model_name(), resp);
  });
}

grpc::ServerUnaryReactor* ModelsService::RemoveAlias(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return UnaryOn<v1::RemoveAliasRequest, v1::ModelInfo>(admin_, ctx, auth_, in, out, [this](const v1::RemoveAliasRequest& req, v1::ModelInfo* resp) -> absl::Status {
    if (absl::Status s = manager_->RemoveAlias(req.model_name(), req.alias()); !s.ok()) return s;
    return FillModelInfo(req.model_name(), resp);
  });
}

grpc::ServerUnaryReactor* ModelsService::SetShadow(grpc::CallbackServerContext* ctx,
                                                   const grpc::ByteBuffer* in,
                                                   grpc::ByteBuffer* out) {
  return UnaryOn<v1::SetShadowRequest, v1::ModelInfo>(admin_, ctx, auth_, in, out,
      [this](const v1::SetShadowRequest& req, v1::ModelInfo* resp) -> absl::Status {
        ShadowSpec spec;
        spec.version = req.version();
        spec.alias = req.alias();
        spec.sample = req.sample_fraction();
        if (absl::Status s = manager_->SetShadow(req.model_name(), spec); !s.ok()) return s;
        return FillModelInfo(req.model_name(), resp);
      });
}

grpc::ServerUnaryReactor* ModelsService::ClearShadow(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* in,
                                                     grpc::ByteBuffer* out) {
  return UnaryOn<v1::ClearShadowRequest, v1::ModelInfo>(admin_, ctx, auth_, in, out,
      [this](const v1::ClearShadowRequest& req, v1::ModelInfo* resp) -> absl::Status {
        if (absl::Status s = manager_->ClearShadow(req.model_name()); !s.ok()) return s;
        return FillModelInfo(req.model_name(), resp);
      });
}

grpc::ServerUnaryReactor* ModelsService::SetRetrainPolicy(grpc::CallbackServerContext* ctx,
                                                          const grpc::ByteBuffer* in,
                                                          grpc::ByteBuffer* out) {
  return UnaryOn<v1::SetRetrainPolicyRequest, v1::ModelInfo>(admin_, ctx, auth_, in, out,
      [this](const v1::SetRetrainPolicyRequest& req, v1::ModelInfo* resp) -> absl::Status {
        if (absl::Status s = ValidateModelName(req.model_name()); !s.ok()) return s;
        if (!retrain_) return absl::FailedPreconditionError("this server runs no retrain loop");
        auto set = retrain_->SetPolicy(req.model_name(), req.policy());
        if (!set.ok()) return set.status();
        return FillModelInfo(req.model_name(), resp);
      });
}

grpc::ServerUnaryReactor* ModelsService::ClearRetrainPolicy(grpc::CallbackServerContext* ctx,
                                                            const grpc::ByteBuffer* in,
                                                            grpc::ByteBuffer* out) {
  return UnaryOn<v1::ClearRetrainPolicyRequest, v1::ModelInfo>(admin_, ctx, auth_, in, out,
      [this](const v1::ClearRetrainPolicyRequest& req, v1::ModelInfo* resp) -> absl::Status {
        if (absl::Status s = ValidateModelName(req.model_name()); !s.ok()) return s;
        if (!retrain_) return absl::FailedPreconditionError("this server runs no retrain loop");
        if (absl::Status s = retrain_->ClearPolicy(req.model_name()); !s.ok()) return s;
        return FillModelInfo(req.model_name(), resp);
      });
}

grpc::ServerUnaryReactor* ModelsService::GetModelHistory(grpc::CallbackServerContext* ctx,
                                                         const grpc::ByteBuffer* in,
                                                         grpc::ByteBuffer* out) {
  return UnaryOn<v1::GetModelHistoryRequest, v1::ModelHistory>(work_, ctx, auth_, in, out,
      [this](const v1::GetModelHistoryRequest& req, v1::ModelHistory* resp) -> absl::Status {
        if (absl::Status s = ValidateModelName(req.model_name()); !s.ok()) return s;
        if (req.limit() < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("limit must be >= 0 (0 = the last 100 events), got ", req.limit()));
        }
        if (!retrain_) return absl::FailedPreconditionError("this server runs no retrain loop");
        auto events = retrain_->History(req.model_name(), req.limit() == 0 ? 100 : req.limit());
        if (!events.ok()) return events.status();
        resp->set_model_name(req.model_name());
        for (v1::ModelEvent& e : *events) *resp->add_events() = std::move(e);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModelsService::CompareShadow(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* in,
                                                       grpc::ByteBuffer* out) {
  return Unary<v1::CompareShadowRequest, v1::CompareShadowResponse>(
      ctx, auth_, in, out,
      [&](const v1::CompareShadowRequest& req, v1::CompareShadowResponse* resp) -> absl::Status {
        if (absl::Status s = ValidateModelName(req.model_name()); !s.ok()) return s;
        auto m = manager_->registry().GetModel(req.model_name());
        if (!m) return absl::NotFoundError(absl::StrCat("model '", req.model_name(), "' not found"));
        resp->set_model_name(req.model_name());
        if (m->shadow) FillShadow(*m->shadow, resp->mutable_shadow());
        if (!shadow_) return absl::OkStatus();
        resp->set_dropped_records(shadow_->Dropped(req.model_name()));
        for (const ShadowComparisonStats& c : shadow_->Compare(req.model_name())) {
          v1::ShadowComparison* p = resp->add_comparisons();
          p->set_version(c.version);
          p->set_shadow_version(c.shadow_version);
          p->set_compared_records(c.compared);
          p->set_window_records(c.window);
          p->set_rank_correlation(c.rank_correlation);
          p->set_serving_only_flagged_ratio(c.serving_only_flagged);
          p->set_shadow_only_flagged_ratio(c.shadow_only_flagged);
          FillQuantiles(c.serving_scores, p->mutable_serving_scores());
          FillQuantiles(c.shadow_scores, p->mutable_shadow_scores());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModelsService::GetDrift(grpc::CallbackServerContext* ctx,
                                                  const grpc::ByteBuffer* in,
                                                  grpc::ByteBuffer* out) {
  return Unary<v1::GetDriftRequest, v1::DriftReport>(
      ctx, auth_, in, out, [&](const v1::GetDriftRequest& req, v1::DriftReport* resp) -> absl::Status {
        const v1::ModelSpec& spec = req.model();
        if (absl::Status s = ValidateModelName(spec.name()); !s.ok()) return s;
        if (spec.version() < 0) {
          return absl::InvalidArgumentError(
              "model.version must be >= 1 (or 0 for the newest READY version)");
        }
        if (!spec.alias().empty() && spec.alias() != "latest") {
          if (absl::Status s = ValidateAliasName(spec.alias()); !s.ok()) return s;
        }
        if (req.top() < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "top must be >= 0 (0 = ", kGetDriftFeatures, " features); got ", req.top()));
        }
        auto handle = manager_->registry().Resolve(spec.name(), spec.version(), spec.alias());
        if (!handle.ok()) return handle.status();
        FillDriftReport(handle->name, handle->version, *handle->model, handle->drift.get(),
                        req.top() == 0 ? kGetDriftFeatures : req.top(), resp);
        return absl::OkStatus();
      });
}

namespace {

class ImportReader final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  ImportReader(ModelManager* manager, WorkQueue* work, grpc::CallbackServerContext* ctx,
               grpc::ByteBuffer* response, const UploadLimits* limits,
               std::function<absl::Status(const std::string&, int64_t, v1::VersionInfo*)> fill)
      : manager_(manager),
        work_(work),
        ctx_(ctx),
        response_(response),
        limits_(limits),
        fill_(std::move(fill)) {
    StartRead(&chunk_bytes_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete();
      return;
    }
    if (grpc::Status s = ParseRequest(&chunk_bytes_, index_++, &chunk_); !s.ok()) {
      Finish(s);
      return;
    }
    if (first_) {
      first_ = false;
      if (!chunk_.has_header()) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the first ImportChunk must carry the header (model_name, ...)"));
        return;
      }
      header_ = chunk_.header();
    } else if (chunk_.has_header()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "only the first ImportChunk may carry a header"));
      return;
    } else {
      if (static_cast<int64_t>(bytes_.size() + chunk_.data().size()) > limits_->max_bytes) {
        Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrCat("the model file is over the upload limit of ",
                                         limits_->max_bytes,
                                         " bytes (--max_upload_bytes)")));
        return;
      }
      bytes_ += chunk_.data();
    }
    if (limits_->after_message) limits_->after_message(index_);
    StartRead(&chunk_bytes_);
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  void Complete() {
    if (first_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no ImportChunk was sent"));
      return;
    }
    if (bytes_.empty()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the header came with no data: send the model file's bytes in "
                          "ImportChunk.data messages after it"));
      return;
    }
    work_->Run([this] { ImportOnWorker(); });
  }
  // On the work queue (validating, compiling and writing the version); the
  // reactor lives until OnDone, which follows Finish.
  void ImportOnWorker() {
    // A failed read is WritesDone or the call's end by cancel, deadline or
    // disconnect; a file whose upload was cancelled is not imported, even
    // when every byte of it arrived.
    if (cancelled_ || ctx_->IsCancelled()) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                          "ImportVersion was cancelled before the version was written"));
      return;
    }
    auto version = manager_->Import(header_.model_name(), header_.version(), bytes_, header_.alias());
    absl::Status s = version.status();
    v1::VersionInfo info;
    if (s.ok()) s = fill_(header_.model_name(), *version, &info);
    grpc::Status status = ToGrpcStatus(s);
    if (status.ok()) status = SerializeResponse(info, response_);
    Finish(status);
  }
  ModelManager* manager_;
  WorkQueue* work_;
  grpc::CallbackServerContext* ctx_;  // lives until OnDone
  grpc::ByteBuffer* response_;
  const UploadLimits* limits_;  // the service's, which outlives every call
  std::function<absl::Status(const std::string&, int64_t, v1::VersionInfo*)> fill_;
  grpc::ByteBuffer chunk_bytes_;
  int64_t index_ = 0;  // of the next chunk
  v1::ImportChunk chunk_;
  v1::ImportHeader header_;
  std::string bytes_;
  bool first_ = true;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* ModelsService::ExportVersion(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request_bytes) {
  using Reactor = grpc::ServerWriteReactor<grpc::ByteBuffer>;
  if (grpc::Status s = auth_->Check(*ctx); !s.ok()) return RefusedCall<Reactor>(s);
  v1::ExportVersionRequest req;
  grpc::ByteBuffer bytes(*request_bytes);  // shares the slices, copies no data
  if (grpc::Status s = ParseRequest(&bytes, -1, &req); !s.ok()) return RefusedCall<Reactor>(s);
  // The stored file is read whole on `work_` (up to 512 MiB), then sent in
  // chunks; an empty file still sends its header chunk.
  using Writer = QueuedWriter<v1::ExportChunk>;
  return new Writer(work_, [this, spec = req.model()]() -> absl::StatusOr<Writer::Next> {
    int64_t version = 0;
    auto file = manager_->Export(spec.name(), spec.version(), spec.alias(), &version);
    if (!file.ok()) return file.status();
    auto bytes = std::make_shared<std::string>(*std::move(file));
    return Writer::Next([bytes, version, sent = size_t{0}, first = true](
                            v1::ExportChunk* chunk) mutable {
      if (!first && sent >= bytes->size()) return false;
      const size_t n = std::min(kExportChunkBytes, bytes->size() - sent);
      chunk->set_data(bytes->substr(sent, n));
      if (first) {
        chunk->set_total_bytes(static_cast<int64_t>(bytes->size()));
        chunk->set_version(version);
      }
      sent += n;
      first = false;
      return true;
    });
  });
}

grpc::ServerReadReactor<grpc::ByteBuffer>* ModelsService::ImportVersion(
    grpc::CallbackServerContext* ctx, grpc::ByteBuffer* response) {
  if (grpc::Status s = auth_->Check(*ctx); !s.ok()) {
    return RefusedCall<grpc::ServerReadReactor<grpc::ByteBuffer>>(s);
  }
  return new ImportReader(manager_, work_, ctx, response, &upload_,
                          [this](const std::string& n, int64_t v, v1::VersionInfo* info) {
                            return FillVersionInfo(n, v, info);
                          });
}

}  // namespace anorand
