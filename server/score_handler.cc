#include "server/score_handler.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "server/names.h"

namespace anorand {

absl::Status ScoreHandler::Score(const v1::ScoreRequest& request,
                                 v1::ScoreResponse* response) const {
  ScoreEvent event;
  event.model = &request.model().name();
  absl::Status s = ScoreImpl(request, response, &event);
  event.code = s.code();
  if (s.ok()) event.response = response;
  if (observer_) observer_(event);
  return s;
}

absl::Status ScoreHandler::ScoreImpl(const v1::ScoreRequest& request,
                                     v1::ScoreResponse* response, ScoreEvent* event) const {
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

  response->set_model_name(spec.name());
  response->set_model_version(handle->version);
  response->set_request_id(request.request_id());
  response->set_threshold(model.score_stats().threshold());
  auto resize = [rows](google::protobuf::RepeatedField<float>* field) {
    field->Resize(static_cast<int>(rows), 0.0f);
    return field->mutable_data();
  };
  std::unique_ptr<bool[]> flags(new bool[rows]);
  ScoreOutputs out;
  out.score = resize(response->mutable_scores());
  out.noise_probability = resize(response->mutable_noise_probability());
  out.reconstruction_probability = resize(response->mutable_reconstruction_probability());
  out.reconstruction_error = resize(response->mutable_reconstruction_error());
  out.is_anomaly = flags.get();
  if (request.explain()) {
    response->mutable_contributions()->Resize(static_cast<int>(rows * f), 0.0f);
    out.contributions = response->mutable_contributions()->mutable_data();
  }
  if (absl::Status s = model.Score(batch.values().data(), rows, out); !s.ok()) {
    response->Clear();
    return s;
  }
  response->mutable_is_anomaly()->Reserve(static_cast<int>(rows));
  int64_t anomalies = 0;
  for (int64_t r = 0; r < rows; ++r) {
    response->add_is_anomaly(flags[r]);
    anomalies += flags[r];
  }
  *response->mutable_ids() = batch.ids();
  event->records = rows;
  event->anomalies = anomalies;
  return absl::OkStatus();
}

}  // namespace anorand
