#include "model/data/file_io.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace anorand {
namespace {

absl::Status OpenError(const std::string& path, int err) {
  std::string message =
      absl::StrCat(path, ": cannot open: ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES) return absl::PermissionDeniedError(message);
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<FilePtr> OpenFileBounded(const std::string& path,
                                        uint64_t max_bytes) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return OpenError(path, errno);
  struct stat info;
  if (fstat(fileno(file.get()), &info) != 0) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot stat: ", std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": file is ", size,
                     " bytes, more than the limit of ", max_bytes));
  }
  return file;
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path,
                                          uint64_t max_bytes) {
  auto opened = OpenFileBounded(path, max_bytes);
  if (!opened.ok()) return opened.status();
  FilePtr file = *std::move(opened);
  struct stat info;
  if (fstat(fileno(file.get()), &info) != 0) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot stat: ", std::strerror(errno)));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  std::string bytes(size, '\0');
  const size_t got = size == 0 ? 0 : std::fread(&bytes[0], 1, size, file.get());
  if (got != size) {
    return absl::DataLossError(
        absl::StrCat(path, ": short read: got ", got, " of ", size, " bytes"));
  }
  return bytes;
}

}  // namespace anorand
