// File: commands.h
//
// The `anorand` subcommands. Each takes the arguments after its name and
// returns the process exit code:
//   0 success; 1 the server (or the local model code) refused or failed;
//   2 usage error; 3 the server could not be reached (or the deadline
//   passed).
#ifndef ANORAND_CLIENT_COMMANDS_H_
#define ANORAND_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

namespace anorand::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

using Argv = std::vector<std::string>;

// Local (no server).
int RunFit(const Argv& args);
int RunEval(const Argv& args);
int RunScoreLocal(const Argv& args);
int RunDemoData(const Argv& args);

// Against a server.
int RunHealth(const Argv& args);
int RunScore(const Argv& args);
int RunModels(const Argv& args);
int RunTrain(const Argv& args);
int RunJobs(const Argv& args);
int RunRetrain(const Argv& args);
int RunFeedback(const Argv& args);

}  // namespace anorand::cli

#endif  // ANORAND_CLIENT_COMMANDS_H_
