#include "server/feedback_store.h"

#include <chrono>
#include <cmath>

#include "absl/hash/hash.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace anorand {
namespace {

constexpr char kFeedbackFile[] = "feedback.jsonl";
constexpr int64_t kMaxReadBytes = int64_t{1} << 30;

size_t HashValues(const v1::FeedbackRecord& r) {
  return absl::HashOf(std::vector<float>(r.values().begin(), r.values().end()));
}

bool ValidLabel(int label) {
  return label == v1::FEEDBACK_LABEL_ANOMALY || label == v1::FEEDBACK_LABEL_NORMAL;
}

// The lines of `bytes` that end in a newline, read into the ids and the
// tally; records not seen before go to *keep (may be null). Returns the
// bytes consumed (up to the last newline: a line still being written is
// left for the next read).
template <typename Ids>
int64_t Consume(absl::string_view bytes, Ids* ids, FeedbackTally* tally,
                std::vector<v1::FeedbackRecord>* keep) {
  const size_t end = bytes.rfind('\n');
  if (end == absl::string_view::npos) return 0;
  size_t start = 0;
  while (start <= end) {
    const size_t nl = bytes.find('\n', start);
    const absl::string_view line = bytes.substr(start, nl - start);
    start = nl + 1;
    if (line.empty()) continue;
    v1::FeedbackRecord r;
    const bool parsed = google::protobuf::util::JsonStringToMessage(std::string(line), &r).ok();
    bool valid = parsed && !r.id().empty() && ValidLabel(r.label()) && r.values_size() > 0 &&
                 (tally->cols == 0 || r.values_size() == tally->cols);
    for (int i = 0; valid && i < r.values_size(); ++i) valid = std::isfinite(r.values(i));
    if (!valid) {
      ++tally->skipped_lines;
      continue;
    }
    if (!ids->emplace(r.id(), std::pair<int, size_t>(r.label(), HashValues(r))).second) continue;
    if (tally->cols == 0) tally->cols = r.values_size();
    ++(r.label() == v1::FEEDBACK_LABEL_ANOMALY ? tally->anomalies : tally->normal);
    if (keep) keep->push_back(std::move(r));
  }
  return static_cast<int64_t>(end + 1);
}

std::string NewId(absl::BitGen& gen) {
  return absl::StrFormat("srv-%016x", absl::Uniform<uint64_t>(gen));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::Status ValidateFeedbackId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feedback id '", id.substr(0, 40), id.size() > 40 ? "..." : "", "' must have 1 to 128 ",
        "characters (got ", id.size(), ")"));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feedback id '", id, "' has the character '", std::string(1, c),
          "'; ids use letters, digits and . _ : -"));
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<FeedbackStore::Index> FeedbackStore::IndexOf(const std::string& model) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Index>& index = indexes_[model];
  if (!index) index = std::make_shared<Index>();
  return index;
}

absl::Status FeedbackStore::Refresh(const std::string& model, Index* index) {
  auto bytes = store_.ReadModelFileFrom(model, kFeedbackFile, index->offset, kMaxReadBytes);
  if (absl::IsOutOfRange(bytes.status())) {
    // The file was replaced (moved away by an operator): read it anew.
    index->offset = 0;
    index->ids.clear();
    index->tally = FeedbackTally{};
    bytes = store_.ReadModelFileFrom(model, kFeedbackFile, 0, kMaxReadBytes);
  }
  if (!bytes.ok()) return bytes.status();
  if (!*bytes) {
    index->offset = 0;
    index->ids.clear();
    index->tally = FeedbackTally{};
    return absl::OkStatus();
  }
  index->offset += Consume(**bytes, &index->ids, &index->tally, nullptr);
  return absl::OkStatus();
}

absl::StatusOr<FeedbackAdded> FeedbackStore::Add(const std::string& model, int cols,
                                                 std::vector<v1::FeedbackRecord> records) {
  std::shared_ptr<Index> index = IndexOf(model);
  absl::MutexLock lock(&index->mu);
  if (absl::Status s = Refresh(model, index.get()); !s.ok()) return s;
  FeedbackTally& tally = index->tally;
  const std::string path = absl::StrCat(store_.root(), "/", model, "/", kFeedbackFile);
  if (tally.cols != 0 && tally.cols != cols) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the feedback stored for model '", model, "' has ", tally.cols,
        " features per record, this has ", cols, " (the model was retrained on other features); "
        "move ", path, " away to start its feedback anew"));
  }
  FeedbackAdded result;
  absl::BitGen gen;
  const int64_t now = NowMs();
  std::string lines;
  std::vector<const v1::FeedbackRecord*> fresh;
  for (v1::FeedbackRecord& r : records) {
    if (r.id().empty()) r.set_id(NewId(gen));
    result.ids.push_back(r.id());
    auto it = index->ids.find(r.id());
    if (it == index->ids.end()) {
      fresh.push_back(&r);
      continue;
    }
    if (it->second.first != r.label() || it->second.second != HashValues(r)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "feedback id '", r.id(), "' is already stored for model '", model, "' with ",
          it->second.first != r.label() ? "another label" : "other values",
          "; the first record with an id counts: send this one under a new id"));
    }
    ++result.duplicates;
  }
  if (tally.records() + static_cast<int64_t>(fresh.size()) > max_records_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model '", model, "' holds ", tally.records(), " feedback records and this adds ",
        fresh.size(), ": at most ", max_records_, " are kept (--max_feedback_records); room for ",
        std::max<int64_t>(0, max_records_ - tally.records()), " more; nothing was stored"));
  }
  for (const v1::FeedbackRecord* r : fresh) {
    v1::FeedbackRecord line = *r;
    line.set_received_unix_ms(now);
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(line, &json).ok()) {
      return absl::InternalError("cannot write a feedback record as JSON");
    }
    absl::StrAppend(&lines, "\n", json);
  }
  if (!fresh.empty()) {
    lines += '\n';
    if (absl::Status s = store_.AppendModelFile(model, kFeedbackFile, lines); !s.ok()) return s;
    // Read back what was appended (and anything another replica appended
    // meanwhile), so that the offset stays at a line boundary.
    if (absl::Status s = Refresh(model, index.get()); !s.ok()) return s;
  }
  result.added = static_cast<int64_t>(fresh.size());
  result.stored = tally;
  return result;
}

absl::StatusOr<FeedbackTally> FeedbackStore::Count(const std::string& model) {
  std::shared_ptr<Index> index = IndexOf(model);
  absl::MutexLock lock(&index->mu);
  if (absl::Status s = Refresh(model, index.get()); !s.ok()) return s;
  return index->tally;
}

absl::StatusOr<std::vector<v1::FeedbackRecord>> FeedbackStore::Records(
    const std::string& model, FeedbackTally* tally) const {
  auto bytes = store_.ReadModelFileFrom(model, kFeedbackFile, 0, kMaxReadBytes);
  if (!bytes.ok()) return bytes.status();
  std::vector<v1::FeedbackRecord> records;
  FeedbackTally read;
  if (*bytes) {
    absl::flat_hash_map<std::string, std::pair<int, size_t>> ids;
    Consume(**bytes, &ids, &read, &records);
  }
  if (tally) *tally = read;
  return records;
}

absl::StatusOr<int64_t> AppendFeedback(const FeedbackStore& store, const std::string& model,
                                       Dataset* data) {
  FeedbackTally tally;
  auto records = store.Records(model, &tally);
  if (!records.ok()) return records.status();
  if (records->empty()) return 0;
  if (tally.cols != data->cols) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the feedback stored for model '", model, "' has ", tally.cols, " features per "
        "record; the training data has ", data->cols));
  }
  if (!data->has_labels()) data->labels.assign(static_cast<size_t>(data->rows), 0);
  for (const v1::FeedbackRecord& r : *records) {
    data->x.insert(data->x.end(), r.values().begin(), r.values().end());
    data->labels.push_back(r.label() == v1::FEEDBACK_LABEL_ANOMALY ? 1 : 0);
  }
  data->rows += static_cast<int64_t>(records->size());
  return static_cast<int64_t>(records->size());
}

}  // namespace anorand
