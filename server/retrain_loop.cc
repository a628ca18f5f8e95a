#include "server/retrain_loop.h"

#include <chrono>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace anorand {
namespace {

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

v1::ModelEvent Event(v1::ModelEventKind kind, int64_t version, std::string detail) {
  v1::ModelEvent e;
  e.set_kind(kind);
  e.set_version(version);
  e.set_detail(std::move(detail));
  return e;
}

// The policy and the stage the model's last event leaves it in.
v1::RetrainStatus StatusAfter(const v1::RetrainPolicy& policy, const v1::ModelEvent* last) {
  v1::RetrainStatus s;
  *s.mutable_policy() = policy;
  s.set_stage(v1::RETRAIN_STAGE_WATCHING);
  if (last) {
    s.set_since_unix_ms(last->unix_ms());
    switch (last->kind()) {
      case v1::MODEL_EVENT_RETRAIN_SUBMITTED:
        s.set_stage(v1::RETRAIN_STAGE_TRAINING);
        s.set_job_id(last->job_id());
        break;
      case v1::MODEL_EVENT_SHADOW_SET:
        s.set_stage(v1::RETRAIN_STAGE_SHADOWING);
        s.set_candidate_version(last->candidate_version());
        break;
      case v1::MODEL_EVENT_HELD:
        s.set_stage(v1::RETRAIN_STAGE_HELD);
        s.set_candidate_version(last->candidate_version());
        break;
      default:
        break;
    }
  }
  if (policy.paused()) s.set_stage(v1::RETRAIN_STAGE_PAUSED);
  return s;
}

std::string Figures(const ShadowComparisonStats& c) {
  return absl::StrFormat(
      "rank correlation %.3f, flagged by the candidate only %.4f, by the serving version only "
      "%.4f, over the last %d of %d records compared",
      c.rank_correlation, c.shadow_only_flagged, c.serving_only_flagged, c.window, c.compared);
}

}  // namespace

absl::Status JudgeCandidate(const v1::RetrainPolicy& policy, const ShadowComparisonStats& c) {
  if (c.rank_correlation < policy.min_rank_correlation()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "rank correlation %.3f is below the policy's min_rank_correlation %.3f",
        c.rank_correlation, policy.min_rank_correlation()));
  }
  if (c.shadow_only_flagged > policy.max_shadow_only_flagged_ratio()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the candidate alone flags %.4f of the records, above the policy's "
        "max_shadow_only_flagged_ratio %.4f",
        c.shadow_only_flagged, policy.max_shadow_only_flagged_ratio()));
  }
  return absl::OkStatus();
}

RetrainLoop::RetrainLoop(ModelStore store, ModelManager* manager, JobManager* jobs, ReservoirSet* reservoirs,
                         const ShadowScorer* shadow, RetrainLoopOptions options,
                         const FeedbackStore* feedback)
    : manager_(manager),
      jobs_(jobs),
      reservoirs_(reservoirs),
      feedback_(feedback),
      shadow_(shadow),
      options_(std::move(options)),
      store_(std::move(store)) {}

RetrainLoop::~RetrainLoop() { Stop(); }

void RetrainLoop::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void RetrainLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void RetrainLoop::Loop() {
  const absl::Duration period = absl::Seconds(options_.check_seconds);
  for (;;) {
    Check();
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), period)) return;
  }
}

absl::StatusOr<std::optional<v1::RetrainStatus>> RetrainLoop::ReadStatus(
    const std::string& model) const {
  auto policy = store_.ReadPolicy(model);
  if (!policy.ok()) return policy.status();
  if (!*policy) return std::optional<v1::RetrainStatus>();
  auto last = store_.History(model, 1);
  if (!last.ok()) return last.status();
  return std::optional<v1::RetrainStatus>(
      StatusAfter(**policy, last->empty() ? nullptr : &last->back()));
}

void RetrainLoop::Check() {
  absl::MutexLock step(&step_mu_);
  std::map<std::string, v1::RetrainStatus> fresh;
  for (const auto& [name, entry] : manager_->registry().Snapshot()) {
    auto status = ReadStatus(name);
    if (status.ok() && *status && jobs_->owns_records()) {
      Step(name, **status);
      status = ReadStatus(name);
    }
    if (!status.ok()) {
      const std::string error(status.status().message());
      if (reported_[name] != error) {
        std::fprintf(stderr, "anorand-server: warning: retrain policy of '%s' not applied: %s\n",
                     name.c_str(), error.c_str());
        reported_[name] = error;
      }
      continue;
    }
    reported_.erase(name);
    if (*status) fresh[name] = **std::move(status);
  }
  absl::MutexLock lock(&mu_);
  status_ = std::move(fresh);
}

void RetrainLoop::Step(const std::string& model, const v1::RetrainStatus& status) {
  const v1::RetrainPolicy& policy = status.policy();
  switch (status.stage()) {
    case v1::RETRAIN_STAGE_WATCHING:
      Watch(model, policy);
      return;
    case v1::RETRAIN_STAGE_TRAINING:
      FollowJob(model, policy, status);
      return;
    case v1::RETRAIN_STAGE_SHADOWING:
      JudgeShadow(model, policy, status);
      return;
    default:  // HELD and PAUSED wait for an operator
      above_since_.erase(model);
      return;
  }
}

void RetrainLoop::Watch(const std::string& model, const v1::RetrainPolicy& policy) {
  auto m = manager_->registry().GetModel(model);
  if (!m) return;
  auto alias = m->aliases.find(policy.alias());
  if (alias == m->aliases.end()) {
    above_since_.erase(model);
    return;
  }
  const int64_t version = alias->second;
  auto v = m->versions.find(version);
  if (v == m->versions.end() || v->second.state != VersionState::kReady || !v->second.drift) {
    above_since_.erase(model);
    return;
  }
  const DriftStats drift = v->second.drift->Stats();
  if (drift.window * 2 < v->second.drift->window_records() ||
      !(drift.score_psi > policy.score_psi_threshold())) {
    above_since_.erase(model);
    return;
  }
  const int64_t now = SteadyMs();
  const int64_t since = above_since_.emplace(model, now).first->second;
  if (now - since < static_cast<int64_t>(policy.sustained_seconds() * 1000)) return;
  Submit(model, policy, version,
         absl::StrFormat("score PSI %.3f of version %d above %.3f for %.0f s, over %d records",
                         drift.score_psi, version, policy.score_psi_threshold(),
                         (now - since) / 1000.0, drift.window));
}

void RetrainLoop::Submit(const std::string& model, const v1::RetrainPolicy& policy,
                         int64_t version, const std::string& why) {
  // A failed submit waits a whole sustained period before the next.
  above_since_[model] = SteadyMs();
  auto entry = manager_->registry().GetVersion(model, version);
  if (!entry || !entry->model) return;
  auto data = reservoirs_->TrainingData(model);
  if (!data.ok()) {
    Record(model, Event(v1::MODEL_EVENT_RETRAIN_NOT_SUBMITTED, version,
                        absl::StrCat(why, "; no job: ", data.status().message())));
    return;
  }
  // Reservoir records carry no names: the new version keeps the old one's.
  const auto& names = entry->model->info().feature_names();
  if (data->feature_names.empty() && names.size() == data->cols) {
    data->feature_names.assign(names.begin(), names.end());
  }
  v1::JobSpec spec;
  spec.set_model_name(model);
  spec.set_from_reservoir(true);
  *spec.mutable_params() = entry->model->info().params();
  const int64_t reservoir_rows = data->rows;
  std::string feedback_note;
  int64_t feedback_rows = 0;
  if (feedback_ && spec.params().use_labels()) {
    auto added = AppendFeedback(*feedback_, model, &*data);
    if (!added.ok()) {
      feedback_note = absl::StrCat(" (feedback left out: ", added.status().message(), ")");
    } else if (*added > 0) {
      feedback_rows = *added;
      spec.set_include_feedback(true);
      feedback_note = absl::StrCat(" and ", feedback_rows, " feedback records");
    }
  }
  spec.set_description(
      absl::StrCat("retrain policy of alias '", policy.alias(), "': ", why));
  auto job = jobs_->Submit(std::move(spec), *std::move(data), feedback_rows);
  if (!job.ok()) {
    Record(model, Event(v1::MODEL_EVENT_RETRAIN_NOT_SUBMITTED, version,
                        absl::StrCat(why, "; no job: ", job.status().message())));
    return;
  }
  v1::ModelEvent e = Event(v1::MODEL_EVENT_RETRAIN_SUBMITTED, version,
                           absl::StrCat(why, "; training on ", reservoir_rows,
                                        " reservoir records", feedback_note));
  e.set_job_id(job->id());
  Record(model, std::move(e));
}

void RetrainLoop::FollowJob(const std::string& model, const v1::RetrainPolicy& policy,
                            const v1::RetrainStatus& status) {
  auto job = jobs_->Get(status.job_id());
  if (job.ok() && (job->state() == v1::JOB_STATE_QUEUED ||
                   job->state() == v1::JOB_STATE_RUNNING)) {
    return;
  }
  auto m = manager_->registry().GetModel(model);
  int64_t serving = 0;
  if (m) {
    auto a = m->aliases.find(policy.alias());
    if (a != m->aliases.end()) serving = a->second;
  }
  if (job.ok() && job->state() == v1::JOB_STATE_SUCCEEDED) {
    const int64_t candidate = job->published_version();
    ShadowSpec spec;
    spec.version = candidate;
    spec.sample = policy.shadow_sample_fraction();
    v1::ModelEvent e;
    if (absl::Status s = manager_->SetShadow(model, spec); !s.ok()) {
      e = Event(v1::MODEL_EVENT_CANDIDATE_DROPPED, serving,
                absl::StrCat("cannot set version ", candidate, " as the shadow: ", s.message()));
    } else {
      e = Event(v1::MODEL_EVENT_SHADOW_SET, serving,
                absl::StrFormat("version %d scores %.3g of the records in shadow", candidate,
                                policy.shadow_sample_fraction()));
    }
    e.set_candidate_version(candidate);
    e.set_job_id(status.job_id());
    Record(model, std::move(e));
    return;
  }
  std::string why;
  if (!job.ok()) {
    why = std::string(job.status().message());
  } else {
    why = absl::StrCat("the job ended ", v1::JobState_Name(job->state()),
                       job->error().empty() ? "" : ": ", job->error());
  }
  v1::ModelEvent e = Event(v1::MODEL_EVENT_JOB_FAILED, serving, why);
  e.set_job_id(status.job_id());
  Record(model, std::move(e));
  above_since_[model] = SteadyMs();  // a whole sustained period before the next
}

void RetrainLoop::JudgeShadow(const std::string& model, const v1::RetrainPolicy& policy,
                              const v1::RetrainStatus& status) {
  auto m = manager_->registry().GetModel(model);
  if (!m) return;
  const int64_t candidate = status.candidate_version();
  auto alias = m->aliases.find(policy.alias());
  const int64_t serving = alias == m->aliases.end() ? 0 : alias->second;
  auto drop = [&](std::string why) {
    v1::ModelEvent e = Event(v1::MODEL_EVENT_CANDIDATE_DROPPED, serving, std::move(why));
    e.set_candidate_version(candidate);
    Record(model, std::move(e));
  };
  if (!m->shadow || m->shadow->version != candidate) {
    return drop(absl::StrCat("the shadow is no longer version ", candidate, " (changed by hand)"));
  }
  if (serving == 0) return drop(absl::StrCat("the alias '", policy.alias(), "' was removed"));
  if (serving == candidate) {
    return drop(absl::StrCat("the alias '", policy.alias(), "' was moved to version ", candidate,
                             " by hand"));
  }
  if (!shadow_) return;
  for (const ShadowComparisonStats& c : shadow_->Compare(model)) {
    if (c.version != serving || c.shadow_version != candidate) continue;
    if (c.compared < policy.min_compared_records()) return;
    const absl::Status verdict = JudgeCandidate(policy, c);
    v1::ModelEvent e;
    if (!verdict.ok()) {
      e = Event(v1::MODEL_EVENT_HELD, serving,
                absl::StrCat(verdict.message(), "; ", Figures(c),
                             ". The candidate stays in shadow: promote it by hand "
                             "(SetAlias), or set the policy again to resume watching"));
    } else if (absl::Status s = manager_->SetAlias(model, policy.alias(), candidate); !s.ok()) {
      e = Event(v1::MODEL_EVENT_HELD, serving,
                absl::StrCat("the comparison passed (", Figures(c), ") but the alias '",
                             policy.alias(), "' could not be moved: ", s.message()));
    } else {
      absl::Status cleared = manager_->ClearShadow(model);
      e = Event(v1::MODEL_EVENT_PROMOTED, serving,
                absl::StrCat("alias '", policy.alias(), "' moved from version ", serving, " to ",
                             candidate, ": ", Figures(c),
                             cleared.ok() ? "" : "; the shadow could not be cleared: ",
                             cleared.ok() ? "" : cleared.message()));
      above_since_.erase(model);
    }
    e.set_candidate_version(candidate);
    Record(model, std::move(e));
    return;
  }
}

void RetrainLoop::Record(const std::string& model, v1::ModelEvent event) {
  event.set_unix_ms(UnixMs());
  event.set_replica(options_.replica);
  // Counted first: a reader who sees the event in the history also sees it
  // in anorand_retrain_events_total.
  {
    absl::MutexLock lock(&mu_);
    ++counts_[{model, event.kind()}];
  }
  if (absl::Status s = store_.Append(model, event); !s.ok()) {
    std::fprintf(stderr, "anorand-server: warning: cannot record a %s event of '%s': %s\n",
                 v1::ModelEventKind_Name(event.kind()).c_str(), model.c_str(),
                 std::string(s.message()).c_str());
  }
}

absl::StatusOr<v1::RetrainStatus> RetrainLoop::SetPolicy(const std::string& model,
                                                         v1::RetrainPolicy policy) {
  policy = WithRetrainDefaults(std::move(policy));
  if (absl::Status s = ValidateRetrainPolicy(policy); !s.ok()) return s;
  auto m = manager_->registry().GetModel(model);
  if (!m) return absl::NotFoundError(absl::StrCat("model '", model, "' not found"));
  absl::MutexLock step(&step_mu_);
  if (absl::Status s = store_.WritePolicy(model, policy); !s.ok()) return s;
  above_since_.erase(model);
  auto alias = m->aliases.find(policy.alias());
  Record(model, Event(v1::MODEL_EVENT_POLICY_SET,
                      alias == m->aliases.end() ? 0 : alias->second,
                      policy.paused() ? "paused" : "watching"));
  auto status = ReadStatus(model);
  if (!status.ok()) return status.status();
  if (!*status) return absl::InternalError("the retrain policy written cannot be read back");
  absl::MutexLock lock(&mu_);
  status_[model] = **status;
  return **status;
}

absl::Status RetrainLoop::ClearPolicy(const std::string& model) {
  if (!manager_->registry().GetModel(model)) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' not found"));
  }
  absl::MutexLock step(&step_mu_);
  auto had = store_.ReadPolicy(model);
  if (had.ok() && !*had) return absl::OkStatus();
  if (absl::Status s = store_.WritePolicy(model, std::nullopt); !s.ok()) return s;
  above_since_.erase(model);
  Record(model, Event(v1::MODEL_EVENT_POLICY_CLEARED, 0, ""));
  absl::MutexLock lock(&mu_);
  status_.erase(model);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::ModelEvent>> RetrainLoop::History(const std::string& model,
                                                                 int limit) const {
  if (!manager_->registry().GetModel(model)) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' not found"));
  }
  return store_.History(model, limit);
}

std::optional<v1::RetrainStatus> RetrainLoop::Status(const std::string& model) const {
  absl::MutexLock lock(&mu_);
  auto it = status_.find(model);
  if (it == status_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, v1::RetrainStatus> RetrainLoop::StatusAll() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

std::map<std::pair<std::string, v1::ModelEventKind>, int64_t> RetrainLoop::EventCounts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

}  // namespace anorand
