// File: registry.h
//
// What this replica has loaded: model name -> version -> state and a
// shared pointer to an immutable CompiledModel, plus the model's aliases,
// its shadow, and each ready version's drift window (drift_window.h).
//
// A request resolves a handle under a short reader lock and scores with no
// lock held; the handle's shared_ptr keeps its version alive, so a version
// replaced or removed while requests use it is freed when the last of them
// ends. Writers (model_manager.h) load and compile outside the lock and
// publish with one short writer lock. Thread-safe.
#ifndef ANORAND_SERVER_REGISTRY_H_
#define ANORAND_SERVER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "model/compiled_model.h"
#include "model/drift_window.h"
#include "server/shadow_spec.h"

namespace anorand {

enum class VersionState { kLoading, kReady, kUnloaded, kFailed };
const char* VersionStateName(VersionState s);

struct VersionEntry {
  VersionState state = VersionState::kLoading;
  std::shared_ptr<const CompiledModel> model;  // set when kReady
  // Set when kReady, drift is on and the model file has a drift profile.
  std::shared_ptr<DriftWindow> drift;
  std::string error;                           // set when kFailed
  int64_t file_bytes = 0;
  bool unloaded_by_user = false;  // the store poller leaves it unloaded
};

struct ModelEntry {
  std::map<int64_t, VersionEntry> versions;
  std::map<std::string, int64_t> aliases;
  std::optional<ShadowSpec> shadow;  // shadow.json (shadow.h)
};

struct ModelHandle {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const CompiledModel> model;
  std::shared_ptr<DriftWindow> drift;  // null: drift is not tracked
};

class Registry {
 public:
  // version 0 and alias "" (or "latest") mean the newest ready version.
  // NOT_FOUND: unknown model, version or alias. UNAVAILABLE: the chosen
  // version is still loading (or, with no selector, none is ready yet but
  // one is loading). FAILED_PRECONDITION: unloaded or failed.
  absl::StatusOr<ModelHandle> Resolve(const std::string& name, int64_t version,
                                      const std::string& alias) const;

  void SetVersion(const std::string& name, int64_t version, VersionEntry entry);
  void EraseVersion(const std::string& name, int64_t version);
  void EraseModel(const std::string& name);
  void SetAliases(const std::string& name, std::map<std::string, int64_t> aliases);
  // No-op for a model the registry does not have.
  void SetShadow(const std::string& name, std::optional<ShadowSpec> shadow);
  // The model's shadow (nullopt: none, or no such model); the scoring path
  // calls it for every request, so it copies nothing else.
  std::optional<ShadowSpec> GetShadow(const std::string& name) const;

  std::optional<VersionEntry> GetVersion(const std::string& name, int64_t version) const;
  std::optional<ModelEntry> GetModel(const std::string& name) const;
  std::map<std::string, ModelEntry> Snapshot() const;

 private:
  mutable absl::Mutex mu_;  // readers share it; writers hold it briefly
  std::map<std::string, ModelEntry> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace anorand

#endif  // ANORAND_SERVER_REGISTRY_H_
