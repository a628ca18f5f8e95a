// File: queued_writer.h
//
// A server-streaming reactor that does its slow first step on a WorkQueue
// (reading a file of the store, never on a gRPC callback thread), then
// streams the messages it yields, one write in flight. `prepare` runs on
// `work` and returns either an error, which ends the call with it, or a
// `next` function; each call of `next` fills the next message and returns
// false when there is none left (the first call should fill one, so a
// client always gets at least one message). A write that fails (the
// client went away) ends the call CANCELLED. Owned by its call; deletes
// itself in OnDone.
#ifndef ANORAND_SERVER_QUEUED_WRITER_H_
#define ANORAND_SERVER_QUEUED_WRITER_H_

#include <functional>
#include <utility>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "server/raw_call.h"
#include "server/status_util.h"
#include "server/work_queue.h"

namespace anorand {

template <typename Message>
class QueuedWriter final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  using Next = std::function<bool(Message*)>;
  using Prepare = std::function<absl::StatusOr<Next>()>;

  QueuedWriter(WorkQueue* work, Prepare prepare) {
    work->Run([this, prepare = std::move(prepare)] {
      absl::StatusOr<Next> next = prepare();
      if (!next.ok()) {
        Finish(ToGrpcStatus(next.status()));
        return;
      }
      next_ = *std::move(next);
      WriteNext();
    });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "export cancelled by the client"));
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    message_.Clear();
    if (!next_(&message_)) {
      Finish(grpc::Status::OK);
      return;
    }
    if (grpc::Status s = SerializeResponse(message_, &bytes_); !s.ok()) {
      Finish(s);
      return;
    }
    StartWrite(&bytes_);
  }

  Next next_;
  Message message_;
  grpc::ByteBuffer bytes_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_QUEUED_WRITER_H_
