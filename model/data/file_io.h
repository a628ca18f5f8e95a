// File: file_io.h
//
// Bounded file reads: the one reader of whole files for the library, the
// server and the client (model files, data files, certificates, tokens, job
// and alias records). Reading is refused before any allocation when the file
// is larger than the bound, so a hostile path cannot make the process
// allocate without limit.
//
// Thread safety: stateless; safe to call from any thread.
// Failure behaviour, one policy for every caller; messages name the path:
//   NotFound          the file does not exist
//   PermissionDenied  it may not be read
//   InvalidArgument   not a regular file, larger than the bound, or another
//                     open error
//   Internal          fstat failed
//   DataLoss          a read error, or the file did not hold the bytes its
//                     size promised (it shrank or grew while being read):
//                     never a silently short result
// Never throws.
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
// errors as ReadFileBounded, for readers that stream it.
absl::StatusOr<FilePtr> OpenFileBounded(const std::string& path,
                                        uint64_t max_bytes);

// Returns the bytes of the regular file at `path`, or an error when it is
// missing, unreadable, larger than `max_bytes`, or changed size while read.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path,
                                            uint64_t max_bytes);

// The reading half of ReadFileBounded: reads `size` bytes from `file`
// (positioned at its start) and checks that the file ends there; DataLoss
// naming `path` and the counts otherwise.
absl::StatusOr<std::string> ReadOpenedFile(std::FILE* file,
                                           const std::string& path,
                                           uint64_t size);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_FILE_IO_H_
