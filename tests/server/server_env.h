// File: server_env.h
//
// A real anorand server in the test process, on a free loopback port, over
// a temporary model folder; stubs connect through real gRPC.
#ifndef ANORAND_TESTS_SERVER_SERVER_ENV_H_
#define ANORAND_TESTS_SERVER_SERVER_ENV_H_

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/model_file.h"
#include "server/server.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {

class ServerEnv {
 public:
  explicit ServerEnv(ServerOptions options = {}, bool start = true) : options_(std::move(options)) {
    options_.grpc_address = "127.0.0.1:0";
    if (options_.model_dir == "models") options_.model_dir = dir_.path() + "/models";
    if (start) Start();
  }
  void Start() {
    auto s = AnorandServer::Start(options_);
    if (!s.ok()) throw std::runtime_error(std::string(s.status().message()));
    server_ = *std::move(s);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  void Stop() { server_.reset(); }

  AnorandServer& server() { return *server_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  std::unique_ptr<v1::Scoring::Stub> scoring() { return v1::Scoring::NewStub(channel_); }
  std::unique_ptr<v1::Models::Stub> models() { return v1::Models::NewStub(channel_); }
  const std::string& model_dir() const { return options_.model_dir; }
  const ServerOptions& options() const { return options_; }

  // Imports `model` as `name` (version 0 = next) through the Models service.
  grpc::Status Import(const std::string& name, const v1::ModelFile& model, int64_t version = 0,
                      const std::string& alias = "", int64_t* published = nullptr) {
    return ImportBytes(name, SerializeModel(model), version, alias, published);
  }
  grpc::Status ImportBytes(const std::string& name, const std::string& bytes, int64_t version = 0,
                           const std::string& alias = "", int64_t* published = nullptr) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::VersionInfo info;
    auto stub = models();
    auto writer = stub->ImportVersion(&ctx, &info);
    v1::ImportChunk header;
    header.mutable_header()->set_model_name(name);
    header.mutable_header()->set_version(version);
    header.mutable_header()->set_alias(alias);
    writer->Write(header);
    for (size_t at = 0; at < bytes.size(); at += 16384) {
      v1::ImportChunk c;
      c.set_data(bytes.substr(at, 16384));
      writer->Write(c);
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (published) *published = info.version();
    return s;
  }

  // GetModel of `name` (every version); a failed call fails the test.
  v1::ModelInfo GetModel(const std::string& name) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::GetModelRequest req;
    req.mutable_model()->set_name(name);
    v1::ModelInfo info;
    grpc::Status s = models()->GetModel(&ctx, req, &info);
    if (!s.ok()) ADD_FAILURE() << "GetModel " << name << ": " << s.error_message();
    return info;
  }

  std::string token;

 private:
  TempDir dir_;
  ServerOptions options_;
  std::unique_ptr<AnorandServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A job spec of `model` with a small network and `epochs` epochs (no
// min_steps): trains in well under a second on test data.
inline v1::JobSpec SmallJobSpec(const std::string& model, int epochs) {
  v1::JobSpec spec;
  spec.set_model_name(model);
  spec.mutable_params()->set_max_epochs(epochs);
  spec.mutable_params()->set_min_steps(0);
  spec.mutable_params()->add_encoder_widths(16);
  spec.mutable_params()->add_encoder_widths(8);
  spec.mutable_params()->add_decoder_widths(16);
  return spec;
}

// DENSE chunks of `rows_per_chunk` records of `d`, with `labels[i]` for
// chunk i when given.
inline grpc::Status SubmitDenseJob(v1::Training::Stub* stub, const v1::JobSpec& spec,
                                  const Dataset& d, int64_t rows_per_chunk,
                                  const std::vector<std::vector<int>>& labels, v1::Job* job) {
  grpc::ClientContext ctx;
  auto w = stub->SubmitJob(&ctx, job);
  v1::SubmitJobRequest head;
  *head.mutable_spec() = spec;
  head.mutable_spec()->set_upload_format(v1::UPLOAD_FORMAT_DENSE);
  w->Write(head);
  for (int64_t at = 0, i = 0; at < d.rows; at += rows_per_chunk, ++i) {
    v1::SubmitJobRequest c;
    c.mutable_chunk()->set_num_features(static_cast<int>(d.cols));
    const int64_t end = std::min(d.rows, at + rows_per_chunk);
    c.mutable_chunk()->mutable_values()->Add(d.x.begin() + at * d.cols, d.x.begin() + end * d.cols);
    if (i < static_cast<int64_t>(labels.size())) {
      c.mutable_chunk()->mutable_labels()->Add(labels[i].begin(), labels[i].end());
    }
    if (!w->Write(c)) break;
  }
  w->WritesDone();
  return w->Finish();
}

// A request for `rows` records of `d` features drawn from DemoData.
inline v1::ScoreRequest MakeRequest(const std::string& model, int64_t rows, int d,
                                    uint64_t seed = 7) {
  v1::ScoreRequest req;
  req.mutable_model()->set_name(model);
  Dataset data = DemoData(std::max<int64_t>(rows, 10), d, seed);
  req.mutable_batch()->set_num_features(d);
  req.mutable_batch()->mutable_values()->Add(data.x.begin(), data.x.begin() + rows * d);
  return req;
}

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_SERVER_SERVER_ENV_H_
