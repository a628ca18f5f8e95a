// File: models_service.h
//
// anorand.v1.Models on the gRPC callback API: a thin edge over
// ModelManager (validate, call, convert the status). Export streams the
// stored file in 1 MiB chunks; Import collects chunks up to a byte limit,
// then validates and publishes exactly like a load from disk. Every call
// passes the bearer-token check first (auth.h).
#ifndef ANORAND_SERVER_MODELS_SERVICE_H_
#define ANORAND_SERVER_MODELS_SERVICE_H_

#include "anorand/v1/models.grpc.pb.h"
#include "server/auth.h"
#include "server/model_manager.h"

namespace anorand {

class ModelsService final : public v1::Models::CallbackService {
 public:
  ModelsService(ModelManager* manager, const TokenAuth* auth, int64_t max_upload_bytes)
      : manager_(manager), auth_(auth), max_upload_bytes_(max_upload_bytes) {}

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext*, const v1::ListModelsRequest*,
                                       v1::ListModelsResponse*) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext*, const v1::GetModelRequest*,
                                     v1::ModelInfo*) override;
  grpc::ServerUnaryReactor* LoadVersion(grpc::CallbackServerContext*,
                                        const v1::LoadVersionRequest*, v1::VersionInfo*) override;
  grpc::ServerUnaryReactor* UnloadVersion(grpc::CallbackServerContext*,
                                          const v1::UnloadVersionRequest*,
                                          v1::VersionInfo*) override;
  grpc::ServerUnaryReactor* DeleteVersion(grpc::CallbackServerContext*,
                                          const v1::DeleteVersionRequest*,
                                          v1::DeleteVersionResponse*) override;
  grpc::ServerUnaryReactor* SetAlias(grpc::CallbackServerContext*, const v1::SetAliasRequest*,
                                     v1::ModelInfo*) override;
  grpc::ServerUnaryReactor* RemoveAlias(grpc::CallbackServerContext*,
                                        const v1::RemoveAliasRequest*, v1::ModelInfo*) override;
  grpc::ServerWriteReactor<v1::ExportChunk>* ExportVersion(
      grpc::CallbackServerContext*, const v1::ExportVersionRequest*) override;
  grpc::ServerReadReactor<v1::ImportChunk>* ImportVersion(grpc::CallbackServerContext*,
                                                          v1::VersionInfo*) override;

 private:
  absl::Status FillModelInfo(const std::string& name, v1::ModelInfo* info) const;
  absl::Status FillVersionInfo(const std::string& name, int64_t version, v1::VersionInfo* info) const;

  ModelManager* manager_;
  const TokenAuth* auth_;
  int64_t max_upload_bytes_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_MODELS_SERVICE_H_
