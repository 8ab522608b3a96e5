// What every subcommand shares: global flags, registries, suite lookup, error reporting.
#ifndef PLUMB_CLI_COMMANDS_H_
#define PLUMB_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/cli.h"
#include "plumb/config.h"
#include "plumb/grader.h"
#include "plumb/judge.h"
#include "plumb/runner.h"
#include "plumb/store.h"
#include "plumb/suite.h"

namespace plumb::cli {

struct Context {
  Context();

  std::string db_path = "results/plumb.db";
  std::vector<std::string> extra_suite_dirs;
  std::vector<std::string> extra_grader_dirs;
  std::string config_path;  // --config; "" means ./plumb.yaml when present
  bool verbose = false;
  Config config;  // loaded by LoadConfigFile()

  BackendRegistry backends{"backend kind"};
  GraderRegistry graders{"grader kind"};
  SuiteKindRegistry kinds{"suite kind"};

  // ./benchmarks when present, else the source tree's benchmarks/, then --suites-dir folders.
  std::vector<std::filesystem::path> SuiteDirs() const;
  // The same for graders/ and --graders-dir.
  std::vector<std::filesystem::path> GraderDirs() const;
  // Judge graders, found in GraderDirs() (created on first use, after flags are parsed).
  const JudgeLibrary& Judges() const;
  // Loads a suite by id, or from a folder or suite.yaml path.
  // `overlay`: manifest keys set on top of suite.yaml (see LoadSuite).
  Result<Suite> LoadSuiteByName(const std::string& name, const Json* overlay = nullptr) const;
  // The suite a stored run used: by id, else from the file the run recorded.
  Result<Suite> LoadSuiteOfRun(const RunRecord& run) const;
  // Reads --config, or ./plumb.yaml when it exists.
  Status LoadConfigFile();
  // The named model `spec` refers to (plumb.yaml), or null for a plain KIND/MODEL spec.
  const ModelAlias* Alias(const std::string& spec) const;
  // The KIND/MODEL spec behind a name or spec.
  std::string ResolveSpec(const std::string& spec) const;

 private:
  mutable std::unique_ptr<JudgeLibrary> judges_;
};

// Flags shared by the commands that call models: where judges and models live, retries.
struct ModelFlags {
  std::vector<std::string> judges;
  std::string judge_base_url;
  std::string judge_api_key_env;
  std::optional<int> judge_concurrency;
  std::vector<std::string> base_urls;  // --base-url, repeatable (a pool)
  std::string api_key_env;
  std::vector<std::string> backend_options;
  int concurrency = kDefaultConcurrency;
  double timeout_s = static_cast<double>(kDefaultRequestTimeout.count()) / 1000;
  int max_retries = kDefaultMaxRetries;
  int retry_base_ms = static_cast<int>(kDefaultRetryBase.count());
  double max_wait_s = static_cast<double>(kDefaultMaxWait.count());
  std::optional<double> rpm;
  std::optional<double> tpm;
  uint64_t seed = 1;
  std::string cache = "auto";
  std::optional<double> max_cost;
  // Batch mode (--batch, or batch: true for a named model or judge in plumb.yaml).
  bool batch = false;
  double batch_poll_s = 30;
  int64_t batch_max_requests = 0;  // 0: the provider's limit
  int64_t batch_max_bytes = 0;
  std::string batch_file_only;
  std::string batch_results;  // resume --batch-results FILE
  bool cancel_batches = false;  // resume --cancel-batches

  // Fills options.batch and options.batch_judges: the model batches with --batch or its alias's
  // batch: true, each judge likewise when its backend has a batch API. kInvalidArgument when
  // --batch names a model without one.
  Status ApplyBatch(const Context& ctx, const std::string& model, const Backend& backend,
                    const std::vector<JudgeModel>& judge_models, RunOptions& options) const;

  // Fills the run's prices, budget and (for a named model) default parameters; an unknown
  // price with --max-cost is an error.
  Status SetPrices(const Context& ctx, const std::string& model, RunOptions& options) const;

  CachePolicy Cache() const;
  // Adds --judge, --judge-base-url, --judge-api-key-env, --judge-concurrency (and, with
  // `model_flags`, --base-url, --api-key-env, --backend-option), --concurrency, --timeout,
  // --max-retries, --retry-base-ms.
  void Add(CLI::App& app, bool model_flags);
  std::unique_ptr<HttpScheduler> MakeScheduler() const;
  // Creates the backend of `spec` (model flags) or of a judge (judge flags, "judge" lane).
  Result<std::unique_ptr<Backend>> MakeBackend(const Context& ctx, HttpScheduler* scheduler,
                                               const std::string& spec, bool judge) const;
  // Creates every --judge backend; `owned` keeps them alive.
  Result<std::vector<JudgeModel>> MakeJudges(const Context& ctx, HttpScheduler* scheduler,
                                             std::vector<std::unique_ptr<Backend>>& owned) const;
  Json Settings() const;  // recorded with runs (no secrets)
  // Fills what was not given on the command line from a run's recorded settings (base URLs,
  // key variables, backend options, judges, concurrency, rate limits, timeouts, retries, cache):
  // how resume and rescore reach the same servers the same way.
  void InheritFrom(const RunRecord& run);
  // Whether `flag` ("--concurrency") was given on the command line.
  bool Given(const std::string& flag) const;

 private:
  std::map<std::string, const CLI::Option*> options_;  // filled by Add()
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
Action SetupRescore(CLI::App& app, Context& ctx);
Action SetupResume(CLI::App& app, Context& ctx);
Action SetupWork(CLI::App& app, Context& ctx);

// Continues run `run_id` in `store` (plumb resume, run --resume, run --retry-errors): with
// `retry_errors`, its errored samples are sent again too. Flags not given come from the run.
// `worker`: as one of the run's cooperating workers (plumb work), without its lease.
int ContinueRun(const Context& ctx, Store& store, int64_t run_id, ModelFlags flags,
                bool retry_errors, ProgressMode progress, double max_judge_error_rate,
                bool worker = false);
// The stored replies of run `run_id`, as a backend that answers a re-grading (plumb rescore,
// and resuming a rescore) without calling the model.
Result<std::unique_ptr<Backend>> StoredRepliesOf(const Store& store, int64_t run_id);
Action SetupJudgeCheck(CLI::App& app, Context& ctx);
Action SetupCompare(CLI::App& app, Context& ctx);
Action SetupGate(CLI::App& app, Context& ctx);
Action SetupTag(CLI::App& app, Context& ctx);
Action SetupSayDo(CLI::App& app, Context& ctx);
Action SetupBatches(CLI::App& app, Context& ctx);
Action SetupDb(CLI::App& app, Context& ctx);
Action SetupReport(CLI::App& app, Context& ctx);
Action SetupServe(CLI::App& app, Context& ctx);

ProgressMode ParseProgress(const std::string& s);

// Writes `text` to `path` (creating its folder) through a temporary file and a rename, so a
// reader never sees half a file and a failure (a full disk) leaves nothing behind; with
// `append`, adds it to the end and on failure cuts the file back to what it was.
Status WriteOutputFile(const std::string& path, const std::string& text, bool append = false);

// Resolves a run reference: a run number, "latest" (of `suite_id` when given), a tag (of
// `suite_id` when given) or, with `models`, a model name or spec: its newest completed run of
// `suite_id`.
Result<int64_t> ResolveRunId(const Context& ctx, const Store& store, const std::string& ref,
                             const std::string& suite_id = "", bool models = false);

// Prints a finished run (as plumb show, with the built-in baselines beside it, computed and
// cached in `store` when missing) and returns its exit code: 1 failed, 130 interrupted, 3 when
// samples errored or the judge error rate is over the limit, else 0.
// `baselines`, when given, were computed already (see BaselinesOf).
using BaselineView = std::pair<std::vector<BaselineScores>, std::string>;
int ReportRun(const Context& ctx, Store& store, const Suite& suite, const RunSummary& summary,
              double max_judge_error_rate, std::optional<BaselineView> baselines = std::nullopt);

// The built-in baselines of `run` for display, or why there are none ("" when there are).
BaselineView BaselinesOf(const Context& ctx, Store& store, const Suite& suite, const RunRecord& run,
                         bool write_cache);

}  // namespace plumb::cli

#endif  // PLUMB_CLI_COMMANDS_H_
