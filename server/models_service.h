// File: models_service.h
//
// anorand.v1.Models on the gRPC callback API: a thin edge over
// ModelManager (validate, call, convert the status). Export streams the
// stored file in 1 MiB chunks; Import collects chunks up to a byte limit,
// then validates and publishes exactly like a load from disk. Every call
// passes the bearer-token check first (auth.h), before its bytes are
// parsed; a malformed message (a unary request, or ImportChunk i) is
// INVALID_ARGUMENT naming it.
#ifndef ANORAND_SERVER_MODELS_SERVICE_H_
#define ANORAND_SERVER_MODELS_SERVICE_H_

#include "anorand/v1/models.grpc.pb.h"
#include "server/auth.h"
#include "server/model_manager.h"
#include "server/retrain_loop.h"
#include "server/shadow.h"
#include "server/upload_limits.h"
#include "server/work_queue.h"

namespace anorand {

// Every method takes its request as bytes and parses it itself
// (raw_call.h): a malformed message is INVALID_ARGUMENT.
using RawModelsService = v1::Models::WithRawCallbackMethod_ListModels<
    v1::Models::WithRawCallbackMethod_GetModel<v1::Models::WithRawCallbackMethod_LoadVersion<
        v1::Models::WithRawCallbackMethod_UnloadVersion<
            v1::Models::WithRawCallbackMethod_DeleteVersion<
                v1::Models::WithRawCallbackMethod_SetAlias<
                    v1::Models::WithRawCallbackMethod_RemoveAlias<
                        v1::Models::WithRawCallbackMethod_ExportVersion<
                            v1::Models::WithRawCallbackMethod_ImportVersion<
                                v1::Models::WithRawCallbackMethod_SetShadow<
                                    v1::Models::WithRawCallbackMethod_ClearShadow<
                                        v1::Models::WithRawCallbackMethod_CompareShadow<
                                            v1::Models::WithRawCallbackMethod_GetDrift<
                                                v1::Models::WithRawCallbackMethod_SetRetrainPolicy<
                                                    v1::Models::WithRawCallbackMethod_ClearRetrainPolicy<
                                                        v1::Models::WithRawCallbackMethod_GetModelHistory<
                                                            v1::Models::Service>>>>>>>>>>>>>>>>;

class ModelsService final : public RawModelsService {
 public:
  // `work` (the server's intake queue, shared with Training and Feedback)
  // runs the calls that compile or read a whole file (each ImportVersion's
  // validation, compile and write; LoadVersion; ExportVersion's read;
  // GetModelHistory), and `admin` the calls that write the
  // store (UnloadVersion, DeleteVersion, SetAlias, RemoveAlias, SetShadow,
  // ClearShadow, SetRetrainPolicy, ClearRetrainPolicy), off the callback
  // threads and never behind a compile or an upload's parse; both must
  // outlive the calls. CompareShadow reads `shadow` (null: no comparisons);
  // the retrain calls and ModelInfo.retrain use `retrain` (null: the retrain
  // calls are FAILED_PRECONDITION).
  ModelsService(ModelManager* manager, const TokenAuth* auth, UploadLimits upload,
                WorkQueue* work, WorkQueue* admin, const ShadowScorer* shadow = nullptr,
                RetrainLoop* retrain = nullptr)
      : manager_(manager),
        auth_(auth),
        upload_(std::move(upload)),
        work_(work),
        admin_(admin),
        shadow_(shadow),
        retrain_(retrain) {}

  using Bytes = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* LoadVersion(grpc::CallbackServerContext*, const Bytes*,
                                        Bytes*) override;
  grpc::ServerUnaryReactor* UnloadVersion(grpc::CallbackServerContext*, const Bytes*,
                                          Bytes*) override;
  grpc::ServerUnaryReactor* DeleteVersion(grpc::CallbackServerContext*, const Bytes*,
                                          Bytes*) override;
  grpc::ServerUnaryReactor* SetAlias(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* RemoveAlias(grpc::CallbackServerContext*, const Bytes*,
                                        Bytes*) override;
  grpc::ServerWriteReactor<Bytes>* ExportVersion(grpc::CallbackServerContext*,
                                                 const Bytes*) override;
  grpc::ServerReadReactor<Bytes>* ImportVersion(grpc::CallbackServerContext*, Bytes*) override;
  grpc::ServerUnaryReactor* SetShadow(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* ClearShadow(grpc::CallbackServerContext*, const Bytes*,
                                        Bytes*) override;
  grpc::ServerUnaryReactor* CompareShadow(grpc::CallbackServerContext*, const Bytes*,
                                          Bytes*) override;
  grpc::ServerUnaryReactor* GetDrift(grpc::CallbackServerContext*, const Bytes*, Bytes*) override;
  grpc::ServerUnaryReactor* SetRetrainPolicy(grpc::CallbackServerContext*, const Bytes*,
                                             Bytes*) override;
  grpc::ServerUnaryReactor* ClearRetrainPolicy(grpc::CallbackServerContext*, const Bytes*,
                                               Bytes*) override;
  grpc::ServerUnaryReactor* GetModelHistory(grpc::CallbackServerContext*, const Bytes*,
                                            Bytes*) override;

 private:
  absl::Status FillModelInfo(const std::string& name, v1::ModelInfo* info) const;
  absl::Status FillVersionInfo(const std::string& name, int64_t version, v1::VersionInfo* info) const;
  // ModelInfo.retrain from the loop's last check.
  void FillRetrain(const std::string& name, v1::ModelInfo* info) const;

  ModelManager* manager_;
  const TokenAuth* auth_;
  const UploadLimits upload_;
  WorkQueue* work_;
  WorkQueue* admin_;
  const ShadowScorer* shadow_;
  RetrainLoop* retrain_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_MODELS_SERVICE_H_
