#include "server/job_recovery.h"

#include "absl/strings/str_cat.h"
#include "server/job_state.h"

namespace anorand {

void SettleInterruptedJob(const Registry& registry, int64_t now_ms, v1::Job* job) {
  int64_t published = 0;
  const v1::ModelFile* file = nullptr;
  const auto model = registry.GetModel(job->spec().model_name());
  if (model) {
    for (const auto& [version, v] : model->versions) {
      if (v.model && v.model->info().training_job_id() == job->id()) {
        published = version;
        file = &v.model->info();
      }
    }
  }
  if (published > 0) {
    job->set_state(v1::JOB_STATE_SUCCEEDED);
    job->set_error("");
    job->set_published_version(published);
    *job->mutable_summary() = file->summary();
  } else {
    job->set_state(v1::JOB_STATE_FAILED);
    job->set_error("interrupted by server restart: submit the job again");
  }
  job->set_finished_unix_ms(now_ms);
  *job->mutable_progress() = JobProgressOf(*job);
  if (published > 0) {
    job->mutable_progress()->set_message(
        absl::StrCat("published version ", published, " (confirmed after a restart)"));
  }
}

}  // namespace anorand
