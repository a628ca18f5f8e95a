// File: expect_error.h
//
// One way for every test to check a refused input: the status code, and a
// message that contains each of the given parts.
#ifndef ANORAND_TESTS_SUPPORT_EXPECT_ERROR_H_
#define ANORAND_TESTS_SUPPORT_EXPECT_ERROR_H_

#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace anorand::test_support {

// Expects `status` to have `code` (INVALID_ARGUMENT unless given) and a
// message containing every one of `parts`.
inline void ExpectError(const absl::Status& status, std::initializer_list<std::string> parts,
                        absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(part));
  }
}

template <typename T>
void ExpectError(const absl::StatusOr<T>& result, std::initializer_list<std::string> parts,
                 absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  ExpectError(result.status(), parts, code);
}

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_SUPPORT_EXPECT_ERROR_H_
