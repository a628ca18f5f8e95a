// File: job_recovery.h
//
// What a job record that was QUEUED or RUNNING when its server stopped
// becomes at the next start. No gRPC.
#ifndef ANORAND_SERVER_JOB_RECOVERY_H_
#define ANORAND_SERVER_JOB_RECOVERY_H_

#include <cstdint>

#include "anorand/v1/training.pb.h"
#include "server/registry.h"

namespace anorand {

// Settles `job`, which must not be terminal (job_state.h), as of `now_ms`:
// SUCCEEDED, with its published_version and summary, when `registry` holds
// a loaded (READY) version of the job's model carrying its id (ModelFile.training_job_id:
// it was published before the stop, and running it again would train a
// duplicate); otherwise FAILED with "interrupted by server restart". The
// store's first scan must have filled `registry`.
void SettleInterruptedJob(const Registry& registry, int64_t now_ms, v1::Job* job);

}  // namespace anorand

#endif  // ANORAND_SERVER_JOB_RECOVERY_H_
