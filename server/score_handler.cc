#include "server/score_handler.h"

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "server/names.h"

namespace anorand {
namespace {

// Model name, version, request id and threshold: every response has them.
void FillHeader(const v1::ScoreRequest& request, const PreparedScore& prepared,
                v1::ScoreResponse* response) {
  response->set_model_name(request.model().name());
  response->set_model_version(prepared.handle.version);
  response->set_request_id(request.request_id());
  response->set_threshold(prepared.handle.model->score_stats().threshold());
}

float* Resized(google::protobuf::RepeatedField<float>* field, int64_t rows) {
  field->Resize(static_cast<int>(rows), 0.0f);
  return field->mutable_data();
}

// is_anomaly and ids, after the forward pass; returns the anomaly count.
int64_t FillFlags(const v1::ScoreRequest& request, const bool* flags, int64_t rows,
                  v1::ScoreResponse* response) {
  response->mutable_is_anomaly()->Reserve(static_cast<int>(rows));
  int64_t anomalies = 0;
  for (int64_t r = 0; r < rows; ++r) {
    response->add_is_anomaly(flags[r]);
    anomalies += flags[r];
  }
  *response->mutable_ids() = request.batch().ids();
  return anomalies;
}

}  // namespace

absl::Status ScoreHandler::Score(const v1::ScoreRequest& request,
                                 v1::ScoreResponse* response) const {
  ScoringLoad::Scope in_flight(hooks_.load);
  ScoreEvent event;
  event.model = &request.model().name();
  absl::Status s;
  auto prepared = Prepare(request, &event);
  s = prepared.ok() ? Run(request, *prepared, response, &event) : prepared.status();
  Observe(&event, s, response);
  return s;
}

void ScoreHandler::Observe(ScoreEvent* event, const absl::Status& status,
                           const v1::ScoreResponse* response) const {
  event->code = status.code();
  event->response = status.ok() ? response : nullptr;
  if (hooks_.shadow && event->response && event->request) {
    hooks_.shadow->Offer(*event->request, *response);
  }
  if (hooks_.reservoirs && event->response && event->request) {
    hooks_.reservoirs->Offer(*event->request);
  }
  if (hooks_.observer) hooks_.observer(*event);
}

absl::StatusOr<PreparedScore> ScoreHandler::Prepare(const v1::ScoreRequest& request,
                                                    ScoreEvent* event) const {
  event->request = &request;
  event->model = &request.model().name();
  const v1::ModelSpec& spec = request.model();
  if (absl::Status s = ValidateModelName(spec.name()); !s.ok()) return s;
  if (spec.version() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.version is ", spec.version(), "; versions start at 1 (0 = latest)"));
  }
  if (!spec.alias().empty() && spec.alias() != "latest") {
    if (absl::Status s = ValidateAliasName(spec.alias()); !s.ok()) return s;
  }
  const v1::RecordBatch& batch = request.batch();
  const int64_t f = batch.num_features();
  if (f < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch.num_features is ", f, "; set it to the model's input width"));
  }
  if (batch.values().empty()) {
    return absl::InvalidArgumentError("the batch is empty: batch.values holds no records");
  }
  if (batch.values_size() % f != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch.values has ", batch.values_size(), " values, not a multiple of num_features ", f));
  }
  const int64_t rows = batch.values_size() / f;
  if (rows > limits_.max_batch_records) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the batch has ", rows, " records; the limit is ",
                     limits_.max_batch_records, " (--max_batch_records): split it"));
  }
  if (batch.ids_size() != 0 && batch.ids_size() != rows) {
    return absl::InvalidArgumentError(absl::StrCat("batch.ids has ", batch.ids_size(),
                                                   " entries for ", rows,
                                                   " records; send none or one per record"));
  }
  auto handle = registry_->Resolve(spec.name(), spec.version(), spec.alias());
  event->known_model = handle.ok() || !absl::IsNotFound(handle.status()) ||
                       registry_->GetModel(spec.name()).has_value();
  if (!handle.ok()) return handle.status();
  event->version = handle->version;
  const CompiledModel& model = *handle->model;
  if (f != model.input_features()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", spec.name(), "' version ", handle->version, " takes ",
                     model.input_features(), " features per record; the batch has ", f));
  }
  int64_t ids_bytes = 0;
  for (const auto& id : batch.ids()) ids_bytes += static_cast<int64_t>(id.size()) + 2;
  const int64_t response_bytes =
      rows * (5 * 5 + (request.explain() ? 4 * f : 0)) + ids_bytes +
      static_cast<int64_t>(request.request_id().size() + request.model().name().size()) + 256;
  if (response_bytes > limits_.max_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the response would be about ", response_bytes, " bytes, over the limit of ",
        limits_.max_message_bytes, " (--max_message_bytes): send fewer records per batch"));
  }
  PreparedScore prepared;
  prepared.handle = *std::move(handle);
  prepared.rows = rows;
  return prepared;
}

absl::Status ScoreHandler::Run(const v1::ScoreRequest& request, const PreparedScore& prepared,
                               v1::ScoreResponse* response, ScoreEvent* event) const {
  const int64_t rows = prepared.rows;
  FillHeader(request, prepared, response);
  std::unique_ptr<bool[]> flags(new bool[rows]);
  ScoreOutputs out;
  out.score = Resized(response->mutable_scores(), rows);
  out.noise_probability = Resized(response->mutable_noise_probability(), rows);
  out.reconstruction_probability = Resized(response->mutable_reconstruction_probability(), rows);
  out.reconstruction_error = Resized(response->mutable_reconstruction_error(), rows);
  out.is_anomaly = flags.get();
  if (request.explain()) {
    out.contributions =
        Resized(response->mutable_contributions(), rows * request.batch().num_features());
  }
  if (absl::Status s = prepared.handle.model->Score(request.batch().values().data(), rows, out);
      !s.ok()) {
    response->Clear();
    return s;
  }
  if (prepared.handle.drift) {
    prepared.handle.drift->Observe(request.batch().values().data(), rows, out.score);
  }
  event->anomalies = FillFlags(request, flags.get(), rows, response);
  event->records = rows;
  return absl::OkStatus();
}

void ScoreHandler::ScoreTogether(const std::vector<ScoreItem*>& items) const {
  auto each_alone = [&] {
    for (ScoreItem* item : items) {
      item->status = Run(*item->request, item->prepared, item->response, &item->event);
    }
  };
  if (items.size() == 1) return each_alone();
  int64_t total = 0;
  for (const ScoreItem* item : items) total += item->prepared.rows;
  const CompiledModel& model = *items.front()->prepared.handle.model;
  const int64_t f = model.input_features();
  // One buffer: the records, then the four outputs; flags beside it.
  std::vector<float> buf(static_cast<size_t>(total) * (f + 4));
  float* x = buf.data();
  float* cursor = x;
  for (const ScoreItem* item : items) {
    const auto& values = item->request->batch().values();
    std::memcpy(cursor, values.data(), sizeof(float) * values.size());
    cursor += values.size();
  }
  std::unique_ptr<bool[]> flags(new bool[total]);
  ScoreOutputs out;
  out.score = x + total * f;
  out.noise_probability = out.score + total;
  out.reconstruction_probability = out.noise_probability + total;
  out.reconstruction_error = out.reconstruction_probability + total;
  out.is_anomaly = flags.get();
  // A failure (a NaN or infinite value) names a row of the merged batch:
  // score each request alone instead, so each gets its own answer.
  if (!model.Score(x, total, out).ok()) return each_alone();
  if (const auto& drift = items.front()->prepared.handle.drift) drift->Observe(x, total, out.score);
  int64_t at = 0;
  for (ScoreItem* item : items) {
    item->status = absl::OkStatus();
    const int64_t rows = item->prepared.rows;
    v1::ScoreResponse* response = item->response;
    FillHeader(*item->request, item->prepared, response);
    auto copy = [&](const float* from, google::protobuf::RepeatedField<float>* to) {
      std::memcpy(Resized(to, rows), from + at, sizeof(float) * rows);
    };
    copy(out.score, response->mutable_scores());
    copy(out.noise_probability, response->mutable_noise_probability());
    copy(out.reconstruction_probability, response->mutable_reconstruction_probability());
    copy(out.reconstruction_error, response->mutable_reconstruction_error());
    item->event.anomalies = FillFlags(*item->request, flags.get() + at, rows, response);
    item->event.records = rows;
    at += rows;
  }
}

}  // namespace anorand
