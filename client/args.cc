#include "client/args.h"

#include <cmath>
#include <cstdio>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace anorand::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::vector<FlagSpec>& specs) {
  Args out;
  bool only_positional = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positional || a.size() < 2 || a.compare(0, 2, "--") != 0 || a == "-") {
      out.positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs)
      if (s.name == name) spec = &s;
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help for this command's flags)"));
    }
    if (spec->takes_value && !inline_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = argv[++i];
    } else if (!spec->takes_value && inline_value) {
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " takes no value"));
      }
      if (value == "false") continue;
    }
    out.values_.emplace(name, value);
  }
  return out;
}

std::string Args::Get(const std::string& name, const std::string& fallback) const {
  auto range = values_.equal_range(name);
  if (range.first == range.second) return fallback;
  return std::prev(range.second)->second;  // the last one wins
}

std::vector<std::string> Args::GetAll(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

absl::StatusOr<int64_t> Args::GetInt(const std::string& name, int64_t fallback) const {
  if (!Has(name)) return fallback;
  int64_t v;
  if (!absl::SimpleAtoi(Get(name), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be an integer, got '", Get(name), "'"));
  }
  return v;
}

absl::StatusOr<double> Args::GetDouble(const std::string& name, double fallback) const {
  if (!Has(name)) return fallback;
  double v;
  if (!absl::SimpleAtod(Get(name), &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be a number, got '", Get(name), "'"));
  }
  return v;
}

std::string FlagHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    const std::string left = absl::StrCat("--", s.name, s.takes_value ? " VALUE" : "");
    absl::StrAppendFormat(&out, "  %-26s %s\n", left, s.help);
  }
  return out;
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const auto& s : args)
    if (s == "--help" || s == "-h") return true;
  return false;
}

std::optional<Command> ParseCommand(const std::vector<std::string>& argv,
                                    const std::vector<FlagSpec>& specs,
                                    const std::string& usage_head, int* exit) {
  const std::string usage = usage_head + FlagHelp(specs);
  if (WantsHelp(argv)) {
    std::fputs(usage.c_str(), stdout);
    *exit = 0;
    return std::nullopt;
  }
  auto a = Args::Parse(argv, specs);
  if (!a.ok()) {
    *exit = UsageError(std::string(a.status().message()), usage);
    return std::nullopt;
  }
  return Command{*std::move(a), usage};
}

int UsageError(const std::string& msg, const std::string& usage) {
  std::fprintf(stderr, "anorand: %s\n%s", msg.c_str(), usage.c_str());
  return 2;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "anorand: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace anorand::cli
