// File: raw_stub.h
//
// A client that sends arbitrary bytes as request messages of any method,
// over a real channel: what a buggy or hostile client can put on the wire
// and a generated stub never would. Responses come back as bytes too.
#ifndef ANORAND_TESTS_SERVER_RAW_STUB_H_
#define ANORAND_TESTS_SERVER_RAW_STUB_H_

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/sync_stream.h"

namespace anorand::test_support {

inline grpc::ByteBuffer ToBytes(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string FromBytes(const grpc::ByteBuffer& b) {
  grpc::Slice slice;
  if (!b.DumpToSingleSlice(&slice).ok()) return "";
  return std::string(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

// `12 ff ff ff ff 0f`: field 2, length-delimited, with a length of 4 GiB:
// not a valid message of any type.
inline std::string MalformedMessage() { return std::string("\x12\xff\xff\xff\xff\x0f", 6); }

class RawStub {
 public:
  explicit RawStub(std::shared_ptr<grpc::Channel> channel) : channel_(std::move(channel)) {}

  // `method` is "/anorand.v1.Scoring/Score" and the like.
  grpc::Status Unary(grpc::ClientContext* ctx, const std::string& method,
                     const std::string& request, std::string* response = nullptr) {
    grpc::internal::RpcMethod rpc(method.c_str(), grpc::internal::RpcMethod::NORMAL_RPC);
    grpc::ByteBuffer out;
    grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), rpc, ctx, ToBytes(request), &out);
    if (response) *response = FromBytes(out);
    return s;
  }

  // A bidirectional stream. `method` must outlive the stream.
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> Bidi(
      grpc::ClientContext* ctx, const char* method) {
    return std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(method, grpc::internal::RpcMethod::BIDI_STREAMING), ctx));
  }

  // A client stream; the response lands in *response at Finish.
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> Upload(grpc::ClientContext* ctx,
                                                              const char* method,
                                                              grpc::ByteBuffer* response) {
    return std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>>(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(method, grpc::internal::RpcMethod::CLIENT_STREAMING), ctx,
            response));
  }

  // A server stream with one request; read until Read returns false.
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> Download(grpc::ClientContext* ctx,
                                                                const char* method,
                                                                const std::string& request) {
    return std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>>(
        grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(method, grpc::internal::RpcMethod::SERVER_STREAMING), ctx,
            ToBytes(request)));
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_SERVER_RAW_STUB_H_
