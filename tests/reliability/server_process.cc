#include "tests/reliability/server_process.h"

#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/support/test_util.h"

namespace anorand::test_support {

ServerProcess::ServerProcess(const std::string& model_dir, const std::string& log_prefix,
                             const std::vector<std::string>& extra, double startup_seconds)
    : log_prefix_(log_prefix) {
  const char* binary = std::getenv("ANORAND_SERVER_BINARY");
  std::vector<std::string> argv = {binary && *binary ? binary : ServerBinary(),
                                   "--grpc_address=127.0.0.1:0", "--model_dir=" + model_dir,
                                   "--metrics_address="};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const std::regex port_re("listening on port ([0-9]+)");
  // Exit code 127 is a failed exec (the binary is being relinked): retry.
  for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));  // relink backoff
    proc_ = std::make_unique<Subprocess>(argv, log_prefix + ".out", log_prefix + ".err");
    WaitUntil(
        [&] {
          std::smatch m;
          const std::string out = ReadWholeFile(log_prefix_ + ".out");
          if (std::regex_search(out, m, port_re)) port_ = std::stoi(m[1]);
          if (port_ > 0) return true;
          early_exit_ = proc_->Wait(0);  // stop early if it exited
          return early_exit_ != -1;
        },
        startup_seconds);
    if (early_exit_ != 127) break;
  }
}

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  grpc::ChannelArguments args;
  // A private connection per channel, as separate clients would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials(), args);
}

int ServerProcess::Kill() {
  proc_->Signal(SIGKILL);
  return proc_->Wait(60);
}

int ServerProcess::Terminate(double timeout_seconds) {
  proc_->Signal(SIGTERM);
  return proc_->Wait(timeout_seconds);
}

std::string ServerProcess::Log() const {
  std::string log = ReadWholeFile(log_prefix_ + ".err");
  if (early_exit_ != -1) log += "[exited with code " + std::to_string(early_exit_) + "]";
  return log;
}

void Prepare(grpc::ClientContext* ctx, double deadline_seconds, const std::string& token) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(deadline_seconds * 1000)));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
}

grpc::Status ImportModel(v1::Models::Stub* stub, const std::string& token, const std::string& model,
                         const std::string& bytes, const std::string& alias, int64_t* version) {
  grpc::ClientContext ctx;
  Prepare(&ctx, 60, token);
  v1::VersionInfo info;
  auto writer = stub->ImportVersion(&ctx, &info);
  v1::ImportChunk header;
  header.mutable_header()->set_model_name(model);
  header.mutable_header()->set_alias(alias);
  bool ok = writer->Write(header);
  for (size_t at = 0; ok && at < bytes.size(); at += 16384) {
    v1::ImportChunk c;
    c.set_data(bytes.substr(at, 16384));
    ok = writer->Write(c);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (version) *version = s.ok() ? info.version() : 0;
  return s;
}

grpc::Status ExportModel(v1::Models::Stub* stub, const std::string& token, const std::string& model,
                         int64_t version, std::string* bytes) {
  grpc::ClientContext ctx;
  Prepare(&ctx, 60, token);
  v1::ExportVersionRequest req;
  req.mutable_model()->set_name(model);
  req.mutable_model()->set_version(version);
  auto reader = stub->ExportVersion(&ctx, req);
  v1::ExportChunk chunk;
  bytes->clear();
  int64_t total = -1;
  while (reader->Read(&chunk)) {
    if (total < 0) total = chunk.total_bytes();
    bytes->append(chunk.data());
  }
  grpc::Status s = reader->Finish();
  if (s.ok() && total != static_cast<int64_t>(bytes->size())) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "export: total_bytes " +
                                                         std::to_string(total) + " but got " +
                                                         std::to_string(bytes->size()));
  }
  return s;
}

grpc::Status SubmitDenseJob(v1::Training::Stub* stub, const std::string& token,
                            const std::string& model, const Dataset& data, int epochs,
                            const std::string& alias, v1::Job* job) {
  grpc::ClientContext ctx;
  Prepare(&ctx, 120, token);
  auto writer = stub->SubmitJob(&ctx, job);
  v1::SubmitJobRequest head;
  v1::JobSpec* spec = head.mutable_spec();
  spec->set_model_name(model);
  spec->set_upload_format(v1::UPLOAD_FORMAT_DENSE);
  spec->set_promote_to_alias(alias);
  spec->mutable_params()->set_max_epochs(epochs);
  spec->mutable_params()->set_min_steps(0);
  spec->mutable_params()->add_encoder_widths(16);
  spec->mutable_params()->add_encoder_widths(8);
  spec->mutable_params()->add_decoder_widths(16);
  bool ok = writer->Write(head);
  const int64_t per_chunk = 256;
  for (int64_t r = 0; ok && r < data.rows; r += per_chunk) {
    v1::SubmitJobRequest c;
    c.mutable_chunk()->set_num_features(static_cast<int>(data.cols));
    const int64_t n = std::min(per_chunk, data.rows - r);
    c.mutable_chunk()->mutable_values()->Add(data.row(r), data.row(r) + n * data.cols);
    ok = writer->Write(c);
  }
  writer->WritesDone();
  return writer->Finish();
}

v1::ScoreRequest ScoreRequestFor(const std::string& model, int64_t version,
                                 const std::string& alias, int64_t rows, int d, uint64_t seed) {
  v1::ScoreRequest req;
  req.mutable_model()->set_name(model);
  if (version > 0) req.mutable_model()->set_version(version);  // a oneof with alias
  if (!alias.empty()) req.mutable_model()->set_alias(alias);
  const Dataset data = DemoData(std::max<int64_t>(rows, 10), d, seed);
  req.mutable_batch()->set_num_features(d);
  req.mutable_batch()->mutable_values()->Add(data.x.begin(), data.x.begin() + rows * d);
  return req;
}

int64_t ResidentKiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

int OpenFds(pid_t pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  return end && *end == '\0' && n > 0 ? n : fallback;
}

}  // namespace anorand::test_support
