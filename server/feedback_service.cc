#include "server/feedback_service.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/names.h"
#include "server/queued_writer.h"
#include "server/raw_call.h"
#include "server/refused_call.h"
#include "server/status_util.h"

namespace anorand {
absl::Status FeedbackService::CheckModel(const std::string& name) const {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (!registry_->GetModel(name)) {
    return absl::NotFoundError(absl::StrCat("no model '", name, "' (ListModels lists them)"));
  }
  return absl::OkStatus();
}

void FeedbackService::FillCounts(const std::string& model, const FeedbackTally& t,
                                 v1::FeedbackCounts* c) const {
  c->set_model_name(model);
  c->set_num_features(t.cols);
  c->set_anomalies(t.anomalies);
  c->set_normal(t.normal);
  c->set_max_records(store_->max_records());
  c->set_skipped_lines(t.skipped_lines);
}

absl::Status FeedbackService::Add(const v1::AddFeedbackRequest& req,
                                  v1::AddFeedbackResponse* resp) {
  if (absl::Status s = CheckModel(req.model_name()); !s.ok()) return s;
  auto handle = registry_->Resolve(req.model_name(), 0, "");
  if (!handle.ok()) {
    return absl::Status(handle.status().code(),
                        absl::StrCat("feedback is checked against the width of the model's newest "
                                     "READY version: ", handle.status().message()));
  }
  const int width = handle->model->input_features();
  if (req.num_features() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_features must be >= 1 (model '", req.model_name(), "' takes ", width, ")"));
  }
  if (req.num_features() != width) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the feedback has ", req.num_features(), " features per record; model '",
        req.model_name(), "' version ", handle->version, " takes ", width));
  }
  if (req.values_size() == 0 || req.values_size() % width != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "values holds ", req.values_size(), " numbers: send whole records, a positive multiple "
        "of num_features (", width, ")"));
  }
  for (int i = 0; i < req.values_size(); ++i) {
    if (!std::isfinite(req.values(i))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i / width, ", feature ", i % width, " is not finite; every value must be a "
          "number"));
    }
  }
  const int records = req.values_size() / width;
  if (req.labels_size() != 1 && req.labels_size() != records) {
    return absl::InvalidArgumentError(absl::StrCat(
        "labels holds ", req.labels_size(), " labels for ", records, " records; send one per "
        "record, or one for all"));
  }
  for (int i = 0; i < req.labels_size(); ++i) {
    if (req.labels(i) != v1::FEEDBACK_LABEL_ANOMALY && req.labels(i) != v1::FEEDBACK_LABEL_NORMAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label ", i, " is ", req.labels(i), "; use FEEDBACK_LABEL_ANOMALY (1) or "
          "FEEDBACK_LABEL_NORMAL (2)"));
    }
  }
  if (req.ids_size() != 0 && req.ids_size() != records) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ids holds ", req.ids_size(), " ids for ", records, " records; send one per record, or "
        "none (the server assigns them)"));
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < req.ids_size(); ++i) {
    if (absl::Status s = ValidateFeedbackId(req.ids(i)); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("record ", i, ": ", s.message()));
    }
    if (!seen.insert(req.ids(i)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "id '", req.ids(i), "' is given twice (record ", i, "); ids are unique"));
    }
  }
  std::vector<v1::FeedbackRecord> batch(records);
  for (int r = 0; r < records; ++r) {
    batch[r].set_label(req.labels(req.labels_size() == 1 ? 0 : r));
    if (req.ids_size() > 0) batch[r].set_id(req.ids(r));
    batch[r].mutable_values()->Add(req.values().begin() + r * width,
                                   req.values().begin() + (r + 1) * width);
  }
  auto added = store_->Add(req.model_name(), width, std::move(batch));
  if (!added.ok()) return added.status();
  resp->set_added(added->added);
  resp->set_duplicates(added->duplicates);
  for (std::string& id : added->ids) resp->add_ids(std::move(id));
  FillCounts(req.model_name(), added->stored, resp->mutable_stored());
  return absl::OkStatus();
}

absl::Status FeedbackService::List(const v1::ListFeedbackRequest& req,
                                   v1::ListFeedbackResponse* resp) {
  std::vector<std::string> names;
  if (!req.model_name().empty()) {
    if (absl::Status s = CheckModel(req.model_name()); !s.ok()) return s;
    names.push_back(req.model_name());
  } else {
    for (const auto& [name, entry] : registry_->Snapshot()) names.push_back(name);
  }
  for (const std::string& name : names) {
    auto tally = store_->Count(name);
    if (!tally.ok()) return tally.status();
    if (req.model_name().empty() && tally->records() == 0 && tally->skipped_lines == 0) continue;
    FillCounts(name, *tally, resp->add_models());
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* FeedbackService::AddFeedback(grpc::CallbackServerContext* ctx,
                                                       const Bytes* in, Bytes* out) {
  return ServeUnaryOn<v1::AddFeedbackRequest, v1::AddFeedbackResponse>(
      work_, ctx, in, out,
      [this](const v1::AddFeedbackRequest& req, v1::AddFeedbackResponse* resp) {
        return Add(req, resp);
      },
      auth_->Check(*ctx));
}

grpc::ServerUnaryReactor* FeedbackService::ListFeedback(grpc::CallbackServerContext* ctx,
                                                        const Bytes* in, Bytes* out) {
  return ServeUnaryOn<v1::ListFeedbackRequest, v1::ListFeedbackResponse>(
      work_, ctx, in, out,
      [this](const v1::ListFeedbackRequest& req, v1::ListFeedbackResponse* resp) {
        return List(req, resp);
      },
      auth_->Check(*ctx));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* FeedbackService::ExportFeedback(
    grpc::CallbackServerContext* ctx, const Bytes* in) {
  using Refused = grpc::ServerWriteReactor<Bytes>;
  if (grpc::Status s = auth_->Check(*ctx); !s.ok()) return RefusedCall<Refused>(s);
  v1::ExportFeedbackRequest req;
  grpc::ByteBuffer bytes(*in);
  if (grpc::Status s = ParseRequest(&bytes, -1, &req); !s.ok()) return RefusedCall<Refused>(s);
  if (absl::Status s = CheckModel(req.model_name()); !s.ok()) {
    return RefusedCall<Refused>(ToGrpcStatus(s));
  }
  // The records are read on `work_`, then sent kFeedbackExportRecords a
  // message; no records still send one (empty) message.
  using Writer = QueuedWriter<v1::FeedbackRecords>;
  return new Writer(work_, [this, model = req.model_name()]() -> absl::StatusOr<Writer::Next> {
    FeedbackTally tally;
    auto read = store_->Records(model, &tally);
    if (!read.ok()) return read.status();
    auto records = std::make_shared<std::vector<v1::FeedbackRecord>>(*std::move(read));
    return Writer::Next([records, cols = tally.cols, sent = size_t{0}, first = true](
                            v1::FeedbackRecords* page) mutable {
      if (!first && sent >= records->size()) return false;
      first = false;
      page->set_num_features(cols);
      const size_t n = std::min<size_t>(kFeedbackExportRecords, records->size() - sent);
      for (size_t i = 0; i < n; ++i) *page->add_records() = std::move((*records)[sent + i]);
      sent += n;
      return true;
    });
  });
}

}  // namespace anorand
