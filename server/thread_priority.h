// File: thread_priority.h
//
// Lowers the calling thread's CPU scheduling priority so that scoring wins
// the CPU whenever both want it: training threads call this once, before
// they start any OpenMP/oneDNN work. Linux threads inherit the policy and
// nice value of the thread that creates them, and libgomp creates a
// thread's worker pool from that thread on its first parallel region, so
// the OpenMP workers a job thread starts run at the same low priority.
//
// Applies to the calling thread only (its thread id), never to the process.
// Thread-safe. On failure (a kernel without SCHED_IDLE, a seccomp filter)
// the thread keeps its priority and the error says why; callers log it and
// go on training.
#ifndef ANORAND_SERVER_THREAD_PRIORITY_H_
#define ANORAND_SERVER_THREAD_PRIORITY_H_

#include "absl/status/status.h"

namespace anorand {

// SCHED_IDLE: the thread runs only when no normal thread on its CPU wants
// to run (sched(7)).
absl::Status LowerCurrentThreadPriority();

}  // namespace anorand

#endif  // ANORAND_SERVER_THREAD_PRIORITY_H_
