#include "server/registry.h"

#include "absl/strings/str_cat.h"

namespace anorand {

const char* VersionStateName(VersionState s) {
  switch (s) {
    case VersionState::kLoading: return "loading";
    case VersionState::kReady: return "ready";
    case VersionState::kUnloaded: return "unloaded";
    case VersionState::kFailed: return "failed";
  }
  return "unknown";
}

absl::StatusOr<ModelHandle> Registry::Resolve(const std::string& name, int64_t version,
                                              const std::string& alias) const {
  absl::ReaderMutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m == models_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "model '", name, "' not found; list the models with `anorand models list`"));
  }
  const ModelEntry& model = m->second;
  std::string via;
  if (!alias.empty() && alias != "latest") {
    auto a = model.aliases.find(alias);
    if (a == model.aliases.end()) {
      return absl::NotFoundError(
          absl::StrCat("model '", name, "' has no alias '", alias, "'"));
    }
    version = a->second;
    via = absl::StrCat(" (alias '", alias, "')");
  }
  if (version == 0) {
    bool loading = false;
    for (auto it = model.versions.rbegin(); it != model.versions.rend(); ++it) {
      if (it->second.state == VersionState::kReady) {
        return ModelHandle{name, it->first, it->second.model, it->second.drift};
      }
      loading |= it->second.state == VersionState::kLoading;
    }
    if (loading) {
      return absl::UnavailableError(
          absl::StrCat("model '", name, "' has no ready version yet; one is loading, retry"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' has no ready version (all failed or unloaded)"));
  }
  auto v = model.versions.find(version);
  if (v == model.versions.end()) {
    return absl::NotFoundError(
        absl::StrCat("model '", name, "' has no version ", version, via));
  }
  switch (v->second.state) {
    case VersionState::kReady:
      return ModelHandle{name, version, v->second.model, v->second.drift};
    case VersionState::kLoading:
      return absl::UnavailableError(
          absl::StrCat("model '", name, "' version ", version, via, " is still loading; retry"));
    case VersionState::kUnloaded:
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", name, "' version ", version, via, " is unloaded; load it first"));
    case VersionState::kFailed:
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", name, "' version ", version, via, " failed to load: ", v->second.error));
  }
  return absl::InternalError("unreachable");
}

void Registry::SetVersion(const std::string& name, int64_t version, VersionEntry entry) {
  std::shared_ptr<const CompiledModel> old;  // freed after the lock
  absl::MutexLock lock(&mu_);
  VersionEntry& slot = models_[name].versions[version];
  old = std::move(slot.model);
  slot = std::move(entry);
}

void Registry::EraseVersion(const std::string& name, int64_t version) {
  std::shared_ptr<const CompiledModel> old;
  absl::MutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m == models_.end()) return;
  auto v = m->second.versions.find(version);
  if (v == m->second.versions.end()) return;
  old = std::move(v->second.model);
  m->second.versions.erase(v);
}

void Registry::EraseModel(const std::string& name) {
  ModelEntry old;
  absl::MutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m == models_.end()) return;
  old = std::move(m->second);
  models_.erase(m);
}

void Registry::SetAliases(const std::string& name, std::map<std::string, int64_t> aliases) {
  absl::MutexLock lock(&mu_);
  models_[name].aliases = std::move(aliases);
}

void Registry::SetShadow(const std::string& name, std::optional<ShadowSpec> shadow) {
  absl::MutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m != models_.end()) m->second.shadow = std::move(shadow);
}

std::optional<ShadowSpec> Registry::GetShadow(const std::string& name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m == models_.end()) return std::nullopt;
  return m->second.shadow;
}

std::optional<VersionEntry> Registry::GetVersion(const std::string& name, int64_t version) const {
  absl::ReaderMutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m == models_.end()) return std::nullopt;
  auto v = m->second.versions.find(version);
  if (v == m->second.versions.end()) return std::nullopt;
  return v->second;
}

std::optional<ModelEntry> Registry::GetModel(const std::string& name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto m = models_.find(name);
  if (m == models_.end()) return std::nullopt;
  return m->second;
}

std::map<std::string, ModelEntry> Registry::Snapshot() const {
  absl::ReaderMutexLock lock(&mu_);
  return models_;
}

}  // namespace anorand
