#include "model/model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "model/drift_profile.h"
#include "model/little_endian.h"

namespace anorand {
namespace {

constexpr char kMagic[8] = {'A', 'N', 'O', 'R', 'A', 'N', 'D', '\0'};

}  // namespace

uint32_t Crc32(absl::string_view b) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t at = 0;
  while (at < b.size()) {
    const uInt n = static_cast<uInt>(std::min<size_t>(b.size() - at, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(b.data() + at), n);
    at += n;
  }
  return static_cast<uint32_t>(crc);
}

namespace {

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid model: ", what));
}

template <typename Field>
bool AllFinite(const Field& f) {
  for (float v : f)
    if (!std::isfinite(v)) return false;
  return true;
}

absl::Status CheckDense(const v1::DenseLayer& d, int in, int out, const std::string& where) {
  if (d.in_features() != in) {
    return Bad(absl::StrCat(where, " takes ", d.in_features(), " inputs, expected ", in));
  }
  if (d.out_features() < 1 || d.out_features() > 65536 || (out > 0 && d.out_features() != out)) {
    return Bad(absl::StrCat(where, " has ", d.out_features(), " outputs",
                            out > 0 ? absl::StrCat(", expected ", out) : std::string()));
  }
  if (static_cast<int64_t>(d.weight_size()) != static_cast<int64_t>(d.in_features()) * d.out_features() ||
      d.bias_size() != d.out_features()) {
    return Bad(absl::StrCat(where, " has ", d.weight_size(), " weights and ", d.bias_size(),
                            " biases for a ", d.out_features(), "x", d.in_features(), " layer"));
  }
  if (!AllFinite(d.weight()) || !AllFinite(d.bias())) {
    return Bad(absl::StrCat(where, " has a weight that is NaN or infinite"));
  }
  return absl::OkStatus();
}

// Checks a block of hidden layers fed with `in` features; returns its width.
absl::StatusOr<int> CheckBlock(const google::protobuf::RepeatedPtrField<v1::HiddenLayer>& layers,
                               int in, const char* name) {
  if (layers.empty() || layers.size() > 16) {
    return Bad(absl::StrCat(name, " has ", layers.size(), " layers; 1 to 16 are allowed"));
  }
  for (int i = 0; i < layers.size(); ++i) {
    const std::string where = absl::StrCat(name, " layer ", i);
    const auto& l = layers[i];
    if (absl::Status s = CheckDense(l.dense(), in, 0, where); !s.ok()) return s;
    const int w = l.dense().out_features();
    const auto& bn = l.batch_norm();
    if (bn.gamma_size() != w || bn.beta_size() != w || bn.running_mean_size() != w ||
        bn.running_var_size() != w) {
      return Bad(absl::StrCat(where, " batch norm does not have ", w, " values per statistic"));
    }
    if (!AllFinite(bn.gamma()) || !AllFinite(bn.beta()) || !AllFinite(bn.running_mean()) ||
        !AllFinite(bn.running_var()) || !(bn.eps() > 0) || !std::isfinite(bn.eps())) {
      return Bad(absl::StrCat(where, " batch norm has a NaN, infinite or non-positive value"));
    }
    for (float v : bn.running_var())
      if (v < 0) return Bad(absl::StrCat(where, " batch norm has a negative variance"));
    in = w;
  }
  return in;
}

}  // namespace

std::string SerializeModel(const v1::ModelFile& model) {
  std::string payload;
  model.SerializeToString(&payload);
  std::string out(kMagic, sizeof(kMagic));
  PutLe(kModelFormatVersion, 4, &out);
  PutLe(0, 4, &out);
  PutLe(payload.size(), 8, &out);
  PutLe(Crc32(payload), 4, &out);
  out += payload;
  return out;
}

absl::StatusOr<v1::ModelFile> ParseModel(absl::string_view bytes, absl::string_view source) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid model file: ", what));
  };
  if (bytes.size() < kModelHeaderBytes) {
    return bad(absl::StrCat("only ", bytes.size(), " bytes, shorter than the ", kModelHeaderBytes,
                            "-byte header"));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return bad("wrong magic (not an AnoRand model file)");
  }
  const uint64_t version = GetLe(bytes, 8, 4);
  if (version != kModelFormatVersion) {
    return bad(absl::StrCat("format version ", version, "; this build reads version ",
                            kModelFormatVersion));
  }
  const uint64_t len = GetLe(bytes, 16, 8);
  if (len > kMaxModelBytes) return bad(absl::StrCat("payload of ", len, " bytes is over the limit"));
  if (len != bytes.size() - kModelHeaderBytes) {
    return bad(absl::StrCat("header says ", len, " payload bytes, file has ",
                            bytes.size() - kModelHeaderBytes, " (truncated or padded)"));
  }
  const absl::string_view payload = bytes.substr(kModelHeaderBytes);
  if (Crc32(payload) != static_cast<uint32_t>(GetLe(bytes, 24, 4))) {
    return bad("checksum mismatch (the file is corrupted)");
  }
  v1::ModelFile model;
  if (!model.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return bad("payload is not a ModelFile message");
  }
  if (absl::Status s = ValidateModel(model); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return model;
}

namespace {

// One network and its scoring statistics (the model's, or an ensemble
// member's); `where` prefixes messages for members.
absl::Status ValidateMember(const v1::Network& net, const v1::ScoreStats& st, int d,
                            const std::string& where) {
  // Block and layer errors already say "invalid model: "; a member's get
  // its number inserted after that.
  auto wrap = [&](const absl::Status& s) {
    if (where.empty()) return s;
    absl::string_view msg = s.message();
    absl::ConsumePrefix(&msg, "invalid model: ");
    return Bad(absl::StrCat(where, msg));
  };
  if (net.input_features() != d) {
    return Bad(absl::StrCat(where, "input_features is ", net.input_features(), ", expected ", d));
  }
  auto z1 = CheckBlock(net.noise_detector(), d, "noise_detector");
  if (!z1.ok()) return wrap(z1.status());
  auto z0 = CheckBlock(net.encoder(), d, "encoder");
  if (!z0.ok()) return wrap(z0.status());
  auto dec = CheckBlock(net.decoder(), *z0 + *z1, "decoder");
  if (!dec.ok()) return wrap(dec.status());
  if (absl::Status s = CheckDense(net.noise_head(), *z1, 1, "noise_head"); !s.ok())
    return wrap(s);
  if (absl::Status s = CheckDense(net.reconstruction(), *dec, d, "reconstruction"); !s.ok())
    return wrap(s);
  if (st.rule() != v1::SCORE_RULE_PAPER && st.rule() != v1::SCORE_RULE_CALIBRATED) {
    return Bad(absl::StrCat(where, "unknown score rule ", st.rule()));
  }
  if (!(st.alpha() >= 0 && st.alpha() <= 1)) return Bad(absl::StrCat(where, "alpha must be in [0, 1]"));
  if (st.rule() == v1::SCORE_RULE_CALIBRATED) {
    for (const auto* q : {&st.noise_quantiles(), &st.error_quantiles()}) {
      if (q->size() < 2 || q->size() > 100001 || !AllFinite(*q) ||
          !std::is_sorted(q->begin(), q->end())) {
        return Bad(absl::StrCat(
            where, "calibrated score rule needs sorted, finite quantile tables (2 to 100001)"));
      }
    }
  } else if (st.noise_logit()) {
    return Bad(absl::StrCat(where, "noise_logit needs the calibrated score rule"));
  }
  if (st.error_feature_scale_size() != 0) {
    if (st.error_feature_scale_size() != d) {
      return Bad(absl::StrCat(where, st.error_feature_scale_size(), " error feature scales for ",
                              d, " features"));
    }
    for (float v : st.error_feature_scale())
      if (!(v > 0) || !std::isfinite(v))
        return Bad(absl::StrCat(where, "error feature scales must be positive and finite"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModel(const v1::ModelFile& m) {
  const v1::Network& net = m.network();
  const int d = net.input_features();
  if (d < 1 || d > kMaxInputFeatures) {
    return Bad(absl::StrCat("input_features is ", d, "; 1 to ", kMaxInputFeatures, " allowed"));
  }
  const v1::ScoreStats& st = m.score_stats();
  if (absl::Status s = ValidateMember(net, st, d, ""); !s.ok()) return s;
  if (m.ensemble_size() > 31) {
    return Bad(absl::StrCat("ensemble has ", m.ensemble_size() + 1, " networks; at most 32"));
  }
  for (int i = 0; i < m.ensemble_size(); ++i) {
    const auto& member = m.ensemble(i);
    if (st.rule() != v1::SCORE_RULE_CALIBRATED ||
        member.score_stats().rule() != v1::SCORE_RULE_CALIBRATED) {
      return Bad("an ensemble needs the calibrated score rule in every member");
    }
    if (absl::Status s = ValidateMember(member.network(), member.score_stats(), d,
                                        absl::StrCat("ensemble member ", i + 1, ": "));
        !s.ok())
      return s;
    if (member.has_normalizer()) {
      const v1::Normalizer& mn = member.normalizer();
      if (mn.offset_size() != d || mn.scale_size() != d || !AllFinite(mn.offset()) ||
          !AllFinite(mn.scale()) ||
          !std::all_of(mn.scale().begin(), mn.scale().end(), [](float v) { return v > 0; })) {
        return Bad(absl::StrCat("ensemble member ", i + 1, ": normalizer needs ", d,
                                " finite offsets and positive scales"));
      }
    }
  }
  // Member weights: 0 everywhere (a plain mean), or positive everywhere
  // with a sum of 1.
  double weight_sum = 0;
  int weighted = 0;
  for (int i = -1; i < m.ensemble_size(); ++i) {
    const double w = i < 0 ? st.member_weight() : m.ensemble(i).score_stats().member_weight();
    if (!(w >= 0 && w <= 1)) return Bad("ensemble member weights must be in [0, 1]");
    weight_sum += w;
    weighted += w > 0;
  }
  if (weighted != 0 && (weighted != m.ensemble_size() + 1 || m.ensemble_size() == 0 ||
                        std::abs(weight_sum - 1.0) > 1e-6)) {
    return Bad("ensemble member weights must all be 0 or all be positive with a sum of 1");
  }
  const v1::Normalizer& n = m.normalizer();
  if (n.offset_size() != d || n.scale_size() != d) {
    return Bad(absl::StrCat("normalizer has ", n.offset_size(), " offsets and ", n.scale_size(),
                            " scales for ", d, " features"));
  }
  if (!AllFinite(n.offset()) || !AllFinite(n.scale())) return Bad("normalizer value not finite");
  for (float s : n.scale())
    if (!(s > 0)) return Bad("normalizer scale must be positive");
  if (!std::isfinite(st.threshold())) return Bad("threshold is not finite");
  if (m.feature_names_size() != 0 && m.feature_names_size() != d) {
    return Bad(absl::StrCat(m.feature_names_size(), " feature names for ", d, " features"));
  }
  if (m.has_drift_profile()) return ValidateDriftProfile(m.drift_profile(), d);
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view bytes) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  // Unique per write: two writers of one path never share a temp file.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  auto os_error = [&](const char* what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(err)));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("cannot create a temporary file for");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return os_error("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return os_error("cannot fsync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return os_error("cannot rename into");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

absl::Status SaveModelFile(const v1::ModelFile& model, const std::string& path) {
  return WriteFileAtomic(path, SerializeModel(model));
}

absl::StatusOr<v1::ModelFile> LoadModelFile(const std::string& path) {
  auto bytes = ReadFileBounded(path, kMaxModelBytes + kModelHeaderBytes);
  if (!bytes.ok()) return bytes.status();
  return ParseModel(*bytes, path);
}

}  // namespace anorand
