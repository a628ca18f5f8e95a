// File: model_manager.h
//
// Keeps the registry (registry.h) in step with the model store
// (model_store.h) and carries out every administrative change:
//   - Sync() scans the store: new versions are loaded and compiled and
//     published; versions gone from disk are dropped; aliases are re-read
//     (a model's aliases after its new versions are loaded, so an alias
//     another replica moved to a new version keeps serving the old one
//     until the new one is ready); so is the shadow. A version that fails to load is marked
//     failed and reported; the versions already serving keep serving.
//   - Import/Publish validate and compile a model BEFORE it is written, so
//     a bad file never becomes a version; then publish atomically.
//   - Load/Unload/Delete/SetAlias/RemoveAlias/SetShadow/ClearShadow/Export
//     for the Models service.
// A background thread calls Sync() every poll interval (0 = never).
//
// Locking: admin_mu_ serialises decisions and publications, never a
// compile. A load (Sync or LoadVersion) decides under admin_mu_ and marks
// the version LOADING in the registry (reserving its file's bytes against
// the cap), reads and compiles the file with no lock held, and publishes
// READY or FAILED under admin_mu_ again (TF Serving's basic_manager does
// the same). While a version is LOADING: scoring it answers UNAVAILABLE,
// listings show LOADING, Unload and Delete of it answer
// FAILED_PRECONDITION, a LoadVersion of it waits for that load and returns
// its outcome, Sync leaves it alone; every other administrative call
// proceeds. Scoring never takes admin_mu_. Thread-safe.
#ifndef ANORAND_SERVER_MODEL_MANAGER_H_
#define ANORAND_SERVER_MODEL_MANAGER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
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

struct ModelManagerOptions {
  // Cap on the bytes of model files held by ready and loading versions
  // (0 = none). A load or import that would pass it fails with
  // RESOURCE_EXHAUSTED and loads nothing; versions already serving are
  // untouched.
  int64_t max_loaded_bytes = 0;
  // Called after every load attempt (metrics, logs), under no lock of the
  // manager, on the thread that loaded.
  std::function<void(const LoadEvent&)> on_load;
  // Called under no lock once a version is LOADING, before its file is
  // read and compiled (tests hold a load here to order events).
  std::function<void(const std::string& model, int64_t version)> before_load;
  // Records each ready version's drift window covers (drift_window.h);
  // 0 = drift is not tracked. Versions whose file has no drift profile
  // (trained before profiles were stored) are never tracked.
  int64_t drift_window_records = 0;
  // The share of scored records drawn into a drift window, in (0, 1].
  double drift_sample = 1;
};

class ModelManager {
 public:
  ModelManager(ModelStore store, Registry* registry, ModelManagerOptions options = {});
  ~ModelManager();  // stops the poller

  // Initial synchronous Sync(), then polling every poll_seconds (0 = off).
  absl::Status Start(double poll_seconds);
  void Stop();
  // Returns once every version it started loading is READY or FAILED.
  void Sync() ABSL_LOCKS_EXCLUDED(admin_mu_);

  // Validates, compiles, publishes; version 0 = next free number. Moves
  // `alias` to the new version if not empty. Returns the version.
  absl::StatusOr<int64_t> Publish(const std::string& name, int64_t version,
                                  const v1::ModelFile& model, const std::string& alias)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  // Same for the bytes of a model file (import); INVALID_ARGUMENT with the
  // loader's message if they are not a valid model.
  absl::StatusOr<int64_t> Import(const std::string& name, int64_t version,
                                 const std::string& bytes, const std::string& alias)
      ABSL_LOCKS_EXCLUDED(admin_mu_);

  // OK once the version is READY (at once if it is). DATA_LOSS when its
  // file does not load (the version is then FAILED).
  absl::Status LoadVersion(const std::string& name, int64_t version)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  absl::Status UnloadVersion(const std::string& name, int64_t version)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  absl::Status DeleteVersion(const std::string& name, int64_t version, bool force)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  absl::Status SetAlias(const std::string& name, const std::string& alias, int64_t version)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  absl::Status RemoveAlias(const std::string& name, const std::string& alias)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  // Sets (or replaces) the model's shadow in the store and the registry
  // (models.proto SetShadow: exactly one of version and alias, sample in
  // (0, 1], the target known and not FAILED).
  absl::Status SetShadow(const std::string& name, const ShadowSpec& shadow)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  // Removes it; no shadow is OK.
  absl::Status ClearShadow(const std::string& name) ABSL_LOCKS_EXCLUDED(admin_mu_);
  // The stored file's bytes (container included) of a resolved version.
  absl::StatusOr<std::string> Export(const std::string& name, int64_t version,
                                     const std::string& alias, int64_t* resolved_version);

  const ModelStore& store() const { return store_; }
  Registry& registry() { return *registry_; }

 private:
  // One load in flight; `status` is written before `done` is notified.
  struct PendingLoad {
    std::string name;
    int64_t version = 0;
    absl::Status status;
    absl::Notification done;
  };
  using VersionKey = std::pair<std::string, int64_t>;

  // Marks the version LOADING, reserving its file's bytes, and records the
  // load as in flight. RESOURCE_EXHAUSTED (nothing changed) when the bytes
  // would pass the cap.
  absl::StatusOr<std::shared_ptr<PendingLoad>> BeginLoad(const std::string& name,
                                                         int64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(admin_mu_);
  // Reads and compiles with no lock held, publishes READY or FAILED under
  // admin_mu_, sets load->status and wakes whoever waits for the load.
  void FinishLoad(const std::shared_ptr<PendingLoad>& load)
      ABSL_LOCKS_EXCLUDED(admin_mu_);
  bool LoadInFlight(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(admin_mu_);
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
      const std::function<absl::Status(std::map<std::string, int64_t>*)>& change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(admin_mu_);
  // FAILED_PRECONDITION when `version` is the model's only READY version
  // and one of `aliases` points at it (unloading or deleting it would leave
  // the alias with nothing to serve).
  absl::Status CheckNotLastAliasedReady(const std::string& name, int64_t version,
                                        const ModelEntry& model,
                                        const std::map<std::string, int64_t>& aliases) const;
  // Would `bytes` more for name/version stay within the cap? Counts READY
  // and LOADING versions other than name/version.
  absl::Status CheckLoadBudget(const std::string& name, int64_t version, int64_t bytes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(admin_mu_);
  void NotifyLoad(const LoadEvent& event) const;
  // The drift window of a version about to be ready (null: not tracked).
  std::shared_ptr<DriftWindow> MakeDriftWindow(const CompiledModel& model) const;

  ModelStore store_;
  Registry* registry_;
  const ModelManagerOptions options_;

  absl::Mutex admin_mu_;
  std::map<VersionKey, std::shared_ptr<PendingLoad>> loads_ ABSL_GUARDED_BY(admin_mu_);

  absl::Mutex poll_mu_;
  bool stopping_ ABSL_GUARDED_BY(poll_mu_) = false;
  std::thread poller_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_MODEL_MANAGER_H_
