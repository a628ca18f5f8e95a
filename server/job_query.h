// File: job_query.h
//
// A ListJobs request, checked once: its filters (model name, states) and
// its page (size and the token a previous page returned). The page token is
// "<offset>/<fingerprint of the filters>", so a token is refused when sent
// with other filters. No gRPC.
#ifndef ANORAND_SERVER_JOB_QUERY_H_
#define ANORAND_SERVER_JOB_QUERY_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/training.pb.h"

namespace anorand {

class JobQuery {
 public:
  // INVALID_ARGUMENT naming the field: a negative page_size, a state out
  // of range, a page_token this server did not return for these filters.
  static absl::StatusOr<JobQuery> Parse(const v1::ListJobsRequest& request);

  bool Matches(const v1::Job& job) const;
  // The requested page of `matched` (the jobs that Match), newest first
  // (created_unix_ms, then id, descending), with the next page's token
  // when more remain.
  v1::ListJobsResponse Page(std::vector<const v1::Job*> matched) const;

 private:
  JobQuery() = default;

  v1::ListJobsRequest request_;
  int page_size_ = 0;  // after the default (100) and the cap (1000)
  size_t offset_ = 0;
  std::string fingerprint_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_JOB_QUERY_H_
