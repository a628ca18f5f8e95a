#include "server/model_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "model/model_file.h"
#include "nlohmann/json.hpp"
#include "server/names.h"

namespace anorand {
namespace fs = std::filesystem;
namespace {

bool ParseVersion(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18 || s[0] == '0') return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return absl::SimpleAtoi(s, v) && *v > 0;
}

void FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// An open file and its size when opened: readers of append-only files read
// up to that size, so an append made meanwhile is seen by the next read.
struct Snapshot {
  Snapshot(int fd_in, int64_t size_in) : fd(fd_in), size(size_in) {}
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot() { ::close(fd); }
  int fd;
  int64_t size;
};

// nullptr when `path` does not exist.
absl::StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::unique_ptr<Snapshot>();
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(e)));
  }
  return std::make_unique<Snapshot>(fd, static_cast<int64_t>(st.st_size));
}

// The bytes of the snapshot from `offset` to its size (fewer if the file
// was cut meanwhile).
std::string PreadRange(const Snapshot& snap, int64_t offset) {
  std::string bytes(static_cast<size_t>(snap.size - offset), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pread(snap.fd, bytes.data() + done, bytes.size() - done,
                              static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

// Unique across processes and replicas: containers sharing the store all
// run as pid 1, so the pid alone is not enough.
std::string TempName() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t nonce = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  return absl::StrCat(kTempPrefix, ::getpid(), "-", absl::Hex(nonce), "-", counter.fetch_add(1));
}

// A new temp folder in `dir` (never one that exists: mkdir fails on it).
absl::StatusOr<std::string> MakeTempDir(const std::string& dir) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    const std::string tmp = absl::StrCat(dir, "/", TempName());
    if (::mkdir(tmp.c_str(), 0755) == 0) return tmp;
    if (errno != EEXIST) {
      return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
    }
  }
  return absl::InternalError(absl::StrCat("cannot create a temp folder in ", dir));
}

// Temp entries a writer leaves when it dies mid-write: our folders, and the
// "aliases.json.tmp.<pid>.<n>" files of servers before the store lock.
bool IsTempName(const std::string& name) {
  return name.rfind(kTempPrefix, 0) == 0 || name.rfind("aliases.json.tmp.", 0) == 0;
}

// The store-wide lock file, flock(2)ed: shared by every writer for as long
// as its temp entries exist, exclusive (try only) to remove the entries of
// writers that died. The kernel drops a killed process's locks.
class StoreLock {
 public:
  StoreLock(const std::string& root, int operation) {
    const std::string path = root + "/" + kLockFileName;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // a read-only store
    if (fd_ < 0) return;
    int r;
    do r = ::flock(fd_, operation);
    while (r != 0 && errno == EINTR);
    locked_ = r == 0;
  }
  ~StoreLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool locked() const { return locked_; }

 private:
  int fd_ = -1;
  bool locked_ = false;
};

}  // namespace

absl::Status ModelStore::Init() const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec || !fs::is_directory(root_)) {
    return absl::FailedPreconditionError(
        absl::StrCat("model folder ", root_, " cannot be created or is not a folder: ",
                     ec ? ec.message() : "not a directory"));
  }
  return absl::OkStatus();
}

std::string ModelStore::VersionFile(const std::string& model, int64_t version) const {
  return absl::StrCat(ModelDir(model), "/", version, "/", kModelFileName);
}

std::map<std::string, ModelStore::Listing> ModelStore::Scan() const {
  std::map<std::string, Listing> out;
  std::vector<fs::path> temps;
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!ValidateModelName(name).ok() || !it->is_directory()) continue;
    Listing listing;
    std::error_code ec2;
    for (fs::directory_iterator v(it->path(), ec2), vend; !ec2 && v != vend; v.increment(ec2)) {
      int64_t version;
      if (IsTempName(v->path().filename().string())) temps.push_back(v->path());
      if (!ParseVersion(v->path().filename().string(), &version)) continue;
      if (fs::exists(v->path() / kModelFileName)) listing.versions.push_back(version);
    }
    // A model is its versions: a folder without any (its last one deleted,
    // or a first publish not renamed into place yet) is no model.
    if (listing.versions.empty()) continue;
    std::sort(listing.versions.begin(), listing.versions.end());
    auto aliases = ReadAliases(name);
    if (aliases.ok()) {
      listing.aliases = *std::move(aliases);
    } else {
      listing.aliases_error = std::string(aliases.status().message());
    }
    auto shadow = ReadShadow(name);
    if (shadow.ok()) {
      listing.shadow = *std::move(shadow);
    } else {
      listing.shadow_error = std::string(shadow.status().message());
    }
    out.emplace(name, std::move(listing));
  }
  if (!temps.empty()) {
    // Under the exclusive lock no writer is at work, so every temp entry
    // still there belongs to one that died. Busy: the next scan does it.
    StoreLock lock(root_, LOCK_EX | LOCK_NB);
    if (lock.locked()) {
      for (const fs::path& t : temps) fs::remove_all(t, ec);
    }
  }
  return out;
}

absl::StatusOr<int64_t> ModelStore::Publish(const std::string& model, int64_t version,
                                            absl::string_view bytes) const {
  const std::string dir = ModelDir(model);
  StoreLock lock(root_, LOCK_SH);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  auto made = MakeTempDir(dir);
  if (!made.ok()) return made.status();
  const std::string tmp = *std::move(made);
  if (absl::Status s = WriteFileAtomic(absl::StrCat(tmp, "/", kModelFileName), bytes); !s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    int64_t v = version;
    if (v == 0) {
      int64_t max_seen = 0;
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        int64_t n;
        if (ParseVersion(it->path().filename().string(), &n)) max_seen = std::max(max_seen, n);
      }
      v = max_seen + 1;
    }
    const std::string target = absl::StrCat(dir, "/", v);
    // rename(2) onto a missing path is atomic; onto an existing non-empty
    // folder it fails, which is how a taken number is detected.
    if (::rename(tmp.c_str(), target.c_str()) == 0) {
      FsyncDir(dir);
      return v;
    }
    const int err = errno;
    if (err != EEXIST && err != ENOTEMPTY) {
      fs::remove_all(tmp, ec);
      return absl::InternalError(absl::StrCat("cannot publish ", target, ": ", std::strerror(err)));
    }
    if (version != 0) {
      fs::remove_all(tmp, ec);
      return absl::AlreadyExistsError(
          absl::StrCat("model ", model, " already has version ", version,
                       "; omit the version to take the next free number"));
    }
  }
  fs::remove_all(tmp, ec);
  return absl::AbortedError("could not find a free version number; retry");
}

absl::Status ModelStore::Delete(const std::string& model, int64_t version) const {
  const std::string dir = absl::StrCat(ModelDir(model), "/", version);
  StoreLock lock(root_, LOCK_SH);
  const std::string trash = absl::StrCat(ModelDir(model), "/", TempName());
  if (::rename(dir.c_str(), trash.c_str()) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("model ", model, " has no version ", version));
    }
    return absl::InternalError(absl::StrCat("cannot delete ", dir, ": ", std::strerror(errno)));
  }
  FsyncDir(ModelDir(model));
  std::error_code ec;
  fs::remove_all(trash, ec);
  return absl::OkStatus();
}

ModelStore::AliasLock::~AliasLock() {
  if (fd_ >= 0) ::close(fd_);  // drops the flock
}

absl::StatusOr<ModelStore::AliasLock> ModelStore::LockAliases() const {
  const std::string path = root_ + "/" + kAliasLockFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // a read-only store
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open the alias lock ", path, ": ", std::strerror(errno)));
  }
  int r;
  do r = ::flock(fd, LOCK_EX);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InternalError(
        absl::StrCat("cannot lock the alias lock ", path, ": ", std::strerror(err)));
  }
  return AliasLock(fd);
}

absl::StatusOr<std::map<std::string, int64_t>> ModelStore::ReadAliases(
    const std::string& model) const {
  const std::string path = ModelDir(model) + "/aliases.json";
  std::map<std::string, int64_t> out;
  auto bytes = ReadFileBounded(path, 1 << 20);
  if (absl::IsNotFound(bytes.status())) return out;
  if (!bytes.ok()) return bytes.status();
  nlohmann::json j = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object of alias -> version"));
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!ValidateAliasName(it.key()).ok() || !it.value().is_number_integer() ||
        it.value().get<int64_t>() <= 0) {
      return absl::DataLossError(absl::StrCat(path, ": bad entry '", it.key(), "'"));
    }
    out[it.key()] = it.value().get<int64_t>();
  }
  return out;
}

absl::Status ModelStore::WriteAliases(const std::string& model,
                                      const std::map<std::string, int64_t>& aliases,
                                      const AliasLock& held) const {
  (void)held;  // proof that the caller holds the lock across its read
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [alias, version] : aliases) j[alias] = version;
  return ReplaceModelFile(model, "aliases.json", j.dump(2) + "\n");
}

absl::StatusOr<std::optional<ShadowSpec>> ModelStore::ReadShadow(const std::string& model) const {
  const std::string path = ModelDir(model) + "/shadow.json";
  auto bytes = ReadFileBounded(path, 1 << 16);
  if (absl::IsNotFound(bytes.status())) return std::optional<ShadowSpec>();
  if (!bytes.ok()) return bytes.status();
  nlohmann::json j = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  auto bad = [&path](const char* what) {
    return absl::DataLossError(absl::StrCat(path, ": ", what));
  };
  if (!j.is_object()) return bad("not a JSON object");
  ShadowSpec spec;
  const bool has_version = j.contains("version"), has_alias = j.contains("alias");
  if (has_version == has_alias) return bad("needs exactly one of \"version\" and \"alias\"");
  if (has_version) {
    if (!j["version"].is_number_integer() || j["version"].get<int64_t>() <= 0) {
      return bad("\"version\" is not a positive integer");
    }
    spec.version = j["version"].get<int64_t>();
  } else {
    if (!j["alias"].is_string()) return bad("\"alias\" is not a string");
    spec.alias = j["alias"].get<std::string>();
    if (spec.alias != "latest" && !ValidateAliasName(spec.alias).ok()) {
      return bad("\"alias\" is not a valid alias name");
    }
  }
  if (!j.contains("sample") || !j["sample"].is_number()) return bad("\"sample\" is missing");
  spec.sample = j["sample"].get<double>();
  if (!(spec.sample > 0 && spec.sample <= 1)) return bad("\"sample\" is not in (0, 1]");
  return std::optional<ShadowSpec>(spec);
}

absl::Status ModelStore::WriteShadow(const std::string& model,
                                     const std::optional<ShadowSpec>& shadow,
                                     const AliasLock& held) const {
  (void)held;
  if (!shadow) return RemoveModelFile(model, "shadow.json");
  nlohmann::json j = nlohmann::json::object();
  if (shadow->version > 0) {
    j["version"] = shadow->version;
  } else {
    j["alias"] = shadow->alias;
  }
  j["sample"] = shadow->sample;
  return ReplaceModelFile(model, "shadow.json", j.dump(2) + "\n");
}

absl::Status ModelStore::ReplaceModelFile(const std::string& model, const std::string& file,
                                          const std::string& contents) const {
  const std::string dir = ModelDir(model);
  StoreLock lock(root_, LOCK_SH);
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Written complete inside a temp folder of ours, then renamed over the
  // old file: a crash leaves the old file and a temp folder to clean.
  auto tmp = MakeTempDir(dir);
  if (!tmp.ok()) return tmp.status();
  const std::string staged = *tmp + "/" + file;
  absl::Status s = WriteFileAtomic(staged, contents);
  if (s.ok() && ::rename(staged.c_str(), (dir + "/" + file).c_str()) != 0) {
    s = absl::InternalError(
        absl::StrCat("cannot rename into ", dir, "/", file, ": ", std::strerror(errno)));
  }
  if (s.ok()) FsyncDir(dir);
  fs::remove_all(*tmp, ec);
  return s;
}

absl::StatusOr<std::optional<std::string>> ModelStore::ReadModelFile(const std::string& model,
                                                                     const std::string& file,
                                                                     int64_t max_bytes) const {
  auto bytes = ReadFileBounded(ModelDir(model) + "/" + file, max_bytes);
  if (absl::IsNotFound(bytes.status())) return std::optional<std::string>();
  if (!bytes.ok()) return bytes.status();
  return std::optional<std::string>(*std::move(bytes));
}

absl::StatusOr<std::optional<std::string>> ModelStore::ReadModelFileFrom(
    const std::string& model, const std::string& file, int64_t offset, int64_t max_bytes) const {
  const std::string path = ModelDir(model) + "/" + file;
  auto opened = OpenSnapshot(path);
  if (!opened.ok()) return opened.status();
  if (!*opened) return std::optional<std::string>();
  const Snapshot& snap = **opened;
  if (snap.size < offset) {
    return absl::OutOfRangeError(absl::StrCat(path, " is shorter than before: it was replaced"));
  }
  if (snap.size - offset > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, " has ", snap.size - offset, " new bytes; at most ", max_bytes,
                     " are read"));
  }
  return std::optional<std::string>(PreadRange(snap, offset));
}

absl::StatusOr<std::optional<std::string>> ModelStore::ReadModelFileTail(
    const std::string& model, const std::string& file, int64_t max_bytes) const {
  auto opened = OpenSnapshot(ModelDir(model) + "/" + file);
  if (!opened.ok()) return opened.status();
  if (!*opened) return std::optional<std::string>();
  const Snapshot& snap = **opened;
  if (snap.size <= max_bytes) return std::optional<std::string>(PreadRange(snap, 0));
  std::string bytes = PreadRange(snap, snap.size - max_bytes);
  const size_t first_line_end = bytes.find('\n');
  bytes.erase(0, first_line_end == std::string::npos ? bytes.size() : first_line_end + 1);
  return std::optional<std::string>(std::move(bytes));
}

absl::Status ModelStore::RemoveModelFile(const std::string& model,
                                         const std::string& file) const {
  const std::string path = ModelDir(model) + "/" + file;
  StoreLock lock(root_, LOCK_SH);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
  }
  FsyncDir(ModelDir(model));
  return absl::OkStatus();
}

absl::Status ModelStore::AppendModelFile(const std::string& model, const std::string& file,
                                         absl::string_view bytes) const {
  const std::string path = ModelDir(model) + "/" + file;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const ssize_t n = ::write(fd, bytes.data(), bytes.size());
  const int write_errno = errno;
  const bool synced = n == static_cast<ssize_t>(bytes.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) {
    return absl::InternalError(absl::StrCat("cannot append to ", path, ": ",
                                            n < 0 ? std::strerror(write_errno) : "short write"));
  }
  if (!synced) return absl::InternalError(absl::StrCat("cannot fsync ", path));
  return absl::OkStatus();
}

}  // namespace anorand
