// File: store_check.h
//
// Reads one model's state from a running server (ListModels, a pinned Score
// and an ExportVersion of every version, ListJobs) and from its folder on
// disk, and checks what must hold whatever happened before, a crash
// included: every listed version is READY, scores, and exports the bytes of
// its file, which the model library's loader accepts; every alias points at
// a listed version and aliases.json says the same; the numbered folders are
// exactly the listed versions; no temp file or folder is left in the store
// after start-up; no job is still QUEUED or RUNNING. Each violation is a
// gtest failure naming `context`.
#ifndef ANORAND_TESTS_RELIABILITY_STORE_CHECK_H_
#define ANORAND_TESTS_RELIABILITY_STORE_CHECK_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "anorand/v1/training.pb.h"
#include "tests/reliability/server_process.h"

namespace anorand::test_support {

struct StoreState {
  std::map<int64_t, v1::VersionInfo> versions;
  std::map<int64_t, std::string> bytes;  // the exported (= on disk) file per version
  std::map<std::string, int64_t> aliases;
  std::vector<v1::Job> jobs;
  int leftovers = 0;      // temp entries found in the store after start-up
  int job_leftovers = 0;  // temp files in <root>/.jobs (reported, not checked)
};

// Temp entries (a write in progress, or left by a killed writer) in `dir`.
int CountTempEntries(const std::string& dir);

// `d` is the model's input width (every version of the tests' model has it).
StoreState ReadAndCheckStore(const ServerProcess& server, const std::string& root,
                             const std::string& model, int d, const std::string& context);

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_RELIABILITY_STORE_CHECK_H_
