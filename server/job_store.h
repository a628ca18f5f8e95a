// File: job_store.h
//
// The training job records on disk: one protobuf-JSON file per job,
// <jobs_dir>/<id>.json, each written atomically (write, fsync, rename), and
// the folder's lock, <jobs_dir>/.lock, that makes one process their owner
// for as long as it lives (the kernel drops a flock when the process dies).
// No gRPC. Thread-safe after Lock: Write may be called from any thread.
#ifndef ANORAND_SERVER_JOB_STORE_H_
#define ANORAND_SERVER_JOB_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/training.pb.h"

namespace anorand {

class JobStore {
 public:
  explicit JobStore(std::string dir) : dir_(std::move(dir)) {}
  ~JobStore();  // releases the lock
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  const std::string& dir() const { return dir_; }

  // Creates the folder and takes its lock: true when this object now owns
  // the records, false when another process (or JobStore) holds the lock;
  // FAILED_PRECONDITION naming the path when the folder cannot be created,
  // or its lock file opened or locked. Call once, before the others.
  absl::StatusOr<bool> Lock();

  // Every record in the folder, in no particular order. Temporary files of
  // a write killed midway are removed; a file that is not a readable job
  // record (no id, not JSON, over 16 MiB) is skipped and left as it is.
  // Only for the owner.
  std::vector<v1::Job> LoadAll() const;

  // Writes the job's record. A record that cannot be written is logged to
  // stderr, not returned: the job and the model it publishes do not depend
  // on it. Only for the owner.
  void Write(const v1::Job& job) const;
  // Removes the record of job `id`; absent is fine. Only for the owner.
  void Remove(const std::string& id) const;

 private:
  const std::string dir_;
  int lock_fd_ = -1;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_JOB_STORE_H_
