#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/test_util.h"

namespace anorand::test_support {

Subprocess::Subprocess(const std::vector<std::string>& argv, const std::string& out_path,
                       const std::string& err_path, const std::string& stdin_path) {
  // Everything the child needs is built before fork: the test process runs
  // threads (a gRPC server, ASan's), and a child of a threaded process may
  // call only async-signal-safe functions until exec. An allocation there
  // can wait forever on a lock another thread held at the fork.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* in_path = stdin_path.c_str();
  const char* out_file = out_path.c_str();
  const char* err_file = err_path.c_str();
  pid_ = fork();
  if (pid_ == 0) {
    int in = open(in_path, O_RDONLY);
    int out = open(out_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(args[0], args.data());
    _exit(127);
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !done_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !done_) kill(pid_, sig);
}

int Subprocess::Wait(double timeout_seconds) {
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      done_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (std::chrono::steady_clock::now() > end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int RunCommand(const std::vector<std::string>& argv, std::string* out, std::string* err,
               double timeout_seconds, const std::string& stdin_path) {
  TempDir dir;
  Subprocess p(argv, dir.File("out"), dir.File("err"), stdin_path);
  const int code = p.Wait(timeout_seconds);
  if (out) *out = ReadWholeFile(dir.File("out"));
  if (err) *err = ReadWholeFile(dir.File("err"));
  return code;
}

std::string ServerBinary() { return std::string(ANORAND_BIN_DIR) + "/server/anorand-server"; }
std::string ClientBinary() { return std::string(ANORAND_BIN_DIR) + "/client/anorand"; }

}  // namespace anorand::test_support
