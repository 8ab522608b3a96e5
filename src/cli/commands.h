// What every subcommand shares: global flags, registries, suite lookup, error reporting.
#ifndef PLUMB_CLI_COMMANDS_H_
#define PLUMB_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/cli.h"
#include "plumb/grader.h"
#include "plumb/suite.h"

namespace plumb::cli {

struct Context {
  Context();

  std::string db_path = "results/plumb.db";
  std::vector<std::string> extra_suite_dirs;
  bool verbose = false;

  BackendRegistry backends{"backend kind"};
  GraderRegistry graders{"grader kind"};
  SuiteKindRegistry kinds{"suite kind"};

  // ./benchmarks when present, else the source tree's benchmarks/, then --suites-dir folders.
  std::vector<std::filesystem::path> SuiteDirs() const;
  // Loads a suite by id, or from a folder or suite.yaml path.
  Result<Suite> LoadSuiteByName(const std::string& name) const;
};

// Set by SIGINT; the runner polls it.
std::atomic<bool>& Interrupted();

// Prints "plumb: error: <message>" and returns the exit code for `status`: 2 for bad input
// (invalid argument, not found, missing credentials), 1 otherwise.
int ReportError(const Status& status);

// Each subcommand adds itself to `app` and returns the action to run when it is chosen.
using Action = std::function<int()>;
Action SetupRun(CLI::App& app, Context& ctx);
Action SetupShow(CLI::App& app, Context& ctx);
Action SetupLeaderboard(CLI::App& app, Context& ctx);
Action SetupList(CLI::App& app, Context& ctx);

}  // namespace plumb::cli

#endif  // PLUMB_CLI_COMMANDS_H_
