// The evaluation loop: plans samples, sends turns through a backend, grades replies, records
// everything in the store and computes metrics from what was stored.
#ifndef PLUMB_RUNNER_H_
#define PLUMB_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/http.h"
#include "plumb/store.h"
#include "plumb/suite.h"

namespace plumb {

enum class ProgressMode { kAuto, kBar, kLines, kNone };

struct RunOptions {
  std::string model_spec;
  int epochs = 1;
  std::optional<int64_t> limit;  // the first N items of the suite
  uint64_t seed = 1;             // option order, baselines, bootstrap
  int concurrency = kDefaultConcurrency;
  GenerationParams params;       // overrides of the suite's defaults
  Json settings = Json::object();  // recorded with the run (no secrets)
  ProgressMode progress = ProgressMode::kAuto;
};

struct RunSummary {
  int64_t run_id = 0;
  std::string status;  // completed | failed | interrupted
  int64_t samples = 0;
  int64_t done = 0;    // samples that ended (with a response or an error)
  int64_t errors = 0;  // samples that ended in an error
  Status failure;      // why the run failed, when it did
  std::vector<Metric> metrics;
};

// Runs `suite` against `backend`. `scheduler` (may be null for in-process backends) is
// cancelled on interruption or on a failure that dooms the run (IsFatalForRun). `interrupted`
// is polled; when it becomes true, in-flight work is abandoned and everything finished is kept.
// Returns an error only when nothing could be recorded (e.g. the store failed).
Result<RunSummary> RunSuite(const Suite& suite, Backend& backend, HttpScheduler* scheduler,
                            Store& store, const RunOptions& options,
                            const std::atomic<bool>& interrupted);

// Recomputes a run's metrics from its stored samples (the suite must be the one it ran).
Result<std::vector<Metric>> ComputeMetrics(const Suite& suite, const std::vector<SampleRecord>& samples);

}  // namespace plumb

#endif  // PLUMB_RUNNER_H_
