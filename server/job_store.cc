#include "server/job_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "model/data/file_io.h"
#include "model/model_file.h"

namespace anorand {
namespace fs = std::filesystem;

namespace {
constexpr uint64_t kMaxRecordBytes = 16 << 20;
}  // namespace

JobStore::~JobStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

absl::StatusOr<bool> JobStore::Lock() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the jobs folder ", dir_, ": ", ec.message()));
  }
  const std::string lock_path = dir_ + "/.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) return true;
  if (errno == EWOULDBLOCK) return false;
  return absl::FailedPreconditionError(
      absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(errno)));
}

std::vector<v1::Job> JobStore::LoadAll() const {
  std::vector<v1::Job> jobs;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().find(".json.tmp.") != std::string::npos) {
      // A record write killed midway; the folder is the owner's own.
      fs::remove(it->path(), ec);
      ec.clear();
      continue;
    }
    if (it->path().extension() != ".json") continue;
    auto text = ReadFileBounded(it->path().string(), kMaxRecordBytes);
    if (!text.ok()) continue;
    v1::Job job;
    if (!google::protobuf::util::JsonStringToMessage(*text, &job).ok() || job.id().empty()) {
      continue;  // a foreign or damaged file: not ours to interpret
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

void JobStore::Write(const v1::Job& job) const {
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(job, &json, o);
  absl::Status s = WriteFileAtomic(absl::StrCat(dir_, "/", job.id(), ".json"), json);
  if (!s.ok()) std::fprintf(stderr, "anorand-server: %s\n", std::string(s.message()).c_str());
}

void JobStore::Remove(const std::string& id) const {
  std::error_code ec;
  fs::remove(absl::StrCat(dir_, "/", id, ".json"), ec);
}

}  // namespace anorand
