// File: job_state.h
//
// Facts about one training job record (training.proto Job) that the queue,
// the store and restart recovery share. No gRPC.
#ifndef ANORAND_SERVER_JOB_STATE_H_
#define ANORAND_SERVER_JOB_STATE_H_

#include "anorand/v1/training.pb.h"

namespace anorand {

// SUCCEEDED, FAILED and CANCELLED: the job will not change again.
inline bool IsTerminalJobState(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
         s == v1::JOB_STATE_CANCELLED;
}

// The job's progress as watchers see it: its id and state filled in, and no
// ETA once it has ended.
inline v1::JobProgress JobProgressOf(const v1::Job& job) {
  v1::JobProgress p = job.progress();
  p.set_job_id(job.id());
  p.set_state(job.state());
  if (IsTerminalJobState(job.state())) p.set_eta_seconds(0);
  return p;
}

}  // namespace anorand

#endif  // ANORAND_SERVER_JOB_STATE_H_
