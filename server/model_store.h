// File: model_store.h
//
// The model store on the local file system (shared by replicas through a
// shared volume):
//   <root>/<model>/<version>/model.anorand   the model file (model_file.h)
//   <root>/<model>/aliases.json              {"production": 3, ...}
//   <root>/<model>/shadow.json               {"version": 4, "sample": 0.1}
//                                            or {"alias": "canary", ...}
//   <root>/<model>/retrain_policy.json       retrain_store.h
//   <root>/<model>/history.jsonl             retrain_store.h (append-only)
//   <root>/<model>/feedback.jsonl            feedback_store.h (append-only)
//   <root>/.store.lock                       flock(2)ed by writers (below)
//   <root>/.aliases.lock                     flock(2)ed by alias updates
// Versions are positive integers; folders whose name is not one (temp
// folders start with ".tmp-") are ignored. A version is published by
// writing its file into a temp folder, fsyncing, and renaming the folder
// into place (atomic: readers and other replicas see all of it or nothing;
// two publishers of one number cannot both win). Aliases and the shadow are
// written into a temp folder and renamed over their file (atomic too).
// Alias updates: every read-modify-write of an aliases.json (any thread, any
// process or replica on the store) holds the exclusive flock of
// .aliases.lock from its read to its rename (LockAliases), so two replicas
// moving aliases at once never lose one another's change.
// Crashes: every writer (any process, any replica) holds a shared flock on
// .store.lock while its temp entries exist; Scan() (the server's first one
// runs at start) removes the temp entries left by writers that died, under
// an exclusive flock it only tries for (a writer at work: the next Scan).
// Model names must pass ValidateModelName before they reach this class.
// Thread-safe: no in-memory state beyond the root path.
#ifndef ANORAND_SERVER_MODEL_STORE_H_
#define ANORAND_SERVER_MODEL_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/shadow_spec.h"

namespace anorand {

inline constexpr char kModelFileName[] = "model.anorand";
inline constexpr char kLockFileName[] = ".store.lock";
inline constexpr char kAliasLockFileName[] = ".aliases.lock";
inline constexpr char kTempPrefix[] = ".tmp-";

class ModelStore {
 public:
  explicit ModelStore(std::string root) : root_(std::move(root)) {}

  // Creates the root folder if missing.
  absl::Status Init() const;
  const std::string& root() const { return root_; }

  struct Listing {
    std::vector<int64_t> versions;  // ascending; folders holding a model file
    std::map<std::string, int64_t> aliases;
    std::string aliases_error;      // a broken aliases.json, reported not fatal
    std::optional<ShadowSpec> shadow;
    std::string shadow_error;       // a broken shadow.json, reported not fatal
  };
  // Every model folder with a valid name and at least one version (a model
  // whose last version was deleted is gone). Also removes the temp entries of
  // writers that died, when no writer is at work.
  std::map<std::string, Listing> Scan() const;

  std::string VersionFile(const std::string& model, int64_t version) const;

  // Publishes `bytes` (an already validated model file) as `version`, or
  // the next free number when version is 0. ALREADY_EXISTS if taken.
  absl::StatusOr<int64_t> Publish(const std::string& model, int64_t version,
                                  absl::string_view bytes) const;
  // Removes a version folder (renamed away first, so readers never see a
  // half-deleted one). NOT_FOUND if absent.
  absl::Status Delete(const std::string& model, int64_t version) const;

  // Held across one read-modify-write of aliases: the exclusive flock of
  // <root>/.aliases.lock, released when destroyed. Move-only.
  class AliasLock {
   public:
    AliasLock(AliasLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    AliasLock& operator=(AliasLock&&) = delete;
    ~AliasLock();

   private:
    friend class ModelStore;
    explicit AliasLock(int fd) : fd_(fd) {}
    int fd_;
  };
  // Blocks until the alias lock is held. INTERNAL if the lock file cannot be
  // opened or locked (the message names it).
  absl::StatusOr<AliasLock> LockAliases() const;

  // {} when the model has no aliases.json; DATA_LOSS when it is not a JSON
  // object of valid alias -> positive version.
  absl::StatusOr<std::map<std::string, int64_t>> ReadAliases(const std::string& model) const;
  // Replaces aliases.json atomically (temp file, fsync, rename). The caller
  // holds an AliasLock taken before it read the aliases it changed.
  absl::Status WriteAliases(const std::string& model,
                            const std::map<std::string, int64_t>& aliases,
                            const AliasLock& held) const;

  // nullopt when the model has no shadow.json; DATA_LOSS when it is not a
  // valid shadow (exactly one of a positive version and an alias, and a
  // sample in (0, 1]).
  absl::StatusOr<std::optional<ShadowSpec>> ReadShadow(const std::string& model) const;
  // Replaces shadow.json atomically, or removes it (nullopt). The caller
  // holds an AliasLock.
  absl::Status WriteShadow(const std::string& model, const std::optional<ShadowSpec>& shadow,
                           const AliasLock& held) const;

  // Small files of a model's folder beside its versions (`file` a plain
  // name). Read: nullopt when absent; ReadFileBounded's error (file_io.h)
  // when it cannot be read or is larger than max_bytes.
  absl::StatusOr<std::optional<std::string>> ReadModelFile(const std::string& model,
                                                           const std::string& file,
                                                           int64_t max_bytes) const;
  // The bytes of <model>/<file> from `offset` to its end (at most
  // max_bytes of them, else RESOURCE_EXHAUSTED): nullopt when absent,
  // OUT_OF_RANGE when the file is now shorter than `offset` (replaced).
  absl::StatusOr<std::optional<std::string>> ReadModelFileFrom(const std::string& model,
                                                               const std::string& file,
                                                               int64_t offset,
                                                               int64_t max_bytes) const;
  // The last lines of an append-only <model>/<file> that fit in max_bytes
  // (all of it when it is shorter; else a cut first line is dropped), as
  // the file was when opened: an append made during the read is left for
  // the next read, never an error. nullopt when absent.
  absl::StatusOr<std::optional<std::string>> ReadModelFileTail(const std::string& model,
                                                               const std::string& file,
                                                               int64_t max_bytes) const;
  // Writes <model>/<file> atomically (temp folder, fsync, rename).
  absl::Status ReplaceModelFile(const std::string& model, const std::string& file,
                                const std::string& contents) const;
  // Removes it; absent is OK.
  absl::Status RemoveModelFile(const std::string& model, const std::string& file) const;
  // Appends `bytes` in one write(2) with O_APPEND and fsyncs: appenders in
  // any process never interleave, and a crash leaves at most a torn last
  // line for the reader to skip.
  absl::Status AppendModelFile(const std::string& model, const std::string& file,
                               absl::string_view bytes) const;

 private:
  std::string ModelDir(const std::string& model) const { return root_ + "/" + model; }
  std::string root_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_MODEL_STORE_H_
