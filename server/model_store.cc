#include "server/model_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
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

std::string TempName() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(".tmp-", ::getpid(), "-", counter.fetch_add(1));
}

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
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!ValidateModelName(name).ok() || !it->is_directory()) continue;
    Listing listing;
    std::error_code ec2;
    for (fs::directory_iterator v(it->path(), ec2), vend; !ec2 && v != vend; v.increment(ec2)) {
      int64_t version;
      if (!ParseVersion(v->path().filename().string(), &version)) continue;
      if (fs::exists(v->path() / kModelFileName)) listing.versions.push_back(version);
    }
    std::sort(listing.versions.begin(), listing.versions.end());
    auto aliases = ReadAliases(name);
    if (aliases.ok()) {
      listing.aliases = *std::move(aliases);
    } else {
      listing.aliases_error = std::string(aliases.status().message());
    }
    out.emplace(name, std::move(listing));
  }
  return out;
}

absl::StatusOr<int64_t> ModelStore::Publish(const std::string& model, int64_t version,
                                            absl::string_view bytes) const {
  const std::string dir = ModelDir(model);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  const std::string tmp = absl::StrCat(dir, "/", TempName());
  fs::create_directory(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
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
                                      const std::map<std::string, int64_t>& aliases) const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [alias, version] : aliases) j[alias] = version;
  std::error_code ec;
  fs::create_directories(ModelDir(model), ec);
  return WriteFileAtomic(ModelDir(model) + "/aliases.json", j.dump(2) + "\n");
}

}  // namespace anorand
