// File: test_util.h
//
// Helpers shared by the test suites: a temporary folder removed at the end,
// a small trained model made in a second or less, and the location of
// ../shared (datasets, golden vectors) with a skip when it is absent, and a
// bounded poll of a condition that another thread or process makes true.
#ifndef ANORAND_TESTS_SUPPORT_TEST_UTIL_H_
#define ANORAND_TESTS_SUPPORT_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "anorand/v1/model.pb.h"
#include "model/dataset.h"

namespace anorand::test_support {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Seeded demo data (model/data/synthetic_data.h).
Dataset DemoData(int64_t rows, int cols, uint64_t seed, double shift = 0);

// A model trained on DemoData(rows, cols, seed) with few epochs: fast, real.
v1::ModelFile TinyModel(int cols = 8, uint64_t seed = 1, int64_t rows = 400, int epochs = 3);
// The same small network trained on `data` (its labels ignored).
v1::ModelFile TinyModelOn(Dataset data, uint64_t seed, int epochs);

// Rows [from, from + count) of `data`, with its feature names and no labels.
Dataset SliceRows(const Dataset& data, int64_t from, int64_t count);

// The shared folder, or "" when it is not there.
std::string SharedDir();

// Calls `done` every `interval_ms` until it returns true (then true) or
// timeout_seconds pass (then false, after one last call). For waiting on a
// state another thread or process reaches: the deadline is a bound on a
// hung test, not a speed requirement, so give it generous room.
bool WaitUntil(const std::function<bool()>& done, double timeout_seconds, int interval_ms = 20);

}  // namespace anorand::test_support

#define ANORAND_REQUIRE_SHARED(path_var, sub)                                   \
  const std::string path_var = ::anorand::test_support::SharedDir().empty()          \
                                   ? std::string()                              \
                                   : ::anorand::test_support::SharedDir() + "/" + sub; \
  if (path_var.empty() || !std::filesystem::exists(path_var))                   \
  GTEST_SKIP() << "../shared/" << sub << " not found (it sits beside the clone in CI)"

#endif  // ANORAND_TESTS_SUPPORT_TEST_UTIL_H_
