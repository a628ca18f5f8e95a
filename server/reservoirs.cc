#include "server/reservoirs.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "model/data/file_io.h"
#include "model/model_file.h"
#include "server/names.h"

namespace anorand {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxReservoirRows = 100'000'000;
constexpr uint64_t kMaxReservoirFileBytes = uint64_t{1} << 34;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

void Warn(const absl::Status& s) {
  std::fprintf(stderr, "anorand-server: warning: %s\n", std::string(s.message()).c_str());
}

}  // namespace

absl::Status ValidateReservoirEntry(const std::string& name, int64_t rows) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--reservoir_records: ", s.message()));
  }
  if (rows < 2 || rows > kMaxReservoirRows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--reservoir_records: the rows of '", name, "' must be an integer in [2, ",
        kMaxReservoirRows, "]; got ", rows));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, int64_t>> ParseReservoirRecords(const std::string& text) {
  std::map<std::string, int64_t> out;
  if (text.empty()) return out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--reservoir_records: '", item, "' is not NAME=ROWS (e.g. fraud=50000)"));
    }
    const std::string name(item.substr(0, eq));
    int64_t rows = 0;
    if (!absl::SimpleAtoi(item.substr(eq + 1), &rows)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--reservoir_records: the rows of '", name, "' must be an integer in [2, ",
          kMaxReservoirRows, "]; got '", item.substr(eq + 1), "'"));
    }
    if (absl::Status s = ValidateReservoirEntry(name, rows); !s.ok()) return s;
    if (!out.emplace(name, rows).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--reservoir_records: '", name, "' is given twice"));
    }
  }
  return out;
}

std::string ReplicaId(const std::string& id) {
  if (!id.empty()) return id;
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "localhost";
  return host;
}

absl::Status ValidateReplicaId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64 && id[0] != '.';
  for (char c : id) ok &= absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--replica_id '", id, "' must be 1-64 of [A-Za-z0-9._-], not starting with '.' (it names "
      "this server's reservoir files; empty = the host name)"));
}

ReservoirSet::ReservoirSet(ReservoirOptions options)
    : options_(std::move(options)), period_ms_(options_.period_seconds * 1000) {
  uint64_t seed = static_cast<uint64_t>(NowMs());
  for (const auto& [name, rows] : options_.records) {
    slots_[name].reservoir = std::make_unique<Reservoir>(rows, period_ms_, ++seed, options_.max_bytes);
  }
}

ReservoirSet::~ReservoirSet() { Stop(); }

std::string ReservoirSet::PathOf(const std::string& model) const {
  return absl::StrCat(options_.dir, "/", model, "/", options_.replica, ".rsv");
}

absl::Status ReservoirSet::Start() {
  if (slots_.empty()) return absl::OkStatus();
  for (auto& [name, slot] : slots_) {
    const std::string path = PathOf(name);
    std::error_code ec;
    // Temporary files of this replica's writes that a crash interrupted.
    const std::string tmp_prefix = options_.replica + ".rsv.tmp.";
    for (fs::directory_iterator it(fs::path(path).parent_path(), ec), end; !ec && it != end;
         it.increment(ec)) {
      if (absl::StartsWith(it->path().filename().string(), tmp_prefix)) {
        std::error_code rm;
        fs::remove(it->path(), rm);
      }
    }
    if (!fs::exists(path, ec)) continue;
    auto bytes = ReadFileBounded(path, kMaxReservoirFileBytes);
    absl::StatusOr<ReservoirSnapshot> s =
        bytes.ok() ? ParseReservoir(*bytes, path) : absl::StatusOr<ReservoirSnapshot>(bytes.status());
    if (!s.ok()) {
      Warn(absl::InvalidArgumentError(absl::StrCat(
          s.status().message(), "; the reservoir of '", name, "' starts empty")));
      continue;
    }
    slot.reservoir->Restore(*std::move(s), NowMs());
    absl::MutexLock lock(&write_mu_);
    slot.written = slot.reservoir->changes();
  }
  writer_ = std::thread([this] { WriterLoop(); });
  return absl::OkStatus();
}

void ReservoirSet::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.SignalAll();
  }
  if (writer_.joinable()) writer_.join();
  if (!slots_.empty()) WriteChanged();
}

void ReservoirSet::Offer(const v1::ScoreRequest& request) {
  auto it = slots_.find(request.model().name());
  if (it == slots_.end()) return;
  const v1::RecordBatch& b = request.batch();
  const int cols = b.num_features();
  if (cols <= 0) return;
  it->second.reservoir->Observe(b.values().data(), b.values_size() / cols, cols, NowMs());
}

void ReservoirSet::WriteChanged() {
  absl::MutexLock lock(&write_mu_);
  for (auto& [name, slot] : slots_) {
    const uint64_t changes = slot.reservoir->changes();
    if (changes == slot.written) continue;
    const ReservoirSnapshot snap = slot.reservoir->Snapshot(NowMs());
    const std::string path = PathOf(name);
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    absl::Status s = ec ? absl::InternalError(absl::StrCat("cannot create the folder of ", path, ": ",
                                                           ec.message()))
                        : WriteFileAtomic(path, SerializeReservoir(snap));
    if (!s.ok()) {
      Warn(absl::InternalError(absl::StrCat("the reservoir of '", name, "' was not saved: ", s.message())));
      continue;
    }
    slot.written = changes;
  }
}

void ReservoirSet::WriterLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      cv_.WaitWithTimeout(&mu_, absl::Seconds(options_.flush_seconds));
      if (stopping_) return;
    }
    WriteChanged();
  }
}

absl::StatusOr<Dataset> ReservoirSet::TrainingData(const std::string& model) {
  if (slots_.count(model)) WriteChanged();
  const std::string dir = absl::StrCat(options_.dir, "/", model);
  std::vector<ReservoirSnapshot> snapshots;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".rsv" || !it->is_regular_file()) continue;
    auto bytes = ReadFileBounded(it->path().string(), kMaxReservoirFileBytes);
    if (!bytes.ok()) return absl::InternalError(bytes.status().message());
    auto s = ParseReservoir(*bytes, it->path().string());
    if (!s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          s.status().message(), "; delete the file (its replica writes a new one)"));
    }
    snapshots.push_back(*std::move(s));
  }
  auto d = ReservoirRows(snapshots, period_ms_, NowMs());
  if (!d.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", model, "': ", d.status().message(),
        snapshots.empty() ? " (no replica keeps a reservoir of it: start the scoring servers with "
                            "--reservoir_records " + model + "=ROWS)"
                          : ""));
  }
  return d;
}

std::vector<ReservoirStats> ReservoirSet::Stats() {
  std::vector<ReservoirStats> out;
  for (auto& [name, slot] : slots_) {
    ReservoirStats s;
    s.model = name;
    int cols = 0;
    slot.reservoir->Counts(NowMs(), &cols, &s.rows, &s.seen);
    s.bytes = s.rows * cols * 4;
    out.push_back(s);
  }
  return out;
}

}  // namespace anorand
