// The pieces of JobManager that do not train: the records folder
// (JobStore, on a real folder), restart recovery (SettleInterruptedJob,
// on a real registry) and ListJobs' filters and pages (JobQuery).
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "model/compiled_model.h"
#include "server/job_query.h"
#include "server/job_recovery.h"
#include "server/job_store.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

v1::Job MakeJob(const std::string& id, const std::string& model, int64_t created_ms,
                v1::JobState state = v1::JOB_STATE_SUCCEEDED) {
  v1::Job j;
  j.set_id(id);
  j.mutable_spec()->set_model_name(model);
  j.set_created_unix_ms(created_ms);
  j.set_state(state);
  return j;
}

std::vector<std::string> Ids(const std::vector<v1::Job>& jobs) {
  std::vector<std::string> ids;
  for (const v1::Job& j : jobs) ids.push_back(j.id());
  return ids;
}

TEST(JobStoreTest, OneOwnerWritesLoadsAndRemovesRecords) {
  TempDir dir;
  const std::string jobs = dir.path() + "/jobs";
  JobStore owner(jobs);
  auto locked = owner.Lock();
  ASSERT_TRUE(locked.ok()) << locked.status();
  EXPECT_TRUE(*locked) << "created the folder and took its lock";
  JobStore second(jobs);
  auto second_locked = second.Lock();
  ASSERT_TRUE(second_locked.ok());
  EXPECT_FALSE(*second_locked) << "the folder already has an owner";

  owner.Write(MakeJob("job-a", "m", 1));
  owner.Write(MakeJob("job-b", "m", 2));
  // What a killed write, another program and a damaged record leave.
  std::ofstream(jobs + "/job-c.json.tmp.1234") << "{\"id\":";
  std::ofstream(jobs + "/notes.txt") << "not a record";
  std::ofstream(jobs + "/broken.json") << "{\"id\": \"job-x\", ";
  std::ofstream(jobs + "/anonymous.json") << "{\"state\": \"JOB_STATE_QUEUED\"}";
  EXPECT_THAT(Ids(owner.LoadAll()), UnorderedElementsAre("job-a", "job-b"));
  EXPECT_FALSE(std::filesystem::exists(jobs + "/job-c.json.tmp.1234"));
  EXPECT_TRUE(std::filesystem::exists(jobs + "/broken.json")) << "left for a human to read";

  owner.Remove("job-a");
  owner.Remove("job-never");
  EXPECT_THAT(Ids(owner.LoadAll()), UnorderedElementsAre("job-b"));
}

TEST(JobStoreTest, AFolderThatCannotBeCreatedIsRefusedByName) {
  TempDir dir;
  std::ofstream(dir.path() + "/file") << "x";
  JobStore store(dir.path() + "/file/jobs");
  auto locked = store.Lock();
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(locked.status().message(), HasSubstr("/file/jobs"));
}

TEST(JobRecoveryTest, AJobWhoseVersionWasPublishedSucceedsAndAnotherFails) {
  Registry registry;
  v1::ModelFile file = TinyModel(4, 1, 200, 1);
  file.set_training_job_id("job-published");
  auto compiled = CompiledModel::Create(file);
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  VersionEntry entry;
  entry.state = VersionState::kReady;
  entry.model = *compiled;
  registry.SetVersion("m", 3, std::move(entry));

  v1::Job published = MakeJob("job-published", "m", 1, v1::JOB_STATE_RUNNING);
  SettleInterruptedJob(registry, 5000, &published);
  EXPECT_EQ(published.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(published.published_version(), 3);
  EXPECT_EQ(published.finished_unix_ms(), 5000);
  EXPECT_EQ(published.progress().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(published.progress().message(), HasSubstr("confirmed after a restart"));

  for (const char* model : {"m", "other"}) {
    v1::Job lost = MakeJob("job-lost", model, 1, v1::JOB_STATE_QUEUED);
    SettleInterruptedJob(registry, 5000, &lost);
    EXPECT_EQ(lost.state(), v1::JOB_STATE_FAILED) << model;
    EXPECT_THAT(lost.error(), HasSubstr("interrupted by server restart"));
    EXPECT_EQ(lost.published_version(), 0);
  }
}

TEST(JobQueryTest, PagesFollowEachOtherNewestFirstAndATokenKeepsItsFilters) {
  std::vector<v1::Job> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(MakeJob(absl::StrCat("job-", i), "m", 100 + i));
  jobs.push_back(MakeJob("job-other", "n", 200));
  jobs.push_back(MakeJob("job-failed", "m", 300, v1::JOB_STATE_FAILED));

  v1::ListJobsRequest r;
  r.set_model_name("m");
  r.add_states(v1::JOB_STATE_SUCCEEDED);
  r.set_page_size(2);
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    auto q = JobQuery::Parse(r);
    ASSERT_TRUE(q.ok()) << q.status();
    std::vector<const v1::Job*> matched;
    for (const v1::Job& j : jobs) {
      if (q->Matches(j)) matched.push_back(&j);
    }
    const v1::ListJobsResponse resp = q->Page(matched);
    for (const v1::Job& j : resp.jobs()) seen.push_back(j.id());
    if (resp.next_page_token().empty()) break;
    r.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"job-4", "job-3", "job-2", "job-1", "job-0"}));

  // The last token this query was given is accepted with its own filters
  // and refused with another model's.
  ASSERT_FALSE(r.page_token().empty());
  EXPECT_TRUE(JobQuery::Parse(r).ok());
  r.set_model_name("n");
  EXPECT_THAT(JobQuery::Parse(r).status().message(), HasSubstr("page_token"));
  v1::ListJobsRequest bad;
  bad.set_page_size(-1);
  EXPECT_THAT(JobQuery::Parse(bad).status().message(), HasSubstr("page_size"));
  bad.set_page_size(0);
  bad.add_states(static_cast<v1::JobState>(99));
  EXPECT_THAT(JobQuery::Parse(bad).status().message(), HasSubstr("99 is not a job state"));
}

}  // namespace
}  // namespace anorand::test_support
