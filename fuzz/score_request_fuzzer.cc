// File: score_request_fuzzer.cc
//
// libFuzzer target for the request path of Score, in process and with no
// network: bytes -> anorand.v1.ScoreRequest (ParseFromArray, as gRPC would
// deserialize it) -> ScoreHandler (server/score_handler.h: field
// validation, model resolution in the Registry, the forward pass, the
// columnar response). The registry holds one tiny model of 4 features,
// "tiny", trained once at start-up on narrow-range data (fuzz/tiny_model.h):
// version 1 ready (aliases "production" and "stale", the latter pointing at
// the missing version 9), version 2 loading, version 3 failed, version 4
// unloaded; and "busy", with one version still loading. Limits are small
// (64 records, 4 KiB responses) so the fuzzer reaches the RESOURCE_EXHAUSTED
// paths with small inputs. An accepted request must get a response with one
// entry per record that fits the byte limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "anorand/v1/scoring.pb.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/tiny_model.h"
#include "model/compiled_model.h"
#include "server/registry.h"
#include "server/score_handler.h"

namespace {

constexpr int64_t kMaxMessageBytes = 4 << 10;
anorand::Registry* registry = nullptr;
anorand::ScoreHandler* handler = nullptr;

anorand::VersionEntry Entry(anorand::VersionState state,
                            std::shared_ptr<const anorand::CompiledModel> model) {
  anorand::VersionEntry e;
  e.state = state;
  e.model = std::move(model);
  if (state == anorand::VersionState::kFailed) e.error = "fuzz: made to fail";
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto file = anorand::fuzz::TinyModel(4, /*calibrated=*/true);
  if (!file.ok()) {
    std::fprintf(stderr, "cannot train the tiny model: %s\n", file.status().ToString().c_str());
    std::abort();
  }
  auto model = anorand::CompiledModel::Create(*std::move(file));
  if (!model.ok()) {
    std::fprintf(stderr, "cannot compile the tiny model: %s\n", model.status().ToString().c_str());
    std::abort();
  }
  using anorand::VersionState;
  registry = new anorand::Registry();
  registry->SetVersion("tiny", 1, Entry(VersionState::kReady, *model));
  registry->SetVersion("tiny", 2, Entry(VersionState::kLoading, nullptr));
  registry->SetVersion("tiny", 3, Entry(VersionState::kFailed, nullptr));
  registry->SetVersion("tiny", 4, Entry(VersionState::kUnloaded, nullptr));
  registry->SetAliases("tiny", {{"production", 1}, {"stale", 9}});
  registry->SetVersion("busy", 1, Entry(VersionState::kLoading, nullptr));

  anorand::ScoreLimits limits;
  limits.max_batch_records = 64;
  limits.max_message_bytes = kMaxMessageBytes;
  anorand::ScoreHooks hooks;
  hooks.observer = [](const anorand::ScoreEvent& e) {
    FUZZ_CHECK(e.model != nullptr);
    FUZZ_CHECK((e.code == absl::StatusCode::kOk) == (e.response != nullptr));
    FUZZ_CHECK(e.anomalies >= 0 && e.anomalies <= e.records);
  };
  handler = new anorand::ScoreHandler(registry, limits, std::move(hooks));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  anorand::v1::ScoreRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  anorand::v1::ScoreResponse response;
  const absl::Status status = handler->Score(request, &response);
  if (!status.ok()) return 0;
  const auto& batch = request.batch();
  const int64_t rows = batch.values_size() / batch.num_features();
  FUZZ_CHECK(batch.num_features() == 4 && rows >= 1);
  FUZZ_CHECK(response.model_name() == "tiny" && response.model_version() == 1);
  FUZZ_CHECK(response.scores_size() == rows && response.is_anomaly_size() == rows);
  FUZZ_CHECK(response.noise_probability_size() == rows);
  FUZZ_CHECK(response.reconstruction_probability_size() == rows);
  FUZZ_CHECK(response.reconstruction_error_size() == rows);
  FUZZ_CHECK(response.contributions_size() == (request.explain() ? rows * 4 : 0));
  FUZZ_CHECK(response.ids_size() == batch.ids_size());
  FUZZ_CHECK(response.ByteSizeLong() <= static_cast<size_t>(kMaxMessageBytes));
  return 0;
}
