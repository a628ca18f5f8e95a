// NPZ parsing (ParseNpz, ReadNpz) with libzip. Each member goes through
// ParseNpy (npy_reader.cc).
#include <zip.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/data/npy_reader.h"
#include "model/data/number_util.h"
#include "model/status_macros.h"

namespace anorand {
namespace {

constexpr absl::string_view kNpySuffix = ".npy";
constexpr size_t kReadChunk = size_t{1} << 16;
constexpr uint64_t kMaxReserve = uint64_t{64} << 20;

struct ZipDiscarder {
  void operator()(zip_t* zip) const { zip_discard(zip); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscarder>;
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

// One member to read, from the central directory.
struct Member {
  zip_uint64_t index = 0;
  std::string name;       // As stored, e.g. "X.npy".
  uint64_t declared = 0;  // Uncompressed size.
};

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

absl::Status MemberError(absl::string_view source, absl::string_view name,
                         absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": member ", QuoteForError(name), ": ", what));
}

// Validates one central-directory entry. Sets *skip for directories.
absl::Status CheckEntry(const zip_stat_t& st, absl::string_view source,
                        bool* skip) {
  const absl::string_view name = st.name;
  *skip = absl::EndsWith(name, "/");
  if (*skip) return absl::OkStatus();
  if (!absl::EndsWith(name, kNpySuffix) || name.size() == kNpySuffix.size()) {
    return MemberError(source, name, "is not a .npy array");
  }
  if ((st.valid & ZIP_STAT_SIZE) == 0) {
    return MemberError(source, name, "has no declared size");
  }
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 &&
      st.encryption_method != ZIP_EM_NONE) {
    return MemberError(source, name, "is encrypted (not supported)");
  }
  if ((st.valid & ZIP_STAT_COMP_METHOD) != 0 &&
      st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
    return MemberError(source, name,
                       absl::StrCat("uses compression method ", st.comp_method,
                                    "; only stored and deflate are supported"));
  }
  return absl::OkStatus();
}

// Lists the members and checks their declared sizes against the bound
// before anything is decompressed.
absl::StatusOr<std::vector<Member>> ListMembers(zip_t* zip,
                                                absl::string_view source,
                                                uint64_t max_total_bytes) {
  const zip_int64_t count = zip_get_num_entries(zip, 0);
  std::vector<Member> members;
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip, i, 0, &st) != 0 ||
        (st.valid & ZIP_STAT_NAME) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": cannot read zip entry ", i, ": ", zip_strerror(zip)));
    }
    bool skip = false;
    RETURN_IF_ERROR(CheckEntry(st, source, &skip));
    if (skip) continue;
    if (st.size > max_total_bytes - total) {
      // Refused from the central directory, before anything is inflated.
      return absl::ResourceExhaustedError(absl::StrCat(
          source, ": member ", QuoteForError(st.name), ": declares ", st.size,
          " uncompressed bytes; the members together would exceed the limit "
          "of ",
          max_total_bytes, " decompressed bytes"));
    }
    total += st.size;
    members.push_back({static_cast<zip_uint64_t>(i), st.name, st.size});
  }
  if (members.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the archive holds no .npy arrays"));
  }
  return members;
}

// Decompresses one member; its real size must equal the declared size.
absl::StatusOr<std::string> ReadMember(zip_t* zip, const Member& member,
                                       absl::string_view source,
                                       const std::function<bool()>& cancelled) {
  ZipFilePtr file(zip_fopen_index(zip, member.index, 0));
  if (file == nullptr) {
    return MemberError(source, member.name,
                       absl::StrCat("cannot open: ", zip_strerror(zip)));
  }
  std::string bytes;
  bytes.reserve(std::min(member.declared, kMaxReserve));
  std::vector<char> chunk(kReadChunk);
  while (true) {
    if (cancelled && cancelled()) {
      return absl::CancelledError(absl::StrCat(source, ": cancelled while member ",
                                               QuoteForError(member.name), " was inflated"));
    }
    const zip_int64_t got = zip_fread(file.get(), chunk.data(), chunk.size());
    if (got < 0) {
      return MemberError(
          source, member.name,
          absl::StrCat("corrupt data: ", zip_file_strerror(file.get())));
    }
    if (got == 0) break;
    if (static_cast<uint64_t>(got) > member.declared - bytes.size()) {
      return MemberError(source, member.name,
                         absl::StrCat("holds more than its declared size of ",
                                      member.declared, " bytes"));
    }
    bytes.append(chunk.data(), static_cast<size_t>(got));
  }
  if (bytes.size() != member.declared) {
    return MemberError(source, member.name,
                       absl::StrCat("holds ", bytes.size(),
                                    " bytes but declares ", member.declared));
  }
  return bytes;
}

absl::StatusOr<std::map<std::string, NpyArray>> ReadArchive(
    zip_t* zip, absl::string_view source, uint64_t max_total_bytes,
    const std::function<bool()>& cancelled) {
  ASSIGN_OR_RETURN(std::vector<Member> members,
                   ListMembers(zip, source, max_total_bytes));
  std::map<std::string, NpyArray> arrays;
  for (const Member& member : members) {
    std::string key =
        member.name.substr(0, member.name.size() - kNpySuffix.size());
    if (arrays.count(key) != 0) {
      return MemberError(source, member.name, "appears more than once");
    }
    ASSIGN_OR_RETURN(std::string bytes, ReadMember(zip, member, source, cancelled));
    ASSIGN_OR_RETURN(NpyArray array,
                     ParseNpy(bytes, absl::StrCat(source, ": member ",
                                                  QuoteForError(member.name))));
    arrays.emplace(std::move(key), std::move(array));
  }
  return arrays;
}

absl::Status OpenError(absl::string_view source, int code) {
  const std::string message = absl::StrCat(
      source, ": cannot open as a zip archive: ", ZipErrorText(code));
  if (code == ZIP_ER_NOENT) return absl::NotFoundError(message);
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<std::map<std::string, NpyArray>> ParseNpz(
    absl::string_view bytes, absl::string_view source_name,
    uint64_t max_total_bytes, const std::function<bool()>& cancelled) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": is empty (not a zip archive)"));
  }
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src =
      zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (src == nullptr) {
    const int code = zip_error_code_zip(&error);
    zip_error_fini(&error);
    return OpenError(source_name, code);
  }
  ZipPtr zip(zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (zip == nullptr) {
    zip_source_free(src);
    const int code = zip_error_code_zip(&error);
    zip_error_fini(&error);
    return OpenError(source_name, code);
  }
  zip_error_fini(&error);
  return ReadArchive(zip.get(), source_name, max_total_bytes, cancelled);
}

absl::StatusOr<std::map<std::string, NpyArray>> ReadNpz(
    const std::string& path, uint64_t max_total_bytes,
    const std::function<bool()>& cancelled) {
  int code = 0;
  ZipPtr zip(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (zip == nullptr) return OpenError(path, code);
  return ReadArchive(zip.get(), path, max_total_bytes, cancelled);
}

}  // namespace anorand
