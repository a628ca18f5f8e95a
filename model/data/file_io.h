// File: file_io.h
//
// Whole-file reads with a size bound, shared by the data readers. Reading is
// refused before any allocation when the file is larger than the bound, so a
// hostile path cannot make the process allocate without limit.
//
// Thread safety: stateless; safe to call from any thread.
// Failure behaviour: returns NotFound for a missing file, InvalidArgument for
// a file over the bound or not a regular file, Internal/DataLoss for I/O
// errors; messages name the path. Never throws.
#ifndef ANORAND_MODEL_DATA_FILE_IO_H_
#define ANORAND_MODEL_DATA_FILE_IO_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace anorand {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Opens the regular file at `path` for reading, with the same checks and
// errors as ReadFileBytes, for readers that stream it.
absl::StatusOr<FilePtr> OpenFileBounded(const std::string& path,
                                        uint64_t max_bytes);

// Returns the bytes of the regular file at `path`, or an error when it is
// missing, unreadable, or larger than `max_bytes`.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path,
                                          uint64_t max_bytes);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_FILE_IO_H_
