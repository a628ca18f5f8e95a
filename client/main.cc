// anorand: the command-line client. `anorand --help` lists the commands;
// `anorand COMMAND --help` says everything about one. Exit codes: 0 ok,
// 1 refused or failed, 2 usage, 3 server unreachable (docs/CLI.md).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "client/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: anorand COMMAND [flags]   (anorand COMMAND --help for details)\n"
    "\n"
    "Local, no server:\n"
    "  fit          train a model on a data file and write the model file\n"
    "  eval         run the ADBench protocol on a labelled .npz (AUC-ROC, AUC-PR)\n"
    "  score-local  score a data file with a model file\n"
    "  demo-data    write seeded synthetic data with a few percent of anomalies\n"
    "\n"
    "Against a server (--address, default localhost:50051):\n"
    "  health       exit 0 only when the server is SERVING\n"
    "  score        stream records through the server, one result line per record\n"
    "  models       list|show|load|unload|delete|alias|unalias|export|import|\n"
    "               shadow|unshadow|compare|drift\n"
    "  train        submit a training job (upload or server path), --wait to follow it\n"
    "  jobs         list|show|watch|cancel training jobs\n"
    "  retrain      set|status|clear|history: retrain a model on its recent traffic when\n"
    "               its scores drift, shadow the new version, promote it if it compares well\n"
    "  feedback     add|list|export: operators' labels on records, for training with\n"
    "               train --include-feedback\n"
    "\n"
    "Exit codes: 0 ok, 1 refused or failed, 2 usage error, 3 server unreachable.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace anorand::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string command = argv[1];
  const Argv args(argv + 2, argv + argc);
  if (command == "fit") return RunFit(args);
  if (command == "eval") return RunEval(args);
  if (command == "score-local") return RunScoreLocal(args);
  if (command == "demo-data") return RunDemoData(args);
  if (command == "health") return RunHealth(args);
  if (command == "score") return RunScore(args);
  if (command == "models") return RunModels(args);
  if (command == "train") return RunTrain(args);
  if (command == "jobs") return RunJobs(args);
  if (command == "retrain") return RunRetrain(args);
  if (command == "feedback") return RunFeedback(args);
  std::fprintf(stderr, "anorand: unknown command '%s'\n%s", command.c_str(), kUsage);
  return kExitUsage;
}
