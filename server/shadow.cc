#include "server/shadow.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "server/thread_priority.h"

namespace anorand {
namespace {

// Tasks taken off the queue at once, in records: runs of one model,
// version and shadow among them are scored in one forward pass.
constexpr int64_t kMaxPassRecords = 8192;
// At most this many records in a pass while scoring is busy.
constexpr int64_t kBusyPassRecords = 256;

std::vector<double> Ranks(const std::vector<float>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&v](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double mean = 0.5 * static_cast<double>(i + j) + 1;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = mean;
    i = j + 1;
  }
  return rank;
}

ScoreQuantileSet Quantiles(std::vector<float> v) {
  ScoreQuantileSet q;
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&v](double p) {
    const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
    return static_cast<double>(v[std::min(i, v.size() - 1)]);
  };
  q.p50 = at(0.5);
  q.p90 = at(0.9);
  q.p99 = at(0.99);
  return q;
}

}  // namespace

double SpearmanCorrelation(const std::vector<float>& a, const std::vector<float>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n < 2) return 0;
  const std::vector<double> ra = Ranks(a), rb = Ranks(b);
  const double mean = 0.5 * static_cast<double>(n + 1);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) * (ra[i] - mean);
    sbb += (rb[i] - mean) * (rb[i] - mean);
  }
  if (saa <= 0 || sbb <= 0) return 0;
  return sab / std::sqrt(saa * sbb);
}

ShadowScorer::ShadowScorer(const Registry* registry, ShadowOptions options)
    : registry_(registry), options_(options) {}

ShadowScorer::~ShadowScorer() { Stop(); }

void ShadowScorer::Start() {
  if (!worker_.joinable()) worker_ = std::thread([this] { Work(); });
}

void ShadowScorer::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  absl::MutexLock lock(&queue_mu_);
  queue_.clear();
  queued_records_ = 0;
  done_ = pushed_;
}

void ShadowScorer::Offer(const v1::ScoreRequest& request, const v1::ScoreResponse& response) {
  const std::string& name = request.model().name();
  const std::optional<ShadowSpec> spec = registry_->GetShadow(name);
  if (!spec) return;
  auto shadow = registry_->Resolve(name, spec->version, spec->alias);
  // A version is not compared with itself; a shadow that is not READY, or
  // takes another width, has nothing to compare.
  if (!shadow.ok() || shadow->version == response.model_version()) return;
  const int64_t f = request.batch().num_features();
  const int64_t rows = response.scores_size();
  if (shadow->model->input_features() != f || request.batch().values_size() != rows * f) return;
  thread_local std::mt19937_64 gen{std::random_device{}()};
  // Each record is drawn with probability `sample`: the gaps between drawn
  // records are geometric, so the cost follows the records drawn.
  const bool all = spec->sample >= 1;
  std::geometric_distribution<int64_t> gap(all ? 0.5 : spec->sample);  // p in (0, 1)
  auto skip = [&] { return all ? 0 : std::min<int64_t>(gap(gen), rows); };
  Task task;
  const float* x = request.batch().values().data();
  for (int64_t r = skip(); r < rows; r += 1 + skip()) {
    task.x.insert(task.x.end(), x + r * f, x + (r + 1) * f);
    task.score.push_back(response.scores(static_cast<int>(r)));
    task.flag.push_back(response.is_anomaly(static_cast<int>(r)));
  }
  const int64_t n = static_cast<int64_t>(task.score.size());
  if (n == 0) return;
  task.model = name;
  task.version = response.model_version();
  task.shadow = *std::move(shadow);
  {
    absl::MutexLock lock(&queue_mu_);
    if (!stopping_ && queued_records_ + n <= options_.queue_records) {
      queued_records_ += n;
      ++pushed_;
      queue_.push_back(std::move(task));
      return;
    }
  }
  absl::MutexLock lock(&stats_mu_);
  dropped_[name] += n;
}

bool ShadowScorer::YieldToScoring() {
  const ScoringLoad* load = options_.scoring_load;
  if (!load) return false;
  const int64_t slice_ns = absl::ToInt64Nanoseconds(options_.yield_slice);
  auto busy = [&] { return load->BusyWithin(ScoringLoad::NowNs(), slice_ns); };
  const absl::Time until = absl::Now() + options_.yield_max_pause;
  absl::MutexLock lock(&queue_mu_);
  while (busy() && !stopping_) {
    if (absl::Now() >= until) return true;
    queue_mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.yield_slice);
  }
  return false;
}

void ShadowScorer::Work() {
  // Serving threads win the CPU: when the machine is busy the shadow falls
  // behind and its queue drops records, instead of slowing the answers.
  (void)LowerCurrentThreadPriority();
  for (;;) {
    std::vector<Task> taken;
    int64_t records = 0;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](ShadowScorer* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->queue_mu_) {
            return s->stopping_ || !s->queue_.empty();
          },
          this));
      if (stopping_) return;
    }
    const int64_t pass_records = YieldToScoring() ? kBusyPassRecords : kMaxPassRecords;
    {
      absl::MutexLock lock(&queue_mu_);
      if (stopping_) return;
      while (!queue_.empty() && (taken.empty() || records < pass_records)) {
        records += static_cast<int64_t>(queue_.front().score.size());
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (size_t i = 0; i < taken.size();) {
      size_t j = i + 1;
      while (j < taken.size() && taken[j].model == taken[i].model &&
             taken[j].version == taken[i].version &&
             taken[j].shadow.model == taken[i].shadow.model) {
        ++j;
      }
      ScoreRun(std::vector<Task>(std::make_move_iterator(taken.begin() + i),
                                 std::make_move_iterator(taken.begin() + j)));
      i = j;
    }
    absl::MutexLock lock(&queue_mu_);
    queued_records_ -= records;
    done_ += taken.size();
  }
}

void ShadowScorer::ScoreRun(const std::vector<Task>& run) {
  const Task& first = run.front();
  std::vector<float> x;
  std::vector<float> serving;
  std::vector<char> serving_flag;
  for (const Task& t : run) {
    x.insert(x.end(), t.x.begin(), t.x.end());
    serving.insert(serving.end(), t.score.begin(), t.score.end());
    serving_flag.insert(serving_flag.end(), t.flag.begin(), t.flag.end());
  }
  const int64_t rows = static_cast<int64_t>(serving.size());
  std::vector<float> score(rows);
  std::unique_ptr<bool[]> flag(new bool[rows]);
  ScoreOutputs out;
  out.score = score.data();
  out.is_anomaly = flag.get();
  // The serving version scored these values: they are finite.
  if (!first.shadow.model->Score(x.data(), rows, out).ok()) return;
  const size_t cap = static_cast<size_t>(std::max<int64_t>(options_.window_records, 1));
  absl::MutexLock lock(&stats_mu_);
  Pair& pair = pairs_[PairKey(first.model, first.version, first.shadow.version)];
  pair.compared += rows;
  pair.updated = ++updates_;
  for (int64_t r = 0; r < rows; ++r) {
    const Sample s{serving[r], score[r], serving_flag[r] != 0, flag[r]};
    if (pair.window.size() < cap) {
      pair.window.push_back(s);
    } else {
      pair.window[pair.next] = s;
      pair.next = (pair.next + 1) % cap;
    }
  }
}

ShadowComparisonStats ShadowScorer::Summarise(const PairKey& key, const Pair& pair) {
  ShadowComparisonStats c;
  std::tie(c.model, c.version, c.shadow_version) = key;
  c.compared = pair.compared;
  c.window = static_cast<int64_t>(pair.window.size());
  std::vector<float> a, b;
  a.reserve(pair.window.size());
  b.reserve(pair.window.size());
  int64_t serving_only = 0, shadow_only = 0;
  for (const Sample& s : pair.window) {
    a.push_back(s.serving);
    b.push_back(s.shadow);
    serving_only += s.serving_flag && !s.shadow_flag;
    shadow_only += s.shadow_flag && !s.serving_flag;
  }
  c.rank_correlation = SpearmanCorrelation(a, b);
  if (c.window > 0) {
    c.serving_only_flagged = static_cast<double>(serving_only) / static_cast<double>(c.window);
    c.shadow_only_flagged = static_cast<double>(shadow_only) / static_cast<double>(c.window);
  }
  c.serving_scores = Quantiles(std::move(a));
  c.shadow_scores = Quantiles(std::move(b));
  return c;
}

std::vector<ShadowComparisonStats> ShadowScorer::Compare(const std::string& model) const {
  std::vector<std::pair<uint64_t, std::pair<PairKey, Pair>>> copies;
  {
    absl::MutexLock lock(&stats_mu_);
    for (const auto& [key, pair] : pairs_) {
      if (model.empty() || std::get<0>(key) == model) {
        copies.push_back({pair.updated, {key, pair}});
      }
    }
  }
  std::sort(copies.begin(), copies.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<ShadowComparisonStats> out;
  for (const auto& [updated, kp] : copies) out.push_back(Summarise(kp.first, kp.second));
  return out;
}

std::vector<ShadowComparisonStats> ShadowScorer::CompareAll() const { return Compare(""); }

int64_t ShadowScorer::Dropped(const std::string& model) const {
  absl::MutexLock lock(&stats_mu_);
  auto it = dropped_.find(model);
  return it == dropped_.end() ? 0 : it->second;
}

std::map<std::string, int64_t> ShadowScorer::DroppedAll() const {
  absl::MutexLock lock(&stats_mu_);
  return dropped_;
}

void ShadowScorer::Flush() {
  absl::MutexLock lock(&queue_mu_);
  const uint64_t target = pushed_;
  struct Args {
    ShadowScorer* self;
    uint64_t target;
  } args{this, target};
  queue_mu_.Await(absl::Condition(
      +[](Args* a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(a->self->queue_mu_) {
        return a->self->stopping_ || a->self->done_ >= a->target;
      },
      &args));
}

}  // namespace anorand
