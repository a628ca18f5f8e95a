// File: status_macros.h
//
// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
// Abseil 20220623 (Debian 12) ships neither, so the project keeps this small
// copy. Usage:
//
//   RETURN_IF_ERROR(file.Flush());
//   ASSIGN_OR_RETURN(Dataset data, LoadDataset(path, options));
#ifndef ANORAND_MODEL_STATUS_MACROS_H_
#define ANORAND_MODEL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ANORAND_CONCAT_INNER_(a, b) a##b
#define ANORAND_CONCAT_(a, b) ANORAND_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    ::absl::Status anorand_status_ = (expr);    \
    if (!anorand_status_.ok()) return anorand_status_; \
  } while (0)

#define ANORAND_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ANORAND_ASSIGN_OR_RETURN_IMPL_(ANORAND_CONCAT_(anorand_statusor_, __LINE__), lhs, expr)

#endif  // ANORAND_MODEL_STATUS_MACROS_H_
