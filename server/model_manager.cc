#include "server/model_manager.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "model/model_file.h"
#include "server/names.h"

namespace anorand {
namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

ModelManager::ModelManager(ModelStore store, Registry* registry, ModelManagerOptions options)
    : store_(std::move(store)), registry_(registry), options_(std::move(options)) {}

ModelManager::~ModelManager() { Stop(); }

absl::Status ModelManager::Start(double poll_seconds) {
  if (absl::Status s = store_.Init(); !s.ok()) return s;
  Sync();
  if (poll_seconds > 0) {
    poller_ = std::thread([this, poll_seconds] {
      while (true) {
        {
          absl::MutexLock lock(&poll_mu_);
          poll_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(poll_seconds));
          if (stopping_) return;
        }
        Sync();
      }
    });
  }
  return absl::OkStatus();
}

void ModelManager::Stop() {
  {
    absl::MutexLock lock(&poll_mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

void ModelManager::NotifyLoad(const LoadEvent& event) const {
  if (options_.on_load) options_.on_load(event);
}

bool ModelManager::LoadInFlight(const std::string& name) const {
  auto it = loads_.lower_bound(VersionKey(name, 0));
  return it != loads_.end() && it->first.first == name;
}

absl::StatusOr<std::shared_ptr<ModelManager::PendingLoad>> ModelManager::BeginLoad(
    const std::string& name, int64_t version) {
  VersionEntry loading;
  loading.state = VersionState::kLoading;
  std::error_code ec;
  const auto size = std::filesystem::file_size(store_.VersionFile(name, version), ec);
  // A file that cannot be sized is reserved as empty; reading it fails.
  if (!ec) loading.file_bytes = static_cast<int64_t>(size);
  if (absl::Status s = CheckLoadBudget(name, version, loading.file_bytes); !s.ok()) return s;
  registry_->SetVersion(name, version, std::move(loading));
  auto load = std::make_shared<PendingLoad>();
  load->name = name;
  load->version = version;
  loads_[VersionKey(name, version)] = load;
  return load;
}

std::shared_ptr<DriftWindow> ModelManager::MakeDriftWindow(const CompiledModel& model) const {
  if (options_.drift_window_records <= 0 || !model.info().has_drift_profile()) return nullptr;
  return std::make_shared<DriftWindow>(model.info().drift_profile(),
                                       options_.drift_window_records, options_.drift_sample);
}

void ModelManager::FinishLoad(const std::shared_ptr<PendingLoad>& load) {
  const std::string& name = load->name;
  const int64_t version = load->version;
  if (options_.before_load) options_.before_load(name, version);
  const auto start = std::chrono::steady_clock::now();
  VersionEntry entry;
  const std::string path = store_.VersionFile(name, version);
  auto bytes = ReadFileBounded(path, kMaxModelBytes + kModelHeaderBytes);
  absl::Status status = bytes.status();
  if (bytes.ok()) {
    entry.file_bytes = static_cast<int64_t>(bytes->size());
    auto file = ParseModel(*bytes, path);
    status = file.status();
    if (file.ok()) {
      auto compiled = CompiledModel::Create(*std::move(file));
      status = compiled.status();
      if (compiled.ok()) {
        entry.drift = MakeDriftWindow(**compiled);
        entry.model = *std::move(compiled);
      }
    }
  }
  entry.state = status.ok() ? VersionState::kReady : VersionState::kFailed;
  entry.error = std::string(status.message());
  {
    absl::MutexLock admin(&admin_mu_);
    registry_->SetVersion(name, version, std::move(entry));
    loads_.erase(VersionKey(name, version));
  }
  load->status = status;
  load->done.Notify();
  NotifyLoad(LoadEvent{name, version, status.ok(), Since(start), std::string(status.message())});
}

void ModelManager::Sync() {
  std::vector<std::shared_ptr<PendingLoad>> started;
  std::vector<LoadEvent> refused;  // reported once admin_mu_ is released
  {
    absl::MutexLock admin(&admin_mu_);
    const auto listing = store_.Scan();
    const auto loaded = registry_->Snapshot();
    for (const auto& [name, entry] : loaded) {
      auto it = listing.find(name);
      for (const auto& [version, v] : entry.versions) {
        if (loads_.count(VersionKey(name, version))) continue;  // its loader publishes it
        const bool on_disk =
            it != listing.end() && std::binary_search(it->second.versions.begin(),
                                                      it->second.versions.end(), version);
        if (!on_disk) registry_->EraseVersion(name, version);
      }
      if (it == listing.end() && !LoadInFlight(name)) registry_->EraseModel(name);
    }
    for (const auto& [name, l] : listing) {
      auto known = registry_->GetModel(name);
      bool loading = false;
      for (int64_t version : l.versions) {
        if (known && known->versions.count(version)) continue;
        auto load = BeginLoad(name, version);
        if (!load.ok()) {
          VersionEntry failed;
          failed.state = VersionState::kFailed;
          failed.error = std::string(load.status().message());
          registry_->SetVersion(name, version, std::move(failed));
          refused.push_back(LoadEvent{name, version, false, 0, std::string(load.status().message())});
          continue;
        }
        started.push_back(*std::move(load));
        loading = true;
      }
      // A model with new versions gets its aliases once they are loaded.
      if (loading) continue;
      if (l.aliases_error.empty()) registry_->SetAliases(name, l.aliases);
      else if (!known) registry_->SetAliases(name, {});
      if (l.shadow_error.empty()) registry_->SetShadow(name, l.shadow);
    }
  }
  for (const LoadEvent& e : refused) NotifyLoad(e);
  std::set<std::string> models;
  for (const auto& load : started) {
    FinishLoad(load);
    models.insert(load->name);
  }
  // Read again: an alias may have moved while the versions compiled.
  absl::MutexLock admin(&admin_mu_);
  for (const std::string& name : models) {
    auto aliases = store_.ReadAliases(name);
    if (aliases.ok()) registry_->SetAliases(name, *std::move(aliases));
    auto shadow = store_.ReadShadow(name);
    if (shadow.ok()) registry_->SetShadow(name, *std::move(shadow));
  }
}

absl::StatusOr<int64_t> ModelManager::Publish(const std::string& name, int64_t version,
                                              const v1::ModelFile& model,
                                              const std::string& alias) {
  return Import(name, version, SerializeModel(model), alias);
}

absl::StatusOr<int64_t> ModelManager::Import(const std::string& name, int64_t version,
                                             const std::string& bytes, const std::string& alias) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateVersionSelector(version); !s.ok()) return s;
  if (!alias.empty()) {
    if (absl::Status s = ValidateAliasName(alias); !s.ok()) return s;
  }
  const auto start = std::chrono::steady_clock::now();
  // Validate and compile before anything is written.
  auto file = ParseModel(bytes, "imported model");
  if (!file.ok()) return file.status();
  auto compiled = CompiledModel::Create(*std::move(file));
  if (!compiled.ok()) return compiled.status();
  int64_t published = 0;
  {
    absl::MutexLock admin(&admin_mu_);
    if (absl::Status s = CheckLoadBudget(name, version, static_cast<int64_t>(bytes.size()));
        !s.ok()) {
      return s;
    }
    auto stored = store_.Publish(name, version, bytes);
    if (!stored.ok()) return stored.status();
    published = *stored;
    VersionEntry entry;
    entry.state = VersionState::kReady;
    entry.drift = MakeDriftWindow(**compiled);
    entry.model = *std::move(compiled);
    entry.file_bytes = static_cast<int64_t>(bytes.size());
    registry_->SetVersion(name, published, std::move(entry));
    if (!alias.empty()) {
      absl::Status s = UpdateAliases(name, [&](std::map<std::string, int64_t>* aliases) {
        (*aliases)[alias] = published;
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
    }
  }
  NotifyLoad(LoadEvent{name, published, true, Since(start), ""});
  return published;
}

absl::Status ModelManager::UpdateAliases(
    const std::string& name,
    const std::function<absl::Status(std::map<std::string, int64_t>*)>& change) {
  auto lock = store_.LockAliases();
  if (!lock.ok()) return lock.status();
  // Read under the lock: another replica may have changed the file since
  // this one last polled it.
  auto aliases = store_.ReadAliases(name);
  if (!aliases.ok()) {
    // Rewriting it would silently drop every alias it holds.
    return absl::FailedPreconditionError(absl::StrCat(
        "the aliases file of model '", name, "' cannot be read (", aliases.status().message(),
        "); fix or delete <model_dir>/", name, "/aliases.json, then retry"));
  }
  std::map<std::string, int64_t> next = *aliases;
  if (absl::Status s = change(&next); !s.ok()) return s;
  if (next != *aliases) {
    if (absl::Status s = store_.WriteAliases(name, next, *lock); !s.ok()) return s;
  }
  registry_->SetAliases(name, std::move(next));
  return absl::OkStatus();
}

absl::Status ModelManager::CheckLoadBudget(const std::string& name, int64_t version,
                                           int64_t bytes) const {
  if (options_.max_loaded_bytes <= 0) return absl::OkStatus();
  int64_t loaded = 0;
  for (const auto& [n, model] : registry_->Snapshot()) {
    for (const auto& [v, entry] : model.versions) {
      const bool held = entry.state == VersionState::kReady || entry.state == VersionState::kLoading;
      if (held && !(n == name && v == version)) {
        loaded += entry.file_bytes;
      }
    }
  }
  if (loaded + bytes <= options_.max_loaded_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "loading model '", name, "'", version > 0 ? absl::StrCat(" version ", version) : "", " (",
      bytes, " bytes) would hold ", loaded + bytes, " bytes of loaded models, over ",
      "--max_loaded_model_bytes=", options_.max_loaded_bytes,
      "; unload or delete versions no longer needed, or raise the limit"));
}

absl::Status ModelManager::CheckKnownModel(const std::string& name) const {
  if (!registry_->GetModel(name)) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  }
  return absl::OkStatus();
}

absl::Status ModelManager::LoadVersion(const std::string& name, int64_t version) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateVersionNumber(version); !s.ok()) return s;
  if (absl::Status s = CheckKnownModel(name); !s.ok()) return s;
  std::shared_ptr<PendingLoad> load;
  bool mine = false;
  {
    absl::MutexLock admin(&admin_mu_);
    auto v = registry_->GetVersion(name, version);
    if (!v) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
    }
    if (v->state == VersionState::kReady) return absl::OkStatus();
    auto in_flight = loads_.find(VersionKey(name, version));
    if (in_flight != loads_.end()) {
      load = in_flight->second;  // one compile per version: wait for it
    } else {
      auto begun = BeginLoad(name, version);
      if (!begun.ok()) return begun.status();
      load = *std::move(begun);
      mine = true;
    }
  }
  if (mine) {
    FinishLoad(load);
  } else {
    load->done.WaitForNotification();
  }
  if (!load->status.ok()) {
    return absl::DataLossError(absl::StrCat("model '", name, "' version ", version,
                                            " could not be loaded: ", load->status.message()));
  }
  return absl::OkStatus();
}

absl::Status ModelManager::UnloadVersion(const std::string& name, int64_t version) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateVersionNumber(version); !s.ok()) return s;
  if (absl::Status s = CheckKnownModel(name); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  auto model = registry_->GetModel(name);
  if (!model) return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  auto it = model->versions.find(version);
  if (it == model->versions.end()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  }
  if (it->second.state == VersionState::kLoading) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", name, "' version ", version, " is loading; retry when the load ends"));
  }
  if (it->second.state != VersionState::kReady) return absl::OkStatus();  // nothing loaded
  if (absl::Status s = CheckNotLastAliasedReady(name, version, *model, model->aliases); !s.ok()) {
    return s;
  }
  VersionEntry entry;
  entry.state = VersionState::kUnloaded;
  entry.unloaded_by_user = true;
  entry.file_bytes = it->second.file_bytes;
  registry_->SetVersion(name, version, std::move(entry));
  return absl::OkStatus();
}

absl::Status ModelManager::CheckNotLastAliasedReady(
    const std::string& name, int64_t version, const ModelEntry& model,
    const std::map<std::string, int64_t>& aliases) const {
  auto it = model.versions.find(version);
  if (it == model.versions.end() || it->second.state != VersionState::kReady) {
    return absl::OkStatus();
  }
  int ready = 0;
  for (const auto& [n, v] : model.versions) ready += v.state == VersionState::kReady;
  if (ready != 1) return absl::OkStatus();
  for (const auto& [alias, target] : aliases) {
    if (target == version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " is the only ready version of model '", name, "' and alias '",
          alias, "' points at it (refused even with force); move the alias first (SetAlias), "
          "or remove it (RemoveAlias)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ModelManager::DeleteVersion(const std::string& name, int64_t version, bool force) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateVersionNumber(version); !s.ok()) return s;
  if (absl::Status s = CheckKnownModel(name); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  auto model = registry_->GetModel(name);
  if (!model || !model->versions.count(version)) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  }
  if (model->versions.at(version).state == VersionState::kLoading) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", name, "' version ", version, " is loading; retry when the load ends"));
  }
  // The aliases are read, checked and rewritten under the store's alias
  // lock, so an alias another replica points at this version meanwhile is
  // seen, and the version folder goes only after the aliases no longer
  // name it.
  absl::Status s = UpdateAliases(name, [&](std::map<std::string, int64_t>* aliases) {
    if (absl::Status last = CheckNotLastAliasedReady(name, version, *model, *aliases);
        !last.ok()) {
      return last;
    }
    std::vector<std::string> pointing;
    for (const auto& [alias, target] : *aliases)
      if (target == version) pointing.push_back("'" + alias + "'");
    if (!pointing.empty() && !force) {
      return absl::FailedPreconditionError(absl::StrCat(
          pointing.size() == 1 ? "alias " : "aliases ", absl::StrJoin(pointing, ", "),
          pointing.size() == 1 ? " points" : " point", " at version ", version,
          "; move or remove the alias first, or delete with force"));
    }
    for (auto it = aliases->begin(); it != aliases->end();) {
      it = it->second == version ? aliases->erase(it) : std::next(it);
    }
    return store_.Delete(name, version);
  });
  if (!s.ok()) return s;
  registry_->EraseVersion(name, version);
  // A model without versions is gone: not listed, not found by scoring.
  auto after = registry_->GetModel(name);
  if (after && after->versions.empty()) registry_->EraseModel(name);
  return absl::OkStatus();
}

absl::Status ModelManager::SetAlias(const std::string& name, const std::string& alias,
                                    int64_t version) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateAliasName(alias); !s.ok()) return s;
  if (absl::Status s = ValidateVersionNumber(version); !s.ok()) return s;
  if (absl::Status s = CheckKnownModel(name); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  auto v = registry_->GetVersion(name, version);
  if (!v) return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  if (v->state != VersionState::kReady) {
    return absl::FailedPreconditionError(absl::StrCat("version ", version, " is ",
                                                      VersionStateName(v->state),
                                                      "; an alias must point at a ready version"));
  }
  return UpdateAliases(name, [&](std::map<std::string, int64_t>* aliases) {
    (*aliases)[alias] = version;
    return absl::OkStatus();
  });
}

absl::Status ModelManager::RemoveAlias(const std::string& name, const std::string& alias) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateAliasName(alias); !s.ok()) return s;
  if (absl::Status s = CheckKnownModel(name); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  return UpdateAliases(name, [&](std::map<std::string, int64_t>* aliases) {
    if (!aliases->erase(alias)) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' has no alias '", alias, "'"));
    }
    return absl::OkStatus();
  });
}

absl::Status ModelManager::SetShadow(const std::string& name, const ShadowSpec& shadow) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if ((shadow.version != 0) == !shadow.alias.empty()) {
    return absl::InvalidArgumentError("set exactly one of the shadow's version and alias");
  }
  if (shadow.version != 0) {
    if (absl::Status s = ValidateVersionNumber(shadow.version); !s.ok()) return s;
  } else if (shadow.alias != "latest") {
    if (absl::Status s = ValidateAliasName(shadow.alias); !s.ok()) return s;
  }
  if (!(shadow.sample > 0 && shadow.sample <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample_fraction is ", shadow.sample, "; it must be in (0, 1] (0.1 = one record in ten)"));
  }
  absl::MutexLock admin(&admin_mu_);  // the checks hold until the write
  auto model = registry_->GetModel(name);
  if (!model) return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  if (shadow.version != 0) {
    auto v = model->versions.find(shadow.version);
    if (v == model->versions.end()) {
      return absl::NotFoundError(
          absl::StrCat("model '", name, "' has no version ", shadow.version));
    }
    if (v->second.state == VersionState::kFailed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", shadow.version, " failed to load (", v->second.error,
          "); a shadow must be able to score"));
    }
  } else if (shadow.alias != "latest" && !model->aliases.count(shadow.alias)) {
    return absl::NotFoundError(
        absl::StrCat("model '", name, "' has no alias '", shadow.alias, "'"));
  }
  auto lock = store_.LockAliases();
  if (!lock.ok()) return lock.status();
  if (absl::Status s = store_.WriteShadow(name, shadow, *lock); !s.ok()) return s;
  registry_->SetShadow(name, shadow);
  return absl::OkStatus();
}

absl::Status ModelManager::ClearShadow(const std::string& name) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  if (absl::Status s = CheckKnownModel(name); !s.ok()) return s;
  auto lock = store_.LockAliases();
  if (!lock.ok()) return lock.status();
  if (absl::Status s = store_.WriteShadow(name, std::nullopt, *lock); !s.ok()) return s;
  registry_->SetShadow(name, std::nullopt);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ModelManager::Export(const std::string& name, int64_t version,
                                                 const std::string& alias,
                                                 int64_t* resolved_version) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateVersionSelector(version); !s.ok()) return s;
  const bool latest = alias == "latest" || (alias.empty() && version == 0);
  if (!alias.empty() && alias != "latest") {
    if (absl::Status s = ValidateAliasName(alias); !s.ok()) return s;
  }
  int64_t v = version;
  if (latest) {
    auto handle = registry_->Resolve(name, 0, "");
    if (!handle.ok()) return handle.status();
    v = handle->version;
  } else {
    // An explicit version or alias is exported in any state: the file is
    // read from the store.
    auto model = registry_->GetModel(name);
    if (!model) return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
    if (!alias.empty()) {
      auto a = model->aliases.find(alias);
      if (a == model->aliases.end()) {
        return absl::NotFoundError(absl::StrCat("model '", name, "' has no alias '", alias, "'"));
      }
      v = a->second;
    }
    if (!model->versions.count(v)) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", v,
                                              alias.empty() ? "" : " (alias '" + alias + "')"));
    }
  }
  *resolved_version = v;
  auto bytes = ReadFileBounded(store_.VersionFile(name, v), kMaxModelBytes + kModelHeaderBytes);
  if (absl::IsNotFound(bytes.status())) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' version ", v,
                                            ": its file is missing from the store"));
  }
  return bytes;
}

}  // namespace anorand
