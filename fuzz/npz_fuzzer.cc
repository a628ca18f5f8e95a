// File: npz_fuzzer.cc
//
// libFuzzer target for the NPZ reader (model/data/npy_reader.h): bytes ->
// ParseNpz (libzip from memory: central directory, member names, declared
// and real sizes, stored or deflated data, each member through ParseNpy)
// and, for archives it accepts, the loader's NPZ path (DatasetFromBytes
// "npz": member "X" as features, or the only array when there is no "X";
// optional "y" as 0/1 labels). The total-size bound is lowered to 64 MiB so
// that one input cannot ask for gigabytes.
//
// libzip rejects a member whose CRC-32 does not match its data, so almost
// every mutation inside a member would stop there. Each input is therefore
// parsed twice: as given, and with the CRC-32 of every stored member
// rewritten (in its local and central headers) to match its bytes, so that
// mutated .npy members reach ParseNpy.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "model/data/data_loader.h"
#include "model/data/npy_reader.h"

namespace {

constexpr uint64_t kMaxTotalBytes = uint64_t{64} << 20;

uint32_t Le(const std::string& s, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

void PutLe32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}

// The archive with every stored member's CRC-32 set to match its data.
// Walks the central directory found through the end record; stops at the
// first entry that does not fit.
std::string WithStoredCrcsFixed(std::string zip) {
  const size_t eocd = zip.rfind(std::string("PK\5\6", 4));
  if (eocd == std::string::npos || zip.size() - eocd < 22) return zip;
  const size_t entries = Le(zip, eocd + 10, 2);
  size_t p = Le(zip, eocd + 16, 4);
  for (size_t i = 0; i < entries; ++i) {
    if (p > zip.size() || zip.size() - p < 46 || zip.compare(p, 4, "PK\1\2") != 0) break;
    const uint32_t method = Le(zip, p + 10, 2);
    const size_t size = Le(zip, p + 20, 4);
    const size_t local = Le(zip, p + 42, 4);
    const size_t next = p + 46 + Le(zip, p + 28, 2) + Le(zip, p + 30, 2) + Le(zip, p + 32, 2);
    if (method == 0 && local < zip.size() && zip.size() - local >= 30 &&
        zip.compare(local, 4, "PK\3\4") == 0) {
      const size_t data = local + 30 + Le(zip, local + 26, 2) + Le(zip, local + 28, 2);
      if (data <= zip.size() && zip.size() - data >= size) {
        const uint32_t crc = static_cast<uint32_t>(
            crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(zip.data() + data),
                  static_cast<uInt>(size)));
        PutLe32(&zip, p + 16, crc);
        PutLe32(&zip, local + 14, crc);
      }
    }
    p = next;
  }
  return zip;
}

void ParseAndCheck(absl::string_view bytes) {
  auto arrays = anorand::ParseNpz(bytes, "fuzz.npz", kMaxTotalBytes);
  if (!arrays.ok()) return;
  FUZZ_CHECK(!arrays->empty());
  for (const auto& [name, array] : *arrays) {
    FUZZ_CHECK(!name.empty());
    int64_t count = 1;
    for (int64_t dim : array.shape) count *= dim;
    FUZZ_CHECK(static_cast<size_t>(count) == array.data.size());
  }
  // Parses again (with the default bound, which this archive is within).
  auto dataset = anorand::DatasetFromBytes(bytes, "npz", {});
  if (!dataset.ok()) return;
  // The features are member "X", or the archive's only array.
  FUZZ_CHECK(arrays->count("X") == 1 || arrays->size() == 1);
  FUZZ_CHECK(dataset->rows >= 1 && dataset->cols >= 1);
  FUZZ_CHECK(dataset->x.size() == static_cast<size_t>(dataset->rows * dataset->cols));
  FUZZ_CHECK(dataset->labels.empty() ||
             dataset->labels.size() == static_cast<size_t>(dataset->rows));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ParseAndCheck(bytes);
  const std::string fixed = WithStoredCrcsFixed(bytes);
  if (fixed != bytes) ParseAndCheck(fixed);
  return 0;
}
