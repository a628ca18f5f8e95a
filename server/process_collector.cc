#include "server/process_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>

namespace anorand {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  }
  return 0;
}

}  // namespace

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> out;
  auto add = [&out](const char* name, const char* help, MetricType type, double value) {
    MetricFamily f{name, help, type, {}};
    ClientMetric m;
    if (type == MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    f.metric.push_back(m);
    out.push_back(std::move(f));
  };
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after "(comm)": state is field 3; utime 14, stime 15,
  // starttime 22, vsize 23, rss 24.
  const size_t close = stat.rfind(')');
  if (close != std::string::npos && tick > 0) {
    std::istringstream in(stat.substr(close + 2));
    std::vector<std::string> f(1, "");  // f[i] = field i + 2
    for (std::string s; in >> s;) f.push_back(s);
    auto field = [&f](size_t n) {
      return n - 2 < f.size() ? std::strtod(f[n - 2].c_str(), nullptr) : 0.0;
    };
    if (f.size() > 23) {
      add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
          MetricType::Counter, (field(14) + field(15)) / tick);
      add("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
          field(23));
      add("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
          field(24) * page);
      const double boot = BootTime();
      if (boot > 0) {
        add("process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
            boot + field(22) / tick);
      }
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    int n = 0;
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    add("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, n);
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    add("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
        lim.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(lim.rlim_cur));
  }
  return out;
}

}  // namespace anorand
