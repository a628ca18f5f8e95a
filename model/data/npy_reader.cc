// NPY parsing (ParseNpy, ParseNpyFile). The NPZ functions are in
// npz_reader.cc.
#include "model/data/npy_reader.h"

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/data/file_io.h"
#include "model/data/npy_header.h"
#include "model/data/number_util.h"
#include "model/status_macros.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "npy_reader assumes a little-endian host");

namespace anorand {
namespace {

constexpr absl::string_view kMagic = "\x93NUMPY";
constexpr size_t kPreludeBytes = 8;  // Magic plus two version bytes.
constexpr absl::string_view kSupportedDtypes =
    "<f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1 (or big-endian '>')";

enum class Kind { kFloat, kInt, kUint, kBool };

struct Dtype {
  Kind kind = Kind::kFloat;
  int size = 8;
  bool big_endian = false;
};

absl::Status Fail(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

// Finds the header text; *data_offset is where the array bytes start.
absl::StatusOr<absl::string_view> HeaderText(absl::string_view bytes,
                                             absl::string_view source,
                                             size_t* data_offset) {
  if (bytes.size() < kMagic.size() ||
      bytes.substr(0, kMagic.size()) != kMagic) {
    return Fail(source, "not an NPY file (bad magic; expected \\x93NUMPY)");
  }
  if (bytes.size() < kPreludeBytes + 2) {
    return Fail(source, absl::StrCat("truncated NPY header (", bytes.size(),
                                     " bytes)"));
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return Fail(source, absl::StrCat("unsupported NPY version ", major, ".",
                                     minor, " (supported: 1.0, 2.0, 3.0)"));
  }
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < kPreludeBytes + len_bytes) {
    return Fail(source, "truncated NPY header length");
  }
  uint64_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i) {
    header_len |= uint64_t{static_cast<unsigned char>(bytes[kPreludeBytes + i])}
                  << (8 * i);
  }
  const size_t start = kPreludeBytes + len_bytes;
  if (header_len > bytes.size() - start) {
    return Fail(source, absl::StrCat("truncated NPY header: it declares ",
                                     header_len, " bytes but only ",
                                     bytes.size() - start, " follow"));
  }
  *data_offset = start + header_len;
  return bytes.substr(start, header_len);
}

absl::StatusOr<Dtype> ParseDtype(const std::string& descr,
                                 absl::string_view source) {
  if (descr.find('O') != std::string::npos) {
    return Fail(source, "pickled object arrays are not supported (dtype " +
                            QuoteForError(descr) + ")");
  }
  const auto unsupported = [&]() {
    return Fail(source, absl::StrCat("unsupported dtype ", QuoteForError(descr),
                                     "; supported: ", kSupportedDtypes));
  };
  if (descr.size() != 3) return unsupported();
  const char order = descr[0];
  Dtype dtype;
  dtype.size = descr[2] - '0';
  switch (descr[1]) {
    case 'f':
      dtype.kind = Kind::kFloat;
      break;
    case 'i':
      dtype.kind = Kind::kInt;
      break;
    case 'u':
      dtype.kind = Kind::kUint;
      break;
    case 'b':
      dtype.kind = Kind::kBool;
      break;
    default:
      return unsupported();
  }
  const bool size_ok =
      dtype.kind == Kind::kFloat  ? (dtype.size == 4 || dtype.size == 8)
      : dtype.kind == Kind::kBool ? dtype.size == 1
                                  : (dtype.size == 1 || dtype.size == 2 ||
                                     dtype.size == 4 || dtype.size == 8);
  if (!size_ok) return unsupported();
  if (order == '|' && dtype.size != 1) {
    return Fail(source, absl::StrCat("dtype ", QuoteForError(descr),
                                     ": byte order '|' is only valid for "
                                     "one-byte types"));
  }
  if (order != '<' && order != '>' && order != '|') return unsupported();
  dtype.big_endian = order == '>' && dtype.size > 1;
  return dtype;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return absl::StrCat("(", shape[0], ",)");
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

// Number of elements, or an error when there are too many or too many dims.
absl::StatusOr<int64_t> ElementCount(const std::vector<int64_t>& shape,
                                     absl::string_view source) {
  if (shape.size() > 2) {
    return Fail(source, absl::StrCat("arrays with ", shape.size(),
                                     " dimensions are not supported (at most "
                                     "2); shape ",
                                     ShapeText(shape)));
  }
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim != 0 && count > kMaxNpyElements / dim) {
      return Fail(source, absl::StrCat("shape ", ShapeText(shape),
                                       " has more than the limit of ",
                                       kMaxNpyElements, " elements"));
    }
    count *= dim;
  }
  return count;
}

template <typename T>
T Load(const char* p, bool swap) {
  using U = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<
          sizeof(T) == 2, uint16_t,
          std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  U bits;
  std::memcpy(&bits, p, sizeof(T));
  if (swap) {
    if constexpr (sizeof(T) == 2) bits = __builtin_bswap16(bits);
    if constexpr (sizeof(T) == 4) bits = __builtin_bswap32(bits);
    if constexpr (sizeof(T) == 8) bits = __builtin_bswap64(bits);
  }
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

template <typename T>
void DecodeAll(const char* p, bool swap, std::vector<double>* out) {
  for (double& v : *out) {
    v = static_cast<double>(Load<T>(p, swap));
    p += sizeof(T);
  }
}

void Decode(const char* p, const Dtype& d, std::vector<double>* out) {
  const bool s = d.big_endian;
  switch (d.kind) {
    case Kind::kFloat:
      return d.size == 4 ? DecodeAll<float>(p, s, out)
                         : DecodeAll<double>(p, s, out);
    case Kind::kBool:
      for (double& v : *out) v = *p++ != 0 ? 1.0 : 0.0;
      return;
    case Kind::kInt:
      if (d.size == 1) return DecodeAll<int8_t>(p, s, out);
      if (d.size == 2) return DecodeAll<int16_t>(p, s, out);
      if (d.size == 4) return DecodeAll<int32_t>(p, s, out);
      return DecodeAll<int64_t>(p, s, out);
    case Kind::kUint:
      if (d.size == 1) return DecodeAll<uint8_t>(p, s, out);
      if (d.size == 2) return DecodeAll<uint16_t>(p, s, out);
      if (d.size == 4) return DecodeAll<uint32_t>(p, s, out);
      return DecodeAll<uint64_t>(p, s, out);
  }
}

// Column-major (rows x cols) to row-major.
std::vector<double> FortranToC(const std::vector<double>& in, int64_t rows,
                               int64_t cols) {
  std::vector<double> out(in.size());
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < rows; ++i) out[i * cols + j] = in[j * rows + i];
  }
  return out;
}

absl::Status CheckFinite(const NpyArray& array, absl::string_view source) {
  for (size_t k = 0; k < array.data.size(); ++k) {
    const double v = array.data[k];
    if (std::isfinite(v)) continue;
    std::string where = absl::StrCat("at index ", k);
    if (array.shape.size() == 2) {
      const auto cols = static_cast<size_t>(array.shape[1]);
      absl::StrAppend(&where, " (row ", k / cols, ", column ", k % cols, ")");
    }
    return Fail(source, absl::StrCat(
                            "non-finite value ",
                            std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"),
                            " ", where, " (NaN and infinity are not allowed)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NpyArray> ParseNpy(absl::string_view bytes,
                                  absl::string_view source_name) {
  size_t data_offset = 0;
  ASSIGN_OR_RETURN(absl::string_view text,
                   HeaderText(bytes, source_name, &data_offset));
  absl::StatusOr<NpyHeader> header = ParseNpyHeaderDict(text);
  if (!header.ok()) return Fail(source_name, header.status().message());
  ASSIGN_OR_RETURN(Dtype dtype, ParseDtype(header->descr, source_name));
  ASSIGN_OR_RETURN(int64_t count, ElementCount(header->shape, source_name));
  const uint64_t need = static_cast<uint64_t>(count) * dtype.size;
  const uint64_t have = bytes.size() - data_offset;
  if (have != need) {
    return Fail(source_name,
                absl::StrCat("data is ", have, " bytes but shape ",
                             ShapeText(header->shape), " of ", header->descr,
                             " needs exactly ", need));
  }
  NpyArray array;
  array.shape = std::move(header->shape);
  array.data.resize(static_cast<size_t>(count));
  Decode(bytes.data() + data_offset, dtype, &array.data);
  if (header->fortran_order && array.shape.size() == 2) {
    array.data = FortranToC(array.data, array.shape[0], array.shape[1]);
  }
  RETURN_IF_ERROR(CheckFinite(array, source_name));
  return array;
}

absl::StatusOr<NpyArray> ParseNpyFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileBounded(path, kMaxNpyFileBytes));
  return ParseNpy(bytes, path);
}

}  // namespace anorand
