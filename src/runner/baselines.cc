// The built-in baselines beside every run: the same items, option order, epochs and seed,
// answered by reference answerers that need no network, so a reader sees when a score is no
// better than chance or a constant answer.
#include <fmt/format.h>

#include <optional>

#include "plumb/hash.h"
#include "plumb/runner.h"
#include "plumb/version.h"
#include "runner/metrics.h"
#include "runner/plan.h"

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

// A baseline's metrics, computed in process: the run's plan, every sample answered by the
// built-in backend (which answers at once, in the calling thread), through the kind's turns and
// grading into its metrics, as in a real run, but without requests, JSON or a database, and
// holding one sample at a time.
Result<std::vector<Metric>> EvaluateInProcess(const Suite& suite, Backend& backend,
                                              const RunOptions& options) {
  RunMetricsBuilder metrics(suite, MetricOptions{options.seed, options.bootstrap_resamples});
  runner::PlanCursor plan(suite, options.epochs, options.limit, options.seed);
  GenerationParams params = options.params;
  std::vector<Sample> epoch;
  while (plan.Next(epoch)) {
    for (const Sample& sample : epoch) {
      const Item& item = suite.items[sample.item];
      PLUMB_ASSIGN_OR_RETURN(Turn turn, suite.kind->FirstTurn(item, sample));
      std::vector<Exchange> history;
      while (true) {
        ModelCall call;
        call.messages = turn.messages;
        call.params = params;
        call.hints.item_id = item.id;
        call.hints.epoch = sample.epoch;
        call.hints.turn = static_cast<int>(history.size());
        call.hints.seed = DeriveSeed(options.seed, item.id, static_cast<uint64_t>(sample.epoch));
        call.hints.option_labels = turn.option_labels;
        std::optional<Result<Completion>> reply;
        backend.Submit(std::move(call),
                       [&](Result<Completion> r, const CallReport&) { reply = std::move(r); });
        if (!reply) return Internal("a built-in baseline did not answer in process");
        if (!*reply) return reply->error();
        history.push_back(Exchange{std::move(turn.messages), std::move(**reply)});
        PLUMB_ASSIGN_OR_RETURN(std::optional<Turn> next,
                               suite.kind->NextTurn(item, sample, history));
        if (!next) break;
        turn = std::move(*next);
      }
      metrics.AddOutcome(SampleOutcome{sample.item, sample.epoch, true,
                                       suite.kind->GradeSample(item, sample, history)});
    }
  }
  return metrics.Finish();
}

}  // namespace

Result<std::vector<BaselineScores>> Baselines(const Suite& suite, const RunRecord& run,
                                              const BackendRegistry& backends, Store& cache,
                                              bool write_cache) {
  std::vector<BaselineScores> out;
  if (suite.kind->NeedsJudges()) return out;
  MetricOptions metric_options = MetricOptionsOfRun(run);
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
    BackendContext ctx;
    ctx.spec = model;
    PLUMB_ASSIGN_OR_RETURN(auto backend, CreateBackend(backends, ctx));
    PLUMB_ASSIGN_OR_RETURN(RunOptions options, OptionsOfRun(run));
    Result<std::vector<Metric>> metrics = EvaluateInProcess(suite, *backend, options);
    if (!metrics) {
      return Internal(fmt::format("baseline {} on suite '{}': {}", model, suite.manifest.id,
                                  metrics.error().message()));
    }
    // A reader's database may not be writable: the cache is then skipped, never fatal.
    if (write_cache) (void)cache.PutBaseline(key, run.suite_id, model, *metrics);
    out.push_back(BaselineScores{model, std::move(*metrics)});
  }
  return out;
}

}  // namespace plumb
