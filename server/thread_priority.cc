#include "server/thread_priority.h"

#include <sched.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace anorand {

absl::Status LowerCurrentThreadPriority() {
  sched_param param{};
  param.sched_priority = 0;
  // pid 0 is the calling thread (sched_setscheduler acts per thread on Linux).
  if (sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot lower the training thread's priority (SCHED_IDLE): ", std::strerror(errno),
        "; training competes with scoring as an equal (--training_low_priority=false "
        "silences this)"));
  }
  return absl::OkStatus();
}

}  // namespace anorand
