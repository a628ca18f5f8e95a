#include "server/client_paths.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "absl/synchronization/mutex.h"

namespace anorand {
namespace {

struct Folders {
  absl::Mutex mu;
  // Longest folder first, so a folder inside another is rewritten first.
  std::vector<std::pair<std::string, std::string>> list ABSL_GUARDED_BY(mu);
};

Folders& Registered() {
  static Folders* folders = new Folders;  // never destroyed: used until exit
  return *folders;
}

// `folder` without trailing slashes ("/" stays "/").
std::string Trimmed(std::string folder) {
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  return folder;
}

bool IsPathChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

}  // namespace

std::string ClientText(absl::string_view text) {
  Folders& f = Registered();
  absl::MutexLock lock(&f.mu);
  std::string out(text);
  for (const auto& [folder, description] : f.list) {
    std::string rewritten;
    size_t from = 0;
    for (size_t at = out.find(folder); at != std::string::npos; at = out.find(folder, from)) {
      const size_t end = at + folder.size();
      // Only whole folder names: "/data/m" is not inside "/data/mo".
      if (end < out.size() && out[end] != '/' && IsPathChar(out[end])) {
        rewritten.append(out, from, end - from);
        from = end;
        continue;
      }
      rewritten.append(out, from, at - from);
      if (end < out.size() && out[end] == '/') {
        from = end + 1;  // "<folder>/rest" -> "rest"
      } else {
        rewritten += description;
        from = end;
      }
    }
    rewritten.append(out, from, std::string::npos);
    out = std::move(rewritten);
  }
  return out;
}

ClientFolders::ClientFolders(std::vector<std::pair<std::string, std::string>> folders) {
  for (auto& [folder, description] : folders) {
    if (folder.empty()) continue;
    registered_.emplace_back(Trimmed(folder), description);
    std::error_code ec;
    const std::filesystem::path canonical = std::filesystem::weakly_canonical(folder, ec);
    if (!ec && Trimmed(canonical.string()) != Trimmed(folder)) {
      registered_.emplace_back(Trimmed(canonical.string()), description);
    }
    const std::filesystem::path absolute = std::filesystem::absolute(folder, ec);
    if (!ec && Trimmed(absolute.string()) != Trimmed(folder)) {
      registered_.emplace_back(Trimmed(absolute.lexically_normal().string()), description);
    }
  }
  Folders& f = Registered();
  absl::MutexLock lock(&f.mu);
  for (const auto& entry : registered_) f.list.push_back(entry);
  std::stable_sort(f.list.begin(), f.list.end(), [](const auto& a, const auto& b) {
    return a.first.size() > b.first.size();
  });
}

ClientFolders::~ClientFolders() {
  Folders& f = Registered();
  absl::MutexLock lock(&f.mu);
  for (const auto& entry : registered_) {
    auto it = std::find(f.list.begin(), f.list.end(), entry);
    if (it != f.list.end()) f.list.erase(it);
  }
}

}  // namespace anorand
