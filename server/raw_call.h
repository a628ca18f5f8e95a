// File: raw_call.h
//
// The bytes-to-message edge of every RPC. The services receive requests as
// bytes (the generated WithRawCallbackMethod_ mixins) and parse them here,
// because gRPC's own parsing hides a malformed message: to a streaming
// reactor it looks exactly like the client's half-close, so the rest of the
// stream would be dropped with status OK, and a unary call is finished by
// gRPC with UNIMPLEMENTED and no message. Here a message that does not parse
// ends the call with INVALID_ARGUMENT naming the message type and, in a
// stream, its index (counting from 0).
//
// Parsing and serialising go through grpc::SerializationTraits, the code
// gRPC's typed handlers run, so the bytes are read in place (no extra
// copy). Everything here is stateless and thread-safe; UnaryCall is owned
// by its call until Reply.
//
// Usage (a synchronous unary handler):
//   return ServeUnary<v1::GetJobRequest, v1::Job>(
//       ctx, request_bytes, response_bytes,
//       [&](const v1::GetJobRequest& req, v1::Job* resp) -> absl::Status { ... });
#ifndef ANORAND_SERVER_RAW_CALL_H_
#define ANORAND_SERVER_RAW_CALL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "server/status_util.h"
#include "server/work_queue.h"

namespace anorand {

// Parses `*bytes` (consumed) into `*message`. `index` is the message's
// position in a stream, or -1 for a unary call's only request.
// INVALID_ARGUMENT when the bytes are not a valid message of type M.
template <typename M>
grpc::Status ParseRequest(grpc::ByteBuffer* bytes, int64_t index, M* message) {
  message->Clear();
  grpc::Status s = grpc::SerializationTraits<M>::Deserialize(bytes, message);
  if (s.ok()) return s;
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat(index < 0 ? std::string("the request") : absl::StrCat("request ", index),
                   " is not a valid ", M::descriptor()->full_name(),
                   " message: its bytes do not parse (truncated, or a field of the wrong "
                   "wire type); send a message serialized from that type"));
}

// Serialises `message` into `*bytes` (replacing what it held).
template <typename M>
grpc::Status SerializeResponse(const M& message, grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  bytes->Clear();
  grpc::Status s = grpc::SerializationTraits<M>::Serialize(message, bytes, &own_buffer);
  if (s.ok()) return s;
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      absl::StrCat("cannot serialize the ", M::descriptor()->full_name(),
                                   " response: ", s.error_message()));
}

// One unary call whose answer may come later (from another thread): owns
// the parsed request and the response until Reply, which deletes it.
template <typename Request, typename Response>
class UnaryCall {
 public:
  // Parses `*request_bytes` for the call answered by `reactor` (the
  // context's DefaultReactor, taken once: a second DefaultReactor() call
  // resets it). When the bytes do not parse, the call is finished with
  // INVALID_ARGUMENT and null is returned.
  static UnaryCall* Start(grpc::ServerUnaryReactor* reactor, const grpc::ByteBuffer* request_bytes,
                          grpc::ByteBuffer* response_bytes) {
    auto* call = new UnaryCall(reactor, response_bytes);
    grpc::ByteBuffer bytes(*request_bytes);  // shares the slices, copies no data
    if (grpc::Status s = ParseRequest(&bytes, -1, &call->request_); !s.ok()) {
      call->Reply(s);
      return nullptr;
    }
    return call;
  }

  const Request& request() const { return request_; }
  Response* response() { return &response_; }

  // Serialises the response when `status` is OK, finishes the call and
  // deletes this.
  void Reply(grpc::Status status) {
    if (status.ok()) status = SerializeResponse(response_, response_bytes_);
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(status);
  }

 private:
  UnaryCall(grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response_bytes)
      : reactor_(reactor), response_bytes_(response_bytes) {}

  grpc::ServerUnaryReactor* reactor_;
  grpc::ByteBuffer* response_bytes_;
  Request request_;
  Response response_;
};

inline grpc::Status ToGrpc(const grpc::Status& s) { return s; }
inline grpc::Status ToGrpc(const absl::Status& s) { return ToGrpcStatus(s); }

// A unary call answered on the reaction thread: parse, then
// body(const Request&, Response*) returning absl::Status or grpc::Status,
// then serialise. `precheck` (the token check) runs before the bytes are
// looked at; an error there finishes the call with that status.
template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* ctx,
                                     const grpc::ByteBuffer* request_bytes,
                                     grpc::ByteBuffer* response_bytes, Body&& body,
                                     const grpc::Status& precheck = grpc::Status::OK) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status s = precheck;
  Request request;
  Response response;
  if (s.ok()) {
    grpc::ByteBuffer bytes(*request_bytes);  // shares the slices, copies no data
    s = ParseRequest(&bytes, -1, &request);
  }
  if (s.ok()) s = ToGrpc(body(static_cast<const Request&>(request), &response));
  if (s.ok()) s = SerializeResponse(response, response_bytes);
  reactor->Finish(s);
  return reactor;
}

// ServeUnary for calls that write the store or compile: the request is
// parsed on the calling (callback) thread, then `body`, the response's
// serialisation and Finish run on one of `work`'s threads. `body` is
// copied there: it must capture nothing of the caller's stack.
template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* ServeUnaryOn(WorkQueue* work, grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* request_bytes,
                                       grpc::ByteBuffer* response_bytes, Body body,
                                       const grpc::Status& precheck = grpc::Status::OK) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status s = precheck;
  auto request = std::make_shared<Request>();
  if (s.ok()) {
    grpc::ByteBuffer bytes(*request_bytes);
    s = ParseRequest(&bytes, -1, request.get());
  }
  if (!s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  work->Run([reactor, request, response_bytes, body = std::move(body)] {
    Response response;
    grpc::Status done = ToGrpc(body(static_cast<const Request&>(*request), &response));
    if (done.ok()) done = SerializeResponse(response, response_bytes);
    reactor->Finish(done);
  });
  return reactor;
}

}  // namespace anorand

#endif  // ANORAND_SERVER_RAW_CALL_H_
