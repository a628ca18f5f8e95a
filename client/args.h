// File: args.h
//
// Command-line parsing for the `anorand` tool: `anorand COMMAND [SUB]
// [--flag=value | --flag value | --switch] ...`. Each command declares the
// flags it takes; anything else is a usage error (exit code 2) with a
// message that names the flag. Flags may repeat (--param a=1 --param b=2).
#ifndef ANORAND_CLIENT_ARGS_H_
#define ANORAND_CLIENT_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace anorand::cli {

struct FlagSpec {
  std::string name;  // without dashes
  bool takes_value = true;
  std::string help;
};

class Args {
 public:
  // Parses argv[first..] against `specs`.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::vector<FlagSpec>& specs);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// "  --name VALUE   help" lines for a command's --help.
std::string FlagHelp(const std::vector<FlagSpec>& specs);

// True when the arguments ask for --help (or -h).
bool WantsHelp(const std::vector<std::string>& args);

// A parsed command line and the command's full usage text.
struct Command {
  Args args;
  std::string usage;  // usage_head, then FlagHelp(specs)
};

// The preamble every command shares. The usage text is `usage_head`
// followed by FlagHelp(specs). With --help (or -h) prints it on stdout and
// sets *exit to 0; otherwise parses `argv` against `specs`, and a bad flag
// prints the message and the usage on stderr and sets *exit to 2. In both
// cases returns nullopt: the command returns *exit.
std::optional<Command> ParseCommand(const std::vector<std::string>& argv,
                                    const std::vector<FlagSpec>& specs,
                                    const std::string& usage_head, int* exit);

// Prints "anorand: MSG" and the command's usage on stderr; returns the
// usage exit code (2).
int UsageError(const std::string& msg, const std::string& usage);

// Prints "anorand: MSG" (the status message) on stderr; returns the exit
// code of a refused or failed command (1).
int Fail(const absl::Status& status);

}  // namespace anorand::cli

#endif  // ANORAND_CLIENT_ARGS_H_
