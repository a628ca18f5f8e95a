#include "server/metrics_auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "openssl/crypto.h"
#include "openssl/sha.h"

namespace anorand {
namespace {

// SHA-256 of `s`: equal-length digests compared with CRYPTO_memcmp keep the
// comparison's time independent of the strings' lengths and contents.
std::string Digest(const std::string& s) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

}  // namespace

bool BasicAuthCredentials::Matches(const std::string& u, const std::string& p) const {
  const std::string a = Digest(user) + Digest(password);
  const std::string b = Digest(u) + Digest(p);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<BasicAuthCredentials> ReadBasicAuthFile(const std::string& path) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_basic_auth_file=", path, ": ", why,
                     "; the file holds one line USER:PASSWORD"));
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad("cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  std::string line = text.str();
  if (line.size() > 4096) return bad("is longer than 4096 bytes");
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find('\n') != std::string::npos) return bad("has more than one line");
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return bad("has no ':' between user and password");
  BasicAuthCredentials c{line.substr(0, colon), line.substr(colon + 1)};
  if (c.user.empty()) return bad("the user is empty");
  if (c.password.empty()) return bad("the password is empty");
  return c;
}

}  // namespace anorand
