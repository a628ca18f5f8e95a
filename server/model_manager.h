// File: model_manager.h
//
// Keeps the registry (registry.h) in step with the model store
// (model_store.h) and carries out every administrative change:
//   - Sync() scans the store: new versions are loaded and compiled (outside
//     any registry lock) and published; versions gone from disk are
//     dropped; aliases are re-read. A version that fails to load is marked
//     failed and reported; the versions already serving keep serving.
//   - Import/Publish validate and compile a model BEFORE it is written, so
//     a bad file never becomes a version; then publish atomically.
//   - Load/Unload/Delete/SetAlias/RemoveAlias/Export for the Models service.
// A background thread calls Sync() every poll interval (0 = never).
// Thread-safe. Administrative writes are serialised by admin_mu_; scoring
// never takes it.
#ifndef ANORAND_SERVER_MODEL_MANAGER_H_
#define ANORAND_SERVER_MODEL_MANAGER_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "server/model_store.h"
#include "server/registry.h"

namespace anorand {

struct LoadEvent {
  std::string model;
  int64_t version = 0;
  bool ok = true;
  double seconds = 0;
  std::string error;
};

class ModelManager {
 public:
  ModelManager(ModelStore store, Registry* registry);
  ~ModelManager();  // stops the poller

  // Cap on the bytes of model files held by ready versions (0 = none). A
  // load or import that would pass it fails with RESOURCE_EXHAUSTED and
  // loads nothing; versions already serving are untouched. Set before Start().
  void set_max_loaded_bytes(int64_t bytes) { max_loaded_bytes_ = bytes; }

  // Called after every load attempt (metrics, logs). Set before Start().
  void set_on_load(std::function<void(const LoadEvent&)> f) { on_load_ = std::move(f); }

  // Initial synchronous Sync(), then polling every poll_seconds (0 = off).
  absl::Status Start(double poll_seconds);
  void Stop();
  void Sync();

  // Validates, compiles, publishes; version 0 = next free number. Moves
  // `alias` to the new version if not empty. Returns the version.
  absl::StatusOr<int64_t> Publish(const std::string& name, int64_t version,
                                  const v1::ModelFile& model, const std::string& alias);
  // Same for the bytes of a model file (import); INVALID_ARGUMENT with the
  // loader's message if they are not a valid model.
  absl::StatusOr<int64_t> Import(const std::string& name, int64_t version,
                                 const std::string& bytes, const std::string& alias);

  absl::Status LoadVersion(const std::string& name, int64_t version);
  absl::Status UnloadVersion(const std::string& name, int64_t version);
  absl::Status DeleteVersion(const std::string& name, int64_t version, bool force);
  absl::Status SetAlias(const std::string& name, const std::string& alias, int64_t version);
  absl::Status RemoveAlias(const std::string& name, const std::string& alias);
  // The stored file's bytes (container included) of a resolved version.
  absl::StatusOr<std::string> Export(const std::string& name, int64_t version,
                                     const std::string& alias, int64_t* resolved_version);

  const ModelStore& store() const { return store_; }
  Registry& registry() { return *registry_; }

 private:
  void LoadFromStore(const std::string& name, int64_t version);
  // NOT_FOUND unless the registry knows the model.
  absl::Status CheckKnownModel(const std::string& name) const;
  // One read-modify-write of the model's aliases under the store's alias
  // lock (model_store.h), so replicas sharing the store never lose each
  // other's changes: reads aliases.json, applies `change` (its error is
  // returned and nothing is written), writes the file if it changed and
  // publishes the result to the registry. FAILED_PRECONDITION when
  // aliases.json cannot be read (a hand-edited or damaged file is not
  // overwritten).
  absl::Status UpdateAliases(
      const std::string& name,
      const std::function<absl::Status(std::map<std::string, int64_t>*)>& change);
  // FAILED_PRECONDITION when `version` is the model's only READY version
  // and one of `aliases` points at it (unloading or deleting it would leave
  // the alias with nothing to serve).
  absl::Status CheckNotLastAliasedReady(const std::string& name, int64_t version,
                                        const ModelEntry& model,
                                        const std::map<std::string, int64_t>& aliases) const;
  // Under admin_mu_: would `bytes` more for name/version stay within the cap?
  absl::Status CheckLoadBudget(const std::string& name, int64_t version, int64_t bytes) const;

  ModelStore store_;
  Registry* registry_;
  std::function<void(const LoadEvent&)> on_load_;
  int64_t max_loaded_bytes_ = 0;
  std::mutex admin_mu_;  // serialises Sync and administrative writes

  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;  // guarded by poll_mu_
  std::thread poller_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_MODEL_MANAGER_H_
