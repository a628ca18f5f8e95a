// File: bench_util.h
//
// Timing helpers shared by the benchmarks: a steady clock, elapsed seconds,
// medians and percentiles.
#ifndef ANORAND_BENCH_BENCH_UTIL_H_
#define ANORAND_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace anorand::bench {

using Clock = std::chrono::steady_clock;

inline std::chrono::nanoseconds Seconds(double s) {
  return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
}

inline double ElapsedSeconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The q-quantile (q in [0, 1], nearest rank) of v; 0 for an empty v.
inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  return v[i];
}

inline double Median(const std::vector<double>& v) { return Percentile(v, 0.5); }

// The service benchmark (bench/service_bench.cc).
int Service(const std::vector<std::string>& argv);

// Fit time and peak memory against rows (bench/train_scale_bench.cc).
int TrainScale(const std::vector<std::string>& argv);

}  // namespace anorand::bench

#endif  // ANORAND_BENCH_BENCH_UTIL_H_
