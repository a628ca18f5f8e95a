#include "server/job_query.h"

#include <algorithm>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace anorand {

absl::StatusOr<JobQuery> JobQuery::Parse(const v1::ListJobsRequest& r) {
  if (r.page_size() < 0) return absl::InvalidArgumentError("page_size must be >= 0");
  for (int s : r.states()) {
    if (s <= v1::JOB_STATE_UNSPECIFIED || s > v1::JOB_STATE_CANCELLED) {
      return absl::InvalidArgumentError(absl::StrCat("states: ", s, " is not a job state"));
    }
  }
  JobQuery q;
  q.request_ = r;
  q.page_size_ = r.page_size() == 0 ? 100 : std::min(r.page_size(), 1000);
  std::string filters = r.model_name();
  for (int s : r.states()) absl::StrAppend(&filters, ",", s);
  q.fingerprint_ = absl::StrFormat("%x", std::hash<std::string>()(filters));
  if (!r.page_token().empty()) {
    const size_t slash = r.page_token().find('/');
    if (slash == std::string::npos || r.page_token().substr(slash + 1) != q.fingerprint_ ||
        !absl::SimpleAtoi(r.page_token().substr(0, slash), &q.offset_)) {
      return absl::InvalidArgumentError(
          "page_token is not one this server returned for these filters");
    }
  }
  return q;
}

bool JobQuery::Matches(const v1::Job& j) const {
  if (!request_.model_name().empty() && j.spec().model_name() != request_.model_name()) {
    return false;
  }
  return request_.states_size() == 0 ||
         std::find(request_.states().begin(), request_.states().end(), j.state()) !=
             request_.states().end();
}

v1::ListJobsResponse JobQuery::Page(std::vector<const v1::Job*> matched) const {
  std::sort(matched.begin(), matched.end(), [](const v1::Job* a, const v1::Job* b) {
    return a->created_unix_ms() != b->created_unix_ms() ? a->created_unix_ms() > b->created_unix_ms()
                                                        : a->id() > b->id();
  });
  v1::ListJobsResponse resp;
  for (size_t i = offset_; i < matched.size() && resp.jobs_size() < page_size_; ++i) {
    *resp.add_jobs() = *matched[i];
  }
  if (offset_ + resp.jobs_size() < matched.size()) {
    resp.set_next_page_token(absl::StrCat(offset_ + resp.jobs_size(), "/", fingerprint_));
  }
  return resp;
}

}  // namespace anorand
