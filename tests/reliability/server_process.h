// File: server_process.h
//
// The reliability tests' harness: the real anorand-server binary as a child
// process on a free loopback port (port 0, read back from its "listening on
// port" line) over a model folder the caller owns, so a test can SIGKILL it
// and start it again on the same files; the Models, Scoring and Training
// calls the tests make, each with a deadline; and the process's resident
// memory and open file descriptors from /proc.
#ifndef ANORAND_TESTS_RELIABILITY_SERVER_PROCESS_H_
#define ANORAND_TESTS_RELIABILITY_SERVER_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "model/dataset.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {

class ServerProcess {
 public:
  // Starts anorand-server (the build's, or $ANORAND_SERVER_BINARY) with
  // --model_dir=model_dir, metrics off, and `extra` flags; its stdout/stderr
  // go to <log_prefix>.out/.err. Waits up to startup_seconds for the port:
  // started() says whether it came.
  ServerProcess(const std::string& model_dir, const std::string& log_prefix,
                const std::vector<std::string>& extra = {}, double startup_seconds = 120);

  bool started() const { return port_ > 0; }
  int port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  // A new channel of its own (its own TCP connection).
  std::shared_ptr<grpc::Channel> NewChannel() const;
  // SIGKILL, then reap: returns the exit code (128 + 9 when the kill did it).
  int Kill();
  // SIGTERM, then reap within timeout_seconds (-1 if it did not exit).
  int Terminate(double timeout_seconds);
  // The server's stderr so far, and its exit code if it exited before
  // printing its port, for failure messages.
  std::string Log() const;

 private:
  std::string log_prefix_;
  std::unique_ptr<Subprocess> proc_;
  int port_ = 0;
  int early_exit_ = -1;
};

// A client context with a deadline and, when token is not empty, the
// bearer token.
void Prepare(grpc::ClientContext* ctx, double deadline_seconds, const std::string& token = "");

// ImportVersion of `bytes` as the next version of `model`, moving `alias`
// (when not empty) to it; *version is the published number.
grpc::Status ImportModel(v1::Models::Stub* stub, const std::string& token, const std::string& model,
                         const std::string& bytes, const std::string& alias, int64_t* version);
// ExportVersion of one version: the stored file's bytes.
grpc::Status ExportModel(v1::Models::Stub* stub, const std::string& token, const std::string& model,
                         int64_t version, std::string* bytes);
// SubmitJob with `data` uploaded as DENSE records; a few small epochs.
grpc::Status SubmitDenseJob(v1::Training::Stub* stub, const std::string& token,
                            const std::string& model, const Dataset& data, int epochs,
                            const std::string& alias, v1::Job* job);
// A Score request of `rows` DemoData records of `d` features; version 0
// and alias "" select the latest READY version.
v1::ScoreRequest ScoreRequestFor(const std::string& model, int64_t version,
                                 const std::string& alias, int64_t rows, int d, uint64_t seed);

// VmRSS of a live process in KiB (-1 if unreadable), and its open fds.
int64_t ResidentKiB(pid_t pid);
int OpenFds(pid_t pid);

// An environment variable as a positive number, or `fallback`.
int64_t EnvInt(const char* name, int64_t fallback);

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_RELIABILITY_SERVER_PROCESS_H_
