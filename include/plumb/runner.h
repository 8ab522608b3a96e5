// The evaluation loop: plans samples, sends turns through a backend, grades replies, records
// everything in the store and computes metrics from what was stored.
#ifndef PLUMB_RUNNER_H_
#define PLUMB_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/batch.h"
#include "plumb/config.h"
#include "plumb/http.h"
#include "plumb/judge.h"
#include "plumb/store.h"
#include "plumb/suite.h"

namespace plumb {

enum class ProgressMode { kAuto, kBar, kLines, kNone };

// When answers come from the response cache (results database, table cache): kAuto for
// requests at temperature 0 (where a repeat should give the same answer anyway), kAlways for
// every request, kNever. Keys include the epoch, so repeated samples stay independent.
enum class CachePolicy { kAuto, kAlways, kNever };

// Wraps `inner` so that calls are answered from `store`'s cache when the policy allows, and
// successful answers are stored. Cache hits have Completion::cached set and 0 attempts.
std::unique_ptr<Backend> WithCache(Backend& inner, Store& store, CachePolicy policy);

// The cache key of a call to a backend with the given CacheIdentity().
std::string CacheKey(const std::string& identity, const ModelCall& call);

// A judge model for LLM-judged suites (--judge SPEC, repeatable: a panel).
struct JudgeModel {
  std::string spec;
  Backend* backend = nullptr;  // not owned
};

struct RunOptions {
  std::string model_spec;
  int epochs = 1;
  std::optional<int64_t> limit;                          // the first N items of the suite
  uint64_t seed = 1;                                     // option order, baselines, bootstrap
  int bootstrap_resamples = kDefaultBootstrapResamples;  // 0: no bootstrap intervals
  int concurrency = kDefaultConcurrency;
  GenerationParams params;         // overrides of the suite's defaults
  Json settings = Json::object();  // recorded with the run (no secrets)
  ProgressMode progress = ProgressMode::kAuto;
  // Judge graders to run (ids); empty: all the suite asks for.
  std::vector<std::string> judge_graders;
  // A run whose judge error rate (any grader) exceeds this percentage finishes with errors.
  double max_judge_error_rate = 5.0;
  std::optional<int64_t> parent_run_id;  // set by rescore
  CachePolicy cache = CachePolicy::kAuto;
  // Prices for the cost in the run's usage and for max_cost; unknown prices cost nothing known.
  std::optional<Price> model_price;
  std::map<std::string, Price> judge_prices;  // by judge spec
  // Stop cleanly (resumable) once the calls of this session have cost this much (USD).
  std::optional<double> max_cost;
  // The named model's default parameters (plumb.yaml), below the suite's and the flags'.
  GenerationParams model_defaults;
  // Batch mode (plumb/batch.h): the model's calls, and those of the judges named here, go
  // through the providers' batch APIs.
  BatchOptions batch;
  std::set<std::string> batch_judges;
  // When another worker of the run computes its metrics (plumb work): wait for it and return
  // the run's summary as stored (run, resume), or return at once (work).
  bool wait_for_finish = true;
  // Create the run and store its whole plan, send nothing, and leave it "queued" for workers
  // (plumb run --workers-only).
  bool plan_only = false;
};

// Samples in progress at most in batch mode (a batch's worth), unless --batch-max-requests
// sets a smaller batch.
inline constexpr int64_t kBatchWindow = 20'000;

struct RunSummary {
  int64_t run_id = 0;
  std::string status;  // completed | failed | interrupted | queued (plan_only) | running (see
                       // finished_elsewhere)
  int64_t samples = 0;
  int64_t done = 0;    // samples that ended (with a response or an error)
  int64_t errors = 0;  // samples that ended in an error
  Status failure;      // why the run failed, when it did
  std::vector<Metric> metrics;
  double judge_error_rate = 0;  // the highest judge error rate of any grader (percent)
  bool judge_errors_exceeded = false;
  double spent_usd = 0;         // what this session's calls cost, as far as prices are known
  bool budget_reached = false;  // stopped at max_cost
  Json usage = Json::object();  // the run's tokens and cost (RunRecord::usage)
  int64_t ended_here = 0;       // samples this process ended
  // Another worker computes (or computed) the run's metrics; without wait_for_finish, status
  // and metrics are the run's as they were when this process stopped.
  bool finished_elsewhere = false;
};

// Runs `suite` against `backend`, judged by `judges` when the suite's kind needs LLM judges
// (kInvalidArgument when it does and none are given). `scheduler` (may be null for in-process
// backends) is cancelled on interruption or on a failure that dooms the run (IsFatalForRun).
// `interrupted` is polled; when it becomes true, in-flight work is abandoned and everything
// finished is kept. Returns an error only when nothing could be recorded.
Result<RunSummary> RunSuite(const Suite& suite, Backend& backend, HttpScheduler* scheduler,
                            Store& store, const RunOptions& options,
                            const std::atomic<bool>& interrupted,
                            const std::vector<JudgeModel>& judges = {});

// Continues `run` (interrupted, failed or killed): only its samples that never ended (status
// pending) are sent again, with the option order and settings the run planned; finished
// samples are kept as they are, and metrics are recomputed from the database. `options` must
// carry the run's model spec, seed, epochs and limit (see ResumeOptions).
Result<RunSummary> ResumeRun(const Suite& suite, const RunRecord& run, Backend& backend,
                             HttpScheduler* scheduler, Store& store, const RunOptions& options,
                             const std::atomic<bool>& interrupted,
                             const std::vector<JudgeModel>& judges = {});

// Joins `run` as one more of its workers (plumb work): like ResumeRun, but without taking the
// run's lease, so that any number of processes on any number of machines work on one run. Each
// claims pending samples a page at a time (see Store::ClaimSamples); whoever ends the last
// sample computes the metrics. kFailedPrecondition for a completed run.
Result<RunSummary> WorkOnRun(const Suite& suite, const RunRecord& run, Backend& backend,
                             HttpScheduler* scheduler, Store& store, const RunOptions& options,
                             const std::atomic<bool>& interrupted,
                             const std::vector<JudgeModel>& judges = {});

// What a run would send, without sending anything (plumb run --dry-run). Prompt tokens are
// estimated from the rendered first turns (about four characters per token); completion
// tokens are bounded by max_tokens, so costs are upper bounds.
struct RunEstimate {
  int64_t samples = 0;
  int64_t model_requests = 0;
  int64_t judge_requests = 0;  // per judge model
  int64_t prompt_tokens = 0;
  std::optional<int64_t> completion_tokens;  // max_tokens x requests; empty without max_tokens
  int64_t judge_prompt_tokens = 0;  // per judge model: rubric (about 500) + question + reply
};
Result<RunEstimate> EstimateRun(const Suite& suite, const RunOptions& options);

// The options a run was started with (model spec, seed, epochs, limit, parameters,
// settings), for ResumeRun and rescore.
Result<RunOptions> OptionsOfRun(const RunRecord& run);

// The built-in reference answerers shown beside every run (chance and constant answers).
inline const std::vector<std::string> kBaselineModels = {"builtin/random", "builtin/first",
                                                         "builtin/last", "builtin/refuse"};
// Beside them on suites that show options apart (SuiteKind::OptionsOf): baselines that never
// read the question. builtin/option-only (a leave-one-item-out naive Bayes classifier over the
// options' words) needs items with an aligned option.
inline const std::vector<std::string> kAnswerOnlyBaselines = {
    "builtin/longest", "builtin/shortest", "builtin/option-only"};

// The metrics of each of kBaselineModels (and, where they apply, kAnswerOnlyBaselines) on the
// items, option order, epochs and seed of `run`:
// read from `cache` (the results database) when there, otherwise computed locally (no network;
// the samples stay in memory) and, with `write_cache`, cached. Judged suites have none (empty).
// kFailedPrecondition when a baseline must be computed but `suite` is no longer the content the
// run used.
Result<std::vector<BaselineScores>> Baselines(const Suite& suite, const RunRecord& run,
                                              const BackendRegistry& backends, Store& cache,
                                              bool write_cache);

// Sends `prompt` to `judge` and reads the reply with `grader`. An unreadable reply is re-asked
// (the conversation continues with the grader's re-ask message) up to grader->max_reasks()
// times. `done` runs once, from any thread, with the judgment (status kError when the judge call
// failed or the reply stayed unreadable) and the call's Status (not OK when the call failed;
// kCancelled when the run was interrupted). The judgment's details record the judge, the prompt
// hash, the generation parameters, re-asks and attempts.
void RequestJudgment(std::shared_ptr<const JudgeGrader> grader, const JudgeModel& judge,
                     std::vector<Message> prompt, CallHints hints,
                     std::function<void(Grade judgment, Status call)> done);

// SHA-256 (hex, first 16 characters) of a judge prompt, stored with every judgment.
std::string PromptHash(const std::vector<Message>& prompt);

// Recomputes a run's metrics from its stored samples (the suite must be the one it ran): the
// kind's metrics, the epoch reducers of its ReducedMetrics() (see ReducerMetrics), then for
// every judge grader its judge error rate, unscored rate and, with a panel, Krippendorff's
// alpha between the judges.
Result<std::vector<Metric>> ComputeMetrics(const Suite& suite,
                                           const std::vector<SampleRecord>& samples,
                                           const MetricOptions& options);

// The same, reading the run's samples from `store` one at a time (memory for the suite's items,
// not the run's samples), and counting them into `counts` when given.
Result<std::vector<Metric>> ComputeRunMetrics(const Suite& suite, const Store& store,
                                              int64_t run_id, const MetricOptions& options,
                                              SampleCounts* counts = nullptr);

// How a run's metrics are computed: its seed and settings.bootstrap_resamples (default 2000).
MetricOptions MetricOptionsOfRun(const RunRecord& run);

}  // namespace plumb

#endif  // PLUMB_RUNNER_H_
