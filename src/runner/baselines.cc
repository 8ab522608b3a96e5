// The built-in baselines beside every run: the same items, option order, epochs and seed,
// answered by reference answerers that need no network, so a reader sees when a score is no
// better than chance or a constant answer.
#include <fmt/format.h>

#include <atomic>

#include "plumb/hash.h"
#include "plumb/runner.h"
#include "plumb/version.h"

namespace plumb {
namespace {

// What determines a baseline's metrics; a change to any of them computes it again.
std::string BaselineKey(const RunRecord& run, const std::string& model,
                        const MetricOptions& options) {
  Json key = {{"suite_hash", run.suite_hash},
              {"model", model},
              {"seed", run.seed},
              {"epochs", run.epochs},
              {"limit", run.limit ? Json(*run.limit) : Json(nullptr)},
              {"resamples", options.resamples},
              {"plumb", fmt::format("{} {}", PLUMB_VERSION, PLUMB_GIT_SHA)}};
  return Sha256Hex(DumpJson(key));
}

}  // namespace

Result<std::vector<BaselineScores>> Baselines(const Suite& suite, const RunRecord& run,
                                              const BackendRegistry& backends, Store& cache,
                                              bool write_cache) {
  std::vector<BaselineScores> out;
  if (suite.kind->NeedsJudges()) return out;
  MetricOptions metric_options = MetricOptionsOfRun(run);
  std::unique_ptr<Store> scratch;  // computed runs live in memory only
  for (const std::string& model : kBaselineModels) {
    std::string key = BaselineKey(run, model, metric_options);
    PLUMB_ASSIGN_OR_RETURN(auto cached, cache.GetBaseline(key));
    if (cached) {
      out.push_back(BaselineScores{model, std::move(*cached)});
      continue;
    }
    if (suite.manifest.content_hash != run.suite_hash) {
      return FailedPrecondition(
          fmt::format("suite '{}' changed since run {}: its baselines cannot be computed",
                      suite.manifest.id, run.id));
    }
    if (!scratch) {
      PLUMB_ASSIGN_OR_RETURN(scratch, OpenSqliteStore(":memory:"));
    }
    BackendContext ctx;
    ctx.spec = model;
    PLUMB_ASSIGN_OR_RETURN(auto backend, CreateBackend(backends, ctx));
    PLUMB_ASSIGN_OR_RETURN(RunOptions options, OptionsOfRun(run));
    options.model_spec = model;
    options.progress = ProgressMode::kNone;
    options.cache = CachePolicy::kNever;
    options.settings = Json::object();
    options.max_cost.reset();
    options.parent_run_id.reset();
    std::atomic<bool> never{false};
    PLUMB_ASSIGN_OR_RETURN(RunSummary s,
                           RunSuite(suite, *backend, nullptr, *scratch, options, never));
    if (s.status != "completed" || s.errors > 0) {
      return Internal(fmt::format("baseline {} on suite '{}' did not complete ({} errors): {}",
                                  model, suite.manifest.id, s.errors, s.failure.message()));
    }
    if (write_cache) PLUMB_RETURN_IF_ERROR(cache.PutBaseline(key, run.suite_id, model, s.metrics));
    out.push_back(BaselineScores{model, std::move(s.metrics)});
  }
  return out;
}

}  // namespace plumb
