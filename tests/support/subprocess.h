// File: subprocess.h
//
// Runs a program as a child process for tests: argv in, stdout/stderr
// captured to files, the pid for signals, the exit status out.
#ifndef ANORAND_TESTS_SUPPORT_SUBPROCESS_H_
#define ANORAND_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace anorand::test_support {

class Subprocess {
 public:
  // Starts argv[0] with stdout to out_path and stderr to err_path.
  Subprocess(const std::vector<std::string>& argv, const std::string& out_path,
             const std::string& err_path, const std::string& stdin_path = "/dev/null");
  ~Subprocess();  // kills the child if still running

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to timeout_seconds; returns the exit code, 128+signal if
  // killed by a signal, or -1 on timeout.
  int Wait(double timeout_seconds);

 private:
  pid_t pid_ = -1;
  bool done_ = false;
};

// Runs to completion (up to timeout_seconds); returns the exit code and
// fills *out and *err.
int RunCommand(const std::vector<std::string>& argv, std::string* out, std::string* err,
               double timeout_seconds = 120, const std::string& stdin_path = "/dev/null");

std::string ReadWholeFile(const std::string& path);

// The built binaries (tests run from the build tree).
std::string ServerBinary();
std::string ClientBinary();

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_SUPPORT_SUBPROCESS_H_
