#include "server/batcher.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace anorand {

absl::Status ValidateBatchingOptions(const BatchingOptions& o) {
  if (o.max_records < 1 || o.max_records > (1 << 24))
    return absl::InvalidArgumentError("--batch_max_records must be in [1, 16777216]");
  if (o.max_delay_us < 0 || o.max_delay_us > 1000000)
    return absl::InvalidArgumentError(
        "--batch_max_delay_us must be in [0, 1000000] (0 = merge only what queued while busy)");
  if (o.max_queued_records < 1 || o.max_queued_records > (1ll << 32))
    return absl::InvalidArgumentError("--batch_max_queued_records must be in [1, 4294967296]");
  if (o.max_parallel < 0 || o.max_parallel > 1024)
    return absl::InvalidArgumentError(
        "--batch_max_parallel must be in [0, 1024] (0 = one per core)");
  return absl::OkStatus();
}

DynamicBatcher::DynamicBatcher(const ScoreHandler* handler, BatchingOptions options,
                               std::function<void(int requests, int64_t records)> on_pass,
                               ScoringLoad* load)
    : handler_(handler),
      options_(options),
      on_pass_(std::move(on_pass)),
      load_(load),
      max_parallel_(options.max_parallel > 0
                        ? options.max_parallel
                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {}

int64_t DynamicBatcher::queued_records() const {
  absl::MutexLock lock(&mu_);
  return queued_records_;
}

void DynamicBatcher::Answer(Pending* p) const {
  handler_->Observe(&p->item.event, p->item.status, p->item.response);
  if (load_) load_->End();
  p->done(p->item.status);
}

void DynamicBatcher::Submit(const v1::ScoreRequest* request, v1::ScoreResponse* response,
                            Clock::time_point deadline, Done done) {
  if (load_) load_->Begin();  // Answer ends it
  auto p = std::make_unique<Pending>();
  p->item.request = request;
  p->item.response = response;
  p->deadline = deadline;
  p->done = std::move(done);
  auto prepared = handler_->Prepare(*request, &p->item.event);
  if (!prepared.ok() || request->explain()) {
    p->item.status = prepared.ok() ? handler_->Run(*request, *prepared, response, &p->item.event)
                                   : prepared.status();
    Answer(p.get());
    return;
  }
  p->item.prepared = *std::move(prepared);
  const CompiledModel* key = p->item.prepared.handle.model.get();
  const int64_t rows = p->item.prepared.rows;
  int64_t queued_when_full = -1;
  {
    absl::MutexLock lock(&mu_);
    if (queued_records_ > 0 && queued_records_ + rows > options_.max_queued_records) {
      queued_when_full = queued_records_;
    } else {
      p->enqueued = Clock::now();
      Queue& q = queues_[key];
      q.items.push_back(std::move(p));
      q.records += rows;
      queued_records_ += rows;
      // A pass waiting for its batch to fill, or no free slot: a pass takes it.
      if (q.waiting > 0 || q.leaders >= max_parallel_) {
        if (q.waiting > 0 && q.records >= options_.max_records) cv_.SignalAll();
        return;
      }
      ++q.leaders;
    }
  }
  if (queued_when_full >= 0) {
    p->item.status = absl::ResourceExhaustedError(absl::StrCat(
        "the scoring queue is full: ", queued_when_full, " records wait and this request has ",
        rows, " (--batch_max_queued_records is ", options_.max_queued_records,
        "); retry with backoff, or add replicas"));
    Answer(p.get());
    return;
  }
  Lead(key);
}

void DynamicBatcher::Lead(const CompiledModel* key) {
  const auto delay = std::chrono::microseconds(options_.max_delay_us);
  mu_.Lock();
  Queue& q = queues_.at(key);  // stays put while q.leaders > 0
  while (true) {
    if (!q.items.empty() && options_.max_delay_us > 0 && q.records < options_.max_records) {
      // Not past the oldest request's own deadline either.
      const Clock::time_point until =
          std::min(q.items.front()->enqueued + delay, q.items.front()->deadline);
      ++q.waiting;
      while (q.records < options_.max_records) {
        const Clock::duration left = until - Clock::now();
        if (left <= Clock::duration::zero()) break;
        cv_.WaitWithTimeout(&mu_, absl::FromChrono(left));
      }
      --q.waiting;
    }
    if (q.items.empty()) {
      if (--q.leaders == 0) queues_.erase(key);
      mu_.Unlock();
      return;
    }
    std::vector<std::unique_ptr<Pending>> batch;
    int64_t records = 0;
    while (!q.items.empty()) {
      const int64_t rows = q.items.front()->item.prepared.rows;
      if (!batch.empty() && records + rows > options_.max_records) break;
      records += rows;
      batch.push_back(std::move(q.items.front()));
      q.items.pop_front();
    }
    q.records -= records;
    queued_records_ -= records;
    mu_.Unlock();
    Execute(std::move(batch));
    mu_.Lock();
  }
}

void DynamicBatcher::Execute(std::vector<std::unique_ptr<Pending>> batch) {
  const Clock::time_point now = Clock::now();
  std::vector<ScoreItem*> items;
  items.reserve(batch.size());
  int64_t records = 0;
  for (auto& p : batch) {
    if (p->deadline < now) {
      p->item.status = absl::DeadlineExceededError(
          "the call's deadline passed while it waited to be scored; give the call more time "
          "(or lower --batch_max_delay_us)");
      continue;
    }
    items.push_back(&p->item);
    records += p->item.prepared.rows;
  }
  if (!items.empty()) {
    handler_->ScoreTogether(items);
    if (on_pass_) on_pass_(static_cast<int>(items.size()), records);
  }
  for (auto& p : batch) Answer(p.get());
}

}  // namespace anorand
