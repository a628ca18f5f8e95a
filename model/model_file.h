// File: model_file.h
//
// The model file: anorand.v1.ModelFile inside a small container
//   bytes 0-7   magic "ANORAND\0"
//   bytes 8-11  format version (little-endian uint32, currently 1)
//   bytes 12-15 reserved, zero
//   bytes 16-23 payload length (little-endian uint64)
//   bytes 24-27 CRC-32 of the payload (zlib's crc32: IEEE 802.3
//               polynomial, not CRC-32C), little-endian
//   bytes 28-   payload: the serialized ModelFile
// Saving is atomic (temp file, fsync, rename, fsync of the folder): a reader
// sees the old file or the new one, never a mix. Loading validates the
// container and every shape and value before anything uses the model.
// All functions are thread-safe.
#ifndef ANORAND_MODEL_MODEL_FILE_H_
#define ANORAND_MODEL_MODEL_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "anorand/v1/model.pb.h"
#include "model/data/file_io.h"  // ReadFileBounded, for the callers of this file

namespace anorand {

inline constexpr uint32_t kModelFormatVersion = 1;
inline constexpr size_t kModelHeaderBytes = 28;
inline constexpr uint64_t kMaxModelBytes = 512ull << 20;  // 512 MiB
inline constexpr int kMaxInputFeatures = 100000;

std::string SerializeModel(const v1::ModelFile& model);

// zlib's CRC-32 (IEEE 802.3 polynomial) of `bytes`, of any length.
uint32_t Crc32(absl::string_view bytes);

// INVALID_ARGUMENT, naming `source` and what is wrong, for any bad input.
absl::StatusOr<v1::ModelFile> ParseModel(absl::string_view bytes, absl::string_view source);

// Shapes consistent, sizes bounded, every float finite, statistics sane.
absl::Status ValidateModel(const v1::ModelFile& model);

absl::Status SaveModelFile(const v1::ModelFile& model, const std::string& path);
absl::StatusOr<v1::ModelFile> LoadModelFile(const std::string& path);

// Writes bytes atomically to path (temp file in the same folder, fsync,
// rename, fsync of the folder).
absl::Status WriteFileAtomic(const std::string& path, absl::string_view bytes);

}  // namespace anorand

#endif  // ANORAND_MODEL_MODEL_FILE_H_
