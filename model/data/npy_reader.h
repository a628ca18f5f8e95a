// File: npy_reader.h
//
// Readers for NumPy's .npy (one array) and .npz (a zip of .npy members)
// formats, turning numeric arrays into doubles in C (row-major) order.
//
// Accepted: NPY versions 1.0, 2.0 and 3.0; a header dict with exactly the
// keys 'descr', 'fortran_order' and 'shape' (any order, any whitespace, an
// optional trailing comma, Python 2 "3L" integers); dtypes f4 f8 i1 i2 i4 i8
// u1 u2 u4 u8 b1 in little- ('<', or '|' for one-byte types) or big-endian
// ('>', converted) byte order; Fortran-order data (converted); 0-d, 1-d and
// 2-d shapes. NPZ members are stored or deflated; each member name must end
// in ".npy", which is stripped for the map key ("X.npy" -> "X"); directory
// entries are ignored.
//
// Bounds, checked before allocating: at most kMaxNpyElements elements per
// array; the data length must equal elements * itemsize exactly; NPZ members
// together may declare at most `max_total_bytes` uncompressed (4 GiB by
// default; over it: ResourceExhaustedError, before any member is inflated),
// and a member whose real size differs from its declared size is rejected
// while it is read, so inflating never holds more than the declared bytes. Integers beyond 2^53 lose precision in double.
//
// Thread safety: stateless functions; safe to call concurrently.
// Failure behaviour: absl::InvalidArgumentError naming the source (and NPZ
// member) and the fault: bad magic, truncated header, unsupported version,
// header syntax, bad or unsupported dtype (object arrays: "pickled object
// arrays are not supported"), more than 2 dimensions, size mismatch, NaN/inf
// (with the flat index, and row/column for 2-D), corrupt zip member.
// File functions add NotFound etc. for the path. Never throws.
#ifndef ANORAND_MODEL_DATA_NPY_READER_H_
#define ANORAND_MODEL_DATA_NPY_READER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace anorand {

inline constexpr int64_t kMaxNpyElements = int64_t{1} << 31;
inline constexpr uint64_t kMaxNpzTotalBytes = uint64_t{4} << 30;
// ParseNpyFile refuses larger files (largest legal array plus a header).
inline constexpr uint64_t kMaxNpyFileBytes =
    static_cast<uint64_t>(kMaxNpyElements) * 8 + (uint64_t{1} << 20);

struct NpyArray {
  // Empty for a 0-d array (one element).
  std::vector<int64_t> shape;
  // Product of shape elements, C order.
  std::vector<double> data;
};

// Parses one .npy image; `source_name` only labels error messages.
absl::StatusOr<NpyArray> ParseNpy(absl::string_view bytes,
                                  absl::string_view source_name);

// Reads and parses the .npy file at `path`.
absl::StatusOr<NpyArray> ParseNpyFile(const std::string& path);

// Parses an in-memory .npz image; keys are member names without ".npy".
// `cancelled`, when set, is polled after every 64 KiB inflated: true stops
// with CancelledError.
absl::StatusOr<std::map<std::string, NpyArray>> ParseNpz(
    absl::string_view bytes, absl::string_view source_name,
    uint64_t max_total_bytes = kMaxNpzTotalBytes,
    const std::function<bool()>& cancelled = nullptr);

// Opens the .npz file at `path` and parses all its members.
absl::StatusOr<std::map<std::string, NpyArray>> ReadNpz(
    const std::string& path, uint64_t max_total_bytes = kMaxNpzTotalBytes,
    const std::function<bool()>& cancelled = nullptr);

}  // namespace anorand

#endif  // ANORAND_MODEL_DATA_NPY_READER_H_
