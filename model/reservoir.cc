#include "model/reservoir.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/little_endian.h"
#include "model/model_file.h"

namespace anorand {
namespace {

constexpr char kMagic[8] = {'A', 'N', 'O', 'R', 'S', 'V', 'R', '\0'};
constexpr uint32_t kVersion = 1;

int64_t RowsOf(const ReservoirHalf& h, int cols) {
  return cols == 0 ? 0 : static_cast<int64_t>(h.x.size()) / cols;
}

bool Expired(const ReservoirHalf& h, int64_t period_ms, int64_t now_ms) {
  return now_ms - h.start_ms >= 2 * period_ms;
}

// Keeps a uniform subset of `keep` rows of `h` (partial Fisher-Yates).
void Shrink(ReservoirHalf* h, int cols, int64_t keep, Rng* rng) {
  const int64_t rows = RowsOf(*h, cols);
  if (rows <= keep) return;
  for (int64_t i = 0; i < keep; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng->Below(static_cast<uint64_t>(rows - i)));
    if (j != i) {
      std::swap_ranges(h->x.begin() + i * cols, h->x.begin() + (i + 1) * cols, h->x.begin() + j * cols);
    }
  }
  h->x.resize(static_cast<size_t>(keep * cols));
}

}  // namespace

int64_t ReservoirSnapshot::rows() const { return RowsOf(previous, cols) + RowsOf(current, cols); }

std::string SerializeReservoir(const ReservoirSnapshot& s) {
  std::string out(kMagic, sizeof(kMagic));
  PutLe(kVersion, 4, &out);
  PutLe(static_cast<uint32_t>(s.cols), 4, &out);
  for (const ReservoirHalf* h : {&s.previous, &s.current}) {
    PutLe(static_cast<uint64_t>(h->start_ms), 8, &out);
    PutLe(static_cast<uint64_t>(h->seen), 8, &out);
    PutLe(static_cast<uint64_t>(RowsOf(*h, s.cols)), 8, &out);
    for (float v : h->x) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      PutLe(bits, 4, &out);
    }
  }
  PutLe(Crc32(out), 4, &out);
  return out;
}

absl::StatusOr<ReservoirSnapshot> ParseReservoir(absl::string_view b, absl::string_view source) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("reservoir file ", source, ": ", what));
  };
  if (b.size() < 16 + 2 * 24 + 4) return bad("shorter than its header");
  if (std::memcmp(b.data(), kMagic, sizeof(kMagic)) != 0) return bad("not a reservoir file (bad magic)");
  if (GetLe(b, 8, 4) != kVersion) return bad(absl::StrCat("format version ", GetLe(b, 8, 4), ", expected 1"));
  if (Crc32(b.substr(0, b.size() - 4)) != static_cast<uint32_t>(GetLe(b, b.size() - 4, 4))) {
    return bad("CRC mismatch (the file is damaged)");
  }
  ReservoirSnapshot s;
  const uint64_t cols = GetLe(b, 12, 4);
  if (cols > static_cast<uint64_t>(kMaxInputFeatures)) {
    return bad(absl::StrCat(cols, " features per record, over ", kMaxInputFeatures));
  }
  s.cols = static_cast<int>(cols);
  size_t at = 16;
  const size_t end = b.size() - 4;
  for (ReservoirHalf* h : {&s.previous, &s.current}) {
    if (end - at < 24) return bad("truncated half header");
    h->start_ms = static_cast<int64_t>(GetLe(b, at, 8));
    h->seen = static_cast<int64_t>(GetLe(b, at + 8, 8));
    const uint64_t rows = GetLe(b, at + 16, 8);
    at += 24;
    if (h->seen < 0 || rows > static_cast<uint64_t>(h->seen)) {
      return bad(absl::StrCat(rows, " rows kept of ", h->seen, " seen"));
    }
    if (rows > 0 && cols == 0) return bad("rows without features");
    if (rows > (end - at) / 4 / std::max<uint64_t>(cols, 1)) return bad("truncated rows");
    h->x.resize(static_cast<size_t>(rows * cols));
    for (float& v : h->x) {
      const uint32_t bits = static_cast<uint32_t>(GetLe(b, at, 4));
      std::memcpy(&v, &bits, 4);
      if (!std::isfinite(v)) return bad("a value is not finite");
      at += 4;
    }
  }
  if (at != end) return bad(absl::StrCat(end - at, " bytes after the rows"));
  return s;
}

absl::StatusOr<Dataset> ReservoirRows(const std::vector<ReservoirSnapshot>& snapshots,
                                      int64_t period_ms, int64_t now_ms) {
  Dataset d;
  for (const ReservoirSnapshot& s : snapshots) {
    for (const ReservoirHalf* h : {&s.previous, &s.current}) {
      if (h->x.empty() || Expired(*h, period_ms, now_ms)) continue;
      if (d.cols != 0 && d.cols != s.cols) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the reservoir's files disagree on the features per record (", d.cols, " and ", s.cols,
            "): records of the older width expire two periods after they were scored"));
      }
      d.cols = s.cols;
      d.x.insert(d.x.end(), h->x.begin(), h->x.end());
    }
  }
  if (d.x.empty()) {
    return absl::FailedPreconditionError(
        "the reservoir holds no records from the last two periods: score some traffic first");
  }
  d.rows = static_cast<int64_t>(d.x.size()) / d.cols;
  return d;
}

Reservoir::Reservoir(int64_t capacity, int64_t period_ms, uint64_t seed, int64_t max_bytes)
    : half_(std::max<int64_t>(1, capacity / 2)),
      max_bytes_(max_bytes),
      period_ms_(std::max<int64_t>(1, period_ms)),
      rng_(seed) {}

int64_t Reservoir::HalfRows(int cols) const {
  const int64_t by_bytes = max_bytes_ / 2 / (4 * static_cast<int64_t>(std::max(cols, 1)));
  return std::max<int64_t>(1, std::min(half_, by_bytes));
}

void Reservoir::RotateLocked(int64_t now_ms) {
  if (state_.current.start_ms == 0) {
    state_.current.start_ms = now_ms;
    return;
  }
  if (Expired(state_.previous, period_ms_, now_ms) && state_.previous.start_ms != 0) {
    state_.previous = ReservoirHalf();
    ++changes_;
  }
  if (now_ms - state_.current.start_ms < period_ms_) return;
  state_.previous = Expired(state_.current, period_ms_, now_ms) ? ReservoirHalf()
                                                                : std::move(state_.current);
  state_.current = ReservoirHalf();
  state_.current.start_ms = now_ms;
  ++changes_;
}

void Reservoir::Restore(ReservoirSnapshot s, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  for (ReservoirHalf* h : {&s.previous, &s.current}) {
    if (h->start_ms != 0 && Expired(*h, period_ms_, now_ms)) *h = ReservoirHalf();
    Shrink(h, s.cols, HalfRows(s.cols), &rng_);
  }
  state_ = std::move(s);
  ++changes_;
  RotateLocked(now_ms);
}

void Reservoir::Observe(const float* x, int64_t rows, int cols, int64_t now_ms) {
  if (rows <= 0 || cols <= 0) return;
  absl::MutexLock lock(&mu_);
  if (state_.cols != cols) {
    state_ = ReservoirSnapshot();
    state_.cols = cols;
  }
  RotateLocked(now_ms);
  ReservoirHalf& h = state_.current;
  const size_t width = static_cast<size_t>(cols);
  const int64_t limit = HalfRows(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    ++h.seen;
    const int64_t kept = static_cast<int64_t>(h.x.size() / width);
    if (kept < limit) {
      h.x.insert(h.x.end(), row, row + cols);
    } else {
      const uint64_t j = rng_.Below(static_cast<uint64_t>(h.seen));
      if (j < static_cast<uint64_t>(limit)) std::copy(row, row + cols, h.x.begin() + j * width);
    }
  }
  ++changes_;
}

ReservoirSnapshot Reservoir::Snapshot(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  RotateLocked(now_ms);
  return state_;
}

void Reservoir::Counts(int64_t now_ms, int* cols, int64_t* rows, int64_t* seen) {
  absl::MutexLock lock(&mu_);
  RotateLocked(now_ms);
  *cols = state_.cols;
  *rows = state_.rows();
  *seen = state_.seen();
}

uint64_t Reservoir::changes() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

}  // namespace anorand
