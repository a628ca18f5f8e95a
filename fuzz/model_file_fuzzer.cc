// File: model_file_fuzzer.cc
//
// libFuzzer target for the model file loader (model/model_file.h): bytes ->
// ParseModel (container header, length, CRC-32, the ModelFile protobuf,
// ValidateModel). Each input is parsed twice: as given, which exercises the
// container checks, and with its length and checksum fields rewritten to
// match the payload, so that mutations of the payload reach the protobuf
// parser and the validator instead of stopping at the checksum. A model
// that passes must survive a save/load round trip, compile
// (CompiledModel::Create), and score one record with every output on.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "model/compiled_model.h"
#include "model/model_file.h"

namespace {

// The input with bytes 16-23 (payload length) and 24-27 (CRC-32) set to
// match the payload that follows the 28-byte header.
std::string WithMatchingHeader(absl::string_view bytes) {
  std::string fixed(bytes);
  const absl::string_view payload = bytes.substr(anorand::kModelHeaderBytes);
  const uint64_t len = payload.size();
  const uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(payload.data()),
            static_cast<uInt>(payload.size())));
  for (int i = 0; i < 8; ++i) fixed[16 + i] = static_cast<char>(len >> (8 * i));
  for (int i = 0; i < 4; ++i) fixed[24 + i] = static_cast<char>(crc >> (8 * i));
  return fixed;
}

void UseModel(const anorand::v1::ModelFile& model) {
  // Saving and loading again gives a valid model.
  FUZZ_CHECK(anorand::ValidateModel(model).ok());
  FUZZ_CHECK(anorand::ParseModel(anorand::SerializeModel(model), "again").ok());

  auto compiled = anorand::CompiledModel::Create(model);
  FUZZ_CHECK(compiled.ok());
  const int d = (*compiled)->input_features();
  FUZZ_CHECK(d == model.network().input_features());
  std::vector<float> x(d, 0.5f), contributions(d);
  float score = 0, noise = 0, recon = 0, error = 0;
  bool anomaly = false;
  anorand::ScoreOutputs out;
  out.score = &score;
  out.is_anomaly = &anomaly;
  out.noise_probability = &noise;
  out.reconstruction_probability = &recon;
  out.reconstruction_error = &error;
  out.contributions = contributions.data();
  FUZZ_CHECK((*compiled)->Score(x.data(), 1, out).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto model = anorand::ParseModel(bytes, "fuzz.anorand");
  if (model.ok()) UseModel(*model);
  if (size < anorand::kModelHeaderBytes) return 0;
  const std::string fixed = WithMatchingHeader(bytes);
  if (fixed == bytes) return 0;
  model = anorand::ParseModel(fixed, "fuzz.anorand");
  if (model.ok()) UseModel(*model);
  return 0;
}
