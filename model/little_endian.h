// File: little_endian.h
//
// Little-endian integers in byte strings, for the file formats here
// (model_file.h, reservoir.h): PutLe appends the low `bytes` bytes of v,
// GetLe reads `bytes` bytes at `at` (the caller checks the bounds).
#ifndef ANORAND_MODEL_LITTLE_ENDIAN_H_
#define ANORAND_MODEL_LITTLE_ENDIAN_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace anorand {

inline void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline uint64_t GetLe(absl::string_view b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}

}  // namespace anorand

#endif  // ANORAND_MODEL_LITTLE_ENDIAN_H_
