#include "tests/support/test_util.h"

#include <stdlib.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "model/data/synthetic_data.h"
#include "model/trainer.h"

namespace anorand::test_support {

TempDir::TempDir() {
  char tmpl[] = "/tmp/anorand-test.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Dataset DemoData(int64_t rows, int cols, uint64_t seed, double shift) {
  SyntheticOptions o;
  o.shift = shift;
  o.rows = rows;
  o.cols = cols;
  o.seed = seed;
  o.informative = std::min(cols, 5);
  return MakeSyntheticData(o);
}

v1::ModelFile TinyModel(int cols, uint64_t seed, int64_t rows, int epochs) {
  return TinyModelOn(DemoData(rows, cols, seed), seed, epochs);
}

v1::ModelFile TinyModelOn(Dataset data, uint64_t seed, int epochs) {
  v1::TrainingParams p;
  p.set_max_epochs(epochs);
  p.set_min_steps(0);
  p.set_seed(seed);
  p.add_encoder_widths(16);
  p.add_encoder_widths(8);
  p.add_decoder_widths(16);
  data.labels.clear();
  auto m = TrainModel(data, p);
  if (!m.ok()) throw std::runtime_error(std::string(m.status().message()));
  return *std::move(m);
}

Dataset SliceRows(const Dataset& data, int64_t from, int64_t count) {
  Dataset d;
  d.rows = count;
  d.cols = data.cols;
  d.feature_names = data.feature_names;
  d.x.assign(data.x.begin() + from * d.cols, data.x.begin() + (from + count) * d.cols);
  return d;
}

std::string SharedDir() {
  const char* env = std::getenv("ANORAND_SHARED_DIR");
  std::string dir = env && *env ? env : ANORAND_SHARED_DIR;
  return std::filesystem::exists(dir) ? dir : "";
}

bool WaitUntil(const std::function<bool()>& done, double timeout_seconds, int interval_ms) {
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > end) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

}  // namespace anorand::test_support
