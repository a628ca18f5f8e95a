// File: test_fixtures.h
//
// Helpers for the data tests: building .npy images in memory, writing .npz
// archives with libzip (stored or deflated members), and byte patching of
// zip headers for hostile inputs. The temp directory is tests/support's.
// Test-only; not thread-safe; failures abort the test via gtest assertions
// in the callers.
#ifndef ANORAND_TESTS_DATA_TEST_FIXTURES_H_
#define ANORAND_TESTS_DATA_TEST_FIXTURES_H_

#include <zip.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/test_util.h"

namespace anorand {
namespace test_support {

// Raw little-endian bytes of a vector of plain values.
template <typename T>
std::string RawBytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(&out[0], values.data(), out.size());
  return out;
}

// An .npy image: magic, version, header length, `dict` padded with spaces
// to a multiple of 64 and ended by '\n', then `data`.
inline std::string NpyWithDict(const std::string& dict, const std::string& data,
                               int major = 1) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t prelude = 8 + len_bytes;
  std::string header = dict;
  while ((prelude + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t i = 0; i < len_bytes; ++i) {
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  }
  return out + header + data;
}

inline std::string Npy(const std::string& descr, bool fortran,
                       const std::string& shape, const std::string& data,
                       int major = 1) {
  return NpyWithDict("{'descr': '" + descr +
                         "', 'fortran_order': " + (fortran ? "True" : "False") +
                         ", 'shape': " + shape + ", }",
                     data, major);
}

inline bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct ZipMember {
  std::string name;
  std::string bytes;
  bool deflate = true;
};

// Writes a zip archive with libzip; returns false on any libzip failure.
inline bool WriteZip(const std::string& path,
                     const std::vector<ZipMember>& members) {
  int error = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (zip == nullptr) return false;
  for (const ZipMember& m : members) {
    zip_source_t* src =
        zip_source_buffer(zip, m.bytes.data(), m.bytes.size(), 0);
    if (src == nullptr) return zip_discard(zip), false;
    const zip_int64_t index =
        zip_file_add(zip, m.name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(src);
      zip_discard(zip);
      return false;
    }
    zip_set_file_compression(zip, index,
                             m.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  return zip_close(zip) == 0;
}

inline uint32_t GetLe32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

inline void PutLe32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    (*s)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Offsets of every local file header ("PK\3\4") and central directory
// header ("PK\1\2") in a zip image.
inline std::vector<size_t> FindSignature(const std::string& zip,
                                         const std::string& signature) {
  std::vector<size_t> at;
  for (size_t p = zip.find(signature); p != std::string::npos;
       p = zip.find(signature, p + 1)) {
    at.push_back(p);
  }
  return at;
}

// Sets the declared uncompressed size of member `index` in both its local
// header and its central directory entry.
inline void PatchUncompressedSize(std::string* zip, size_t index,
                                  uint32_t size) {
  const std::vector<size_t> local =
      FindSignature(*zip, std::string("PK\3\4", 4));
  const std::vector<size_t> central =
      FindSignature(*zip, std::string("PK\1\2", 4));
  PutLe32(zip, local[index] + 22, size);
  PutLe32(zip, central[index] + 24, size);
}

// Offset of member `index`'s (compressed) data in a zip image.
inline size_t MemberDataOffset(const std::string& zip, size_t index) {
  const size_t local = FindSignature(zip, std::string("PK\3\4", 4))[index];
  const auto le16 = [&](size_t at) {
    return static_cast<size_t>(static_cast<unsigned char>(zip[at])) |
           (static_cast<size_t>(static_cast<unsigned char>(zip[at + 1])) << 8);
  };
  return local + 30 + le16(local + 26) + le16(local + 28);
}

}  // namespace test_support
}  // namespace anorand

#endif  // ANORAND_TESTS_DATA_TEST_FIXTURES_H_
