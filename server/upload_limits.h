// File: upload_limits.h
//
// What bounds a client-streamed upload (SubmitJob's data chunks,
// ImportVersion's model file), shared by the services that read one.
#ifndef ANORAND_SERVER_UPLOAD_LIMITS_H_
#define ANORAND_SERVER_UPLOAD_LIMITS_H_

#include <cstdint>
#include <functional>

namespace anorand {

struct UploadLimits {
  int64_t max_bytes = int64_t{1} << 30;  // --max_upload_bytes
  // Called on the gRPC callback thread after each message of an upload is
  // taken, with the number of messages the call has taken so far. It must
  // return at once. Empty in anorand-server; tests wait here until the
  // server has read what they sent.
  std::function<void(int64_t messages)> after_message;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_UPLOAD_LIMITS_H_
