#include "server/job_manager.h"

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/model_file.h"
#include "model/params.h"
#include "model/trainer.h"
#include "server/client_paths.h"
#include "server/job_query.h"
#include "server/job_recovery.h"
#include "server/job_state.h"
#include "server/thread_priority.h"

namespace anorand {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewJobId() {
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  static std::mt19937_64 gen(std::random_device{}());
  return absl::StrFormat("job-%x-%06x", NowMs(), gen() & 0xffffff);
}

// The share of the whole job that the fit takes; publishing is the rest.
constexpr double kFitShare = 0.98;

v1::JobPhase PhaseOf(TrainPhase p) {
  switch (p) {
    case TrainPhase::kPreparing: return v1::JOB_PHASE_PREPARING;
    case TrainPhase::kSyntheticLabels: return v1::JOB_PHASE_SYNTHETIC_LABELS;
    case TrainPhase::kEpochs: return v1::JOB_PHASE_TRAINING;
    case TrainPhase::kStatistics: return v1::JOB_PHASE_SCORING_STATISTICS;
  }
  return v1::JOB_PHASE_UNSPECIFIED;
}

// Moves the whole-job fraction forward (never back) and derives the ETA
// from the pace so far.
void Advance(v1::JobProgress* g, double fraction, double elapsed) {
  g->set_fraction_done(std::clamp(std::max(g->fraction_done(), fraction), 0.0, 1.0));
  g->set_elapsed_seconds(elapsed);
  const double f = g->fraction_done();
  g->set_eta_seconds(f >= 0.005 && f < 1 ? elapsed * (1 - f) / f : 0);
}

std::string MemberPrefix(int member, int members) {
  return members > 1 ? absl::StrCat("member ", member + 1, "/", members, ": ") : "";
}

}  // namespace

JobManager::JobManager(ModelManager* models, JobOptions options)
    : models_(models), options_(std::move(options)), store_(options_.jobs_dir) {}

JobManager::~JobManager() { Stop(); }

absl::Status JobManager::NotOwner() const {
  return absl::FailedPreconditionError(absl::StrCat(
      "the job records folder ", store_.dir(),
      " belongs to another server process that shares it: this server neither trains nor "
      "answers for those jobs; send training calls to that server, or give this one its own "
      "--jobs_dir"));
}

absl::Status JobManager::Start() {
  auto owner = store_.Lock();
  if (!owner.ok()) return owner.status();
  owner_ = *owner;
  if (!owner_) {
    std::fprintf(stderr, "anorand-server: warning: %s\n", std::string(NotOwner().message()).c_str());
    return absl::OkStatus();
  }
  for (v1::Job& job : store_.LoadAll()) {
    auto entry = std::make_shared<Entry>();
    entry->job = std::move(job);
    if (!IsTerminalJobState(entry->job.state())) {
      SettleInterruptedJob(models_->registry(), NowMs(), &entry->job);
      store_.Write(entry->job);
    }
    absl::MutexLock lock(&mu_);
    jobs_.emplace(entry->job.id(), std::move(entry));
  }
  for (int i = 0; i < std::max(1, options_.training_threads); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  NotifyCounts();
  return absl::OkStatus();
}

void JobManager::Stop() {
  std::deque<std::shared_ptr<Entry>> queued;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    queued.swap(queue_);
    for (auto& [id, e] : jobs_) e->cancel = true;
  }
  cv_.SignalAll();
  for (auto& e : queued) {
    Update(e, [](v1::Job& j) {
      j.set_state(v1::JOB_STATE_FAILED);
      j.set_error("server stopped before the job started: submit it again");
      j.set_finished_unix_ms(NowMs());
    });
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
}

absl::Status JobManager::CheckQueueRoom() const {
  absl::MutexLock lock(&mu_);
  return QueueRoomLocked();
}

absl::Status JobManager::QueueRoomLocked() const {
  if (stopping_) return absl::UnavailableError("the server is shutting down; retry later");
  if (options_.max_queued_jobs == 0) {
    return absl::FailedPreconditionError(
        "this server does not train (--max_queued_jobs=0); submit the job to a replica that "
        "trains");
  }
  if (!owner_) return NotOwner();
  if (static_cast<int>(queue_.size()) >= options_.max_queued_jobs) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the training queue is full (", options_.max_queued_jobs,
                     " queued jobs, --max_queued_jobs); retry when a job has started"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobManager::Submit(v1::JobSpec spec, Dataset data,
                                           int64_t feedback_rows) {
  if (!owner_) {
    absl::MutexLock lock(&mu_);
    return QueueRoomLocked();  // this refusal, or an earlier one
  }
  if (data.rows < 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("the data has ", data.rows, " rows; training needs at least 10"));
  }
  auto params = ResolveParams(spec.params(), static_cast<int>(data.cols));
  if (!params.ok()) return params.status();
  *spec.mutable_params() = *params;
  if (spec.include_feedback() && !params->use_labels()) {
    return absl::InvalidArgumentError(
        "include_feedback needs params.use_labels (the paper preset ignores labels, so the "
        "feedback's known anomalies would train as normal rows); set use_labels or leave "
        "include_feedback unset");
  }
  if (auto known = KnownAnomalyRows(data, *params); !known.ok()) return known.status();
  auto entry = std::make_shared<Entry>();
  v1::Job& job = entry->job;
  job.set_id(NewJobId());
  *job.mutable_spec() = std::move(spec);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_created_unix_ms(NowMs());
  job.set_data_rows(data.rows);
  job.set_data_features(static_cast<int>(data.cols));
  job.set_data_labeled_anomalies(std::count(data.labels.begin(), data.labels.end(), 1));
  job.set_data_feedback_rows(feedback_rows);
  job.mutable_progress()->set_max_epochs(job.spec().params().max_epochs());
  job.mutable_progress()->set_members(job.spec().params().ensemble_size());
  *job.mutable_progress() = JobProgressOf(job);
  entry->data = std::move(data);
  // The QUEUED record is on disk before a worker can take the job, so it
  // never overwrites a newer one.
  store_.Write(job);
  // The answer is copied before the entry is queued: from then on a worker
  // may change entry->job under mu_.
  const v1::Job submitted = job;
  absl::Status room;
  {
    absl::MutexLock lock(&mu_);
    room = QueueRoomLocked();
    if (room.ok()) {
      jobs_.emplace(submitted.id(), entry);
      queue_.push_back(entry);
    }
  }
  if (!room.ok()) {
    store_.Remove(submitted.id());
    return room;
  }
  cv_.Signal();
  NotifyCounts();
  return submitted;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& id) const {
  if (id.empty()) return absl::InvalidArgumentError("job_id is empty");
  if (!owner_) return NotOwner();
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
  return it->second->job;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(const v1::ListJobsRequest& r) const {
  if (!owner_) return NotOwner();
  auto query = JobQuery::Parse(r);
  if (!query.ok()) return query.status();
  std::vector<const v1::Job*> matched;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, e] : jobs_) {
    if (query->Matches(e->job)) matched.push_back(&e->job);
  }
  return query->Page(std::move(matched));
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("job_id is empty");
  if (!owner_) return NotOwner();
  std::shared_ptr<Entry> entry;
  bool was_queued = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
    entry = it->second;
    const v1::JobState s = entry->job.state();
    if (IsTerminalJobState(s)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", id, " has already finished (", v1::JobState_Name(s), ")"));
    }
    if (entry->publishing) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", id, " is already publishing its version; it will succeed"));
    }
    entry->cancel = true;
    auto q = std::find(queue_.begin(), queue_.end(), entry);
    if (q != queue_.end()) {
      queue_.erase(q);
      was_queued = true;
    }
  }
  if (was_queued) {
    Update(entry, [](v1::Job& j) {
      j.set_state(v1::JOB_STATE_CANCELLED);
      j.set_error("cancelled before it started");
      j.set_finished_unix_ms(NowMs());
    });
    entry->data = Dataset();
    NotifyCounts();
  }
  return Get(id);
}

absl::StatusOr<uint64_t> JobManager::Watch(const std::string& id, Watcher on_progress) {
  if (id.empty()) return absl::InvalidArgumentError("job_id is empty");
  if (!owner_) return NotOwner();
  v1::JobProgress snapshot;
  uint64_t token;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
    snapshot = JobProgressOf(it->second->job);
    token = next_watch_++;
    // A finished job gets its one terminal message and no registration.
    if (!IsTerminalJobState(snapshot.state())) watchers_.emplace(token, std::make_pair(id, on_progress));
    // Under the lock: an Update that follows reaches the watcher after the
    // snapshot, never before it (progress would go back).
    on_progress(snapshot);
  }
  return token;
}

void JobManager::Unwatch(uint64_t token) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(token);
}

void JobManager::Update(const std::shared_ptr<Entry>& entry,
                        const std::function<void(v1::Job&)>& change) {
  v1::Job copy;
  std::vector<Watcher> to_call;
  {
    absl::MutexLock lock(&mu_);
    change(entry->job);
    entry->job.mutable_progress()->set_throttled_seconds(1e-9 * entry->throttled_ns.load());
    *entry->job.mutable_progress() = JobProgressOf(entry->job);
    copy = entry->job;
    const bool done = IsTerminalJobState(copy.state());
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      if (it->second.first == copy.id()) {
        to_call.push_back(it->second.second);
        if (done) {
          it = watchers_.erase(it);
          continue;
        }
      }
      ++it;
    }
  }
  store_.Write(copy);
  const v1::JobProgress progress = copy.progress();
  for (auto& w : to_call) w(progress);
}

std::string JobManager::CancelReason(const std::string& what) const {
  absl::MutexLock lock(&mu_);
  if (!stopping_) return what;
  return absl::StrCat(what, ": the server is shutting down (SIGTERM); submit the job again");
}

void JobManager::NotifyCounts() {
  if (!options_.events.on_counts) return;
  std::map<v1::JobState, int> counts;
  // Reported under the lock: two callers' counts reach the gauges in the
  // order they were taken, so the last report is the current state.
  absl::MutexLock lock(&mu_);
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) counts[v1::JobState(s)] = 0;
  for (const auto& [id, e] : jobs_) ++counts[e->job.state()];
  options_.events.on_counts(counts, static_cast<int>(queue_.size()));
}

void JobManager::WorkerLoop() {
  if (options_.low_priority) {
    if (absl::Status s = LowerCurrentThreadPriority(); !s.ok()) {
      std::fprintf(stderr, "anorand-server: warning: %s\n", std::string(s.message()).c_str());
    }
  }
  while (true) {
    std::shared_ptr<Entry> entry;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (stopping_) return;
      entry = queue_.front();
      queue_.pop_front();
    }
    Run(entry);
  }
}

void JobManager::Run(const std::shared_ptr<Entry>& entry) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  Update(entry, [](v1::Job& j) {
    j.set_state(v1::JOB_STATE_RUNNING);
    j.set_started_unix_ms(NowMs());
  });
  NotifyCounts();
  Dataset data = std::move(entry->data);
  entry->data = Dataset();
  const v1::JobSpec spec = entry->job.spec();
  TrainOptions options;
  options.threads = options_.omp_threads;
  options.cancelled = [&entry] { return entry->cancel.load(); };
  if (options_.throttle) {
    options.cancelled = options_.throttle->Wrap(std::move(options.cancelled), &entry->throttled_ns);
  }
  options.on_phase = [this, &entry, &elapsed](const PhaseProgress& p) {
    Update(entry, [&](v1::Job& j) {
      v1::JobProgress* g = j.mutable_progress();
      g->set_phase(PhaseOf(p.phase));
      const bool per_member = p.phase != TrainPhase::kPreparing;
      g->set_member(per_member ? p.member + 1 : 0);
      g->set_members(p.members);
      if (p.phase == TrainPhase::kSyntheticLabels) {
        g->set_epoch(0);  // the member's epochs have not started
      }
      Advance(g, kFitShare * p.fraction, elapsed());
      g->set_message(absl::StrCat(per_member ? MemberPrefix(p.member, p.members) : "",
                                  TrainPhaseName(p.phase)));
    });
  };
  options.on_epoch = [this, &entry, &elapsed](const EpochProgress& p) {
    Update(entry, [&](v1::Job& j) {
      v1::JobProgress* g = j.mutable_progress();
      g->set_phase(v1::JOB_PHASE_TRAINING);
      g->set_member(p.member + 1);
      g->set_members(p.members);
      g->set_epoch(p.epoch);
      g->set_max_epochs(p.max_epochs);
      g->set_train_loss(p.train_loss);
      g->set_classification_loss(p.classification_loss);
      g->set_reconstruction_loss(p.reconstruction_loss);
      g->set_validation_loss(p.validation_loss);
      Advance(g, kFitShare * p.fraction, elapsed());
      g->set_message(absl::StrCat(MemberPrefix(p.member, p.members), "epoch ", p.epoch, "/",
                                  p.max_epochs));
    });
  };
  auto model = TrainModel(data, spec.params(), options);
  data = Dataset();
  auto finish = [&](v1::JobState state, const std::string& error, int64_t version,
                    const v1::TrainingSummary* summary) {
    Update(entry, [&](v1::Job& j) {
      j.set_state(state);
      j.set_error(ClientText(error));
      j.set_finished_unix_ms(NowMs());
      if (state == v1::JOB_STATE_SUCCEEDED) Advance(j.mutable_progress(), 1.0, elapsed());
      if (version) j.set_published_version(version);
      if (summary) *j.mutable_summary() = *summary;
      j.mutable_progress()->set_message(state == v1::JOB_STATE_SUCCEEDED
                                            ? absl::StrCat("published version ", version)
                                            : error);
    });
    NotifyCounts();
    if (options_.events.on_finished) {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      options_.events.on_finished(state, took.count());
    }
  };
  if (absl::IsCancelled(model.status()) || entry->cancel.load()) {
    finish(v1::JOB_STATE_CANCELLED,
           CancelReason(model.ok() ? std::string("cancelled after training")
                                   : std::string(model.status().message())),
           0, nullptr);
    return;
  }
  if (!model.ok()) {
    finish(v1::JOB_STATE_FAILED, absl::StrCat("training failed: ", model.status().message()), 0,
           nullptr);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (entry->cancel.load()) {
      // Cancelled between the last mini-batch and here: nothing published.
    } else {
      entry->publishing = true;
    }
  }
  if (!entry->publishing) {
    finish(v1::JOB_STATE_CANCELLED, CancelReason("cancelled after training"), 0, nullptr);
    return;
  }
  Update(entry, [&](v1::Job& j) {
    v1::JobProgress* g = j.mutable_progress();
    g->set_phase(v1::JOB_PHASE_PUBLISHING);
    g->set_member(0);
    Advance(g, kFitShare, elapsed());
    g->set_message("publishing");
  });
  if (options_.before_publish) options_.before_publish(entry->job.id());
  model->set_name(spec.model_name());
  model->set_training_job_id(entry->job.id());
  auto version = models_->Publish(spec.model_name(), 0, *model, spec.promote_to_alias());
  if (!version.ok()) {
    finish(v1::JOB_STATE_FAILED,
           absl::StrCat("the model trained but could not be published: ", version.status().message()),
           0, nullptr);
    return;
  }
  finish(v1::JOB_STATE_SUCCEEDED, "", *version, &model->summary());
}

}  // namespace anorand
