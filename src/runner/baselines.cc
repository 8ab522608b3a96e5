// The built-in baselines beside every run: the same items, option order, epochs and seed,
// answered by reference answerers that need no network, so a reader sees when a score is no
// better than chance or a constant answer.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "plumb/hash.h"
#include "plumb/runner.h"
#include "plumb/version.h"
#include "runner/metrics.h"
#include "runner/option_only.h"
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

// Baselines' metrics, computed in process: the run's plan, every sample's turns rendered once
// and answered by each built-in backend (which answers at once, in the calling thread), through
// the kind's grading into its metrics, as in a real run, but without requests, JSON or a
// database, and holding one epoch at a time.
Result<std::vector<std::vector<Metric>>> EvaluateInProcess(
    const Suite& suite, const std::vector<std::unique_ptr<Backend>>& backends,
    const std::vector<std::string>& specs, const RunOptions& options) {
  std::vector<std::unique_ptr<RunMetricsBuilder>> metrics;
  for (size_t b = 0; b < backends.size(); ++b) {
    metrics.push_back(std::make_unique<RunMetricsBuilder>(
        suite, MetricOptions{options.seed, options.bootstrap_resamples}));
    // The answer-only baselines and the refuser answer every epoch alike: their epoch
    // reducers say nothing.
    if (specs[b] == "builtin/refuse" ||
        std::find(kAnswerOnlyBaselines.begin(), kAnswerOnlyBaselines.end(), specs[b]) !=
            kAnswerOnlyBaselines.end()) {
      metrics.back()->SkipReducers();
    }
  }
  runner::PlanCursor plan(suite, options.epochs, options.limit, options.seed);
  std::vector<Sample> epoch;
  while (plan.Next(epoch)) {
    for (const Sample& sample : epoch) {
      const Item& item = suite.items[sample.item];
      PLUMB_ASSIGN_OR_RETURN(Turn first, suite.kind->FirstTurn(item, sample));
      // Baselines often give the same reply to a sample (the first option is also the longest,
      // ...): a one-turn reply without tool calls is graded once per distinct text.
      std::map<std::string, std::vector<Grade>> graded;
      // The first exchange's messages are the same for every baseline: copied once per sample.
      std::vector<Exchange> history = {Exchange{first.messages, Completion{}}};
      for (size_t b = 0; b < backends.size(); ++b) {
        history.resize(1);
        const Turn* turn = &first;
        std::optional<Turn> next;
        while (true) {
          ModelCall call;
          call.messages = turn->messages;
          call.params = options.params;
          call.hints.item_id = item.id;
          call.hints.epoch = sample.epoch;
          call.hints.turn = static_cast<int>(turn == &first ? 0 : history.size());
          call.hints.seed = DeriveSeed(options.seed, item.id, static_cast<uint64_t>(sample.epoch));
          call.hints.option_labels = turn->option_labels;
          call.hints.option_texts = turn->option_texts;
          call.tools = turn->tools;
          call.tool_choice = turn->tool_choice;
          std::optional<Result<Completion>> reply;
          backends[b]->Submit(std::move(call), [&](Result<Completion> r, const CallReport&) {
            reply = std::move(r);
          });
          if (!reply) return Internal("a built-in baseline did not answer in process");
          if (!*reply) return reply->error();
          if (turn == &first) {
            history[0].completion = std::move(**reply);
          } else {
            history.push_back(Exchange{turn->messages, std::move(**reply)});
          }
          PLUMB_ASSIGN_OR_RETURN(next, suite.kind->NextTurn(item, sample, history));
          if (!next) break;
          turn = &*next;
        }
        const bool one_turn = history.size() == 1 && history[0].completion.tool_calls.empty();
        const std::string key =
            one_turn ? history[0].completion.finish_reason + '\n' + history[0].completion.text
                     : std::string();
        auto seen = one_turn ? graded.find(key) : graded.end();
        std::vector<Grade> grades =
            seen != graded.end() ? seen->second : suite.kind->GradeSample(item, sample, history);
        if (one_turn && seen == graded.end()) graded.emplace(key, grades);
        metrics[b]->AddOutcome(SampleOutcome{sample.item, sample.epoch, true, std::move(grades)});
      }
    }
  }
  std::vector<std::vector<Metric>> out;
  for (auto& m : metrics) out.push_back(m->Finish());
  return out;
}

}  // namespace

Result<std::vector<BaselineScores>> Baselines(const Suite& suite, const RunRecord& run,
                                              const BackendRegistry& backends_registry,
                                              Store& cache, bool write_cache) {
  std::vector<BaselineScores> out;
  if (suite.kind->NeedsJudges()) return out;
  MetricOptions metric_options = MetricOptionsOfRun(run);
  std::vector<std::string> missing;
  std::vector<std::unique_ptr<Backend>> backends;
  std::map<std::string, std::vector<Metric>> found;
  std::vector<std::string> models = kBaselineModels;
  bool options_apart = false, aligned_options = false;
  for (const Item& item : suite.items) {
    std::optional<SuiteKind::ItemOptions> o = suite.kind->OptionsOf(item);
    options_apart = options_apart || o.has_value();
    aligned_options = aligned_options || (o && !o->aligned.empty());
    if (aligned_options) break;
  }
  if (options_apart) {
    models.push_back("builtin/longest");
    models.push_back("builtin/shortest");
    if (aligned_options) models.push_back(runner::kOptionOnlySpec);
  }
  for (const std::string& model : models) {
    PLUMB_ASSIGN_OR_RETURN(auto cached, cache.GetBaseline(BaselineKey(run, model, metric_options)));
    if (cached) {
      found[model] = std::move(*cached);
      continue;
    }
    if (model == runner::kOptionOnlySpec) {
      // Trained on the suite only when its metrics are not cached.
      backends.push_back(runner::MakeOptionOnlyBaseline(suite));
    } else {
      BackendContext ctx;
      ctx.spec = model;
      PLUMB_ASSIGN_OR_RETURN(auto backend, CreateBackend(backends_registry, ctx));
      backends.push_back(std::move(backend));
    }
    missing.push_back(model);
  }
  if (!missing.empty()) {
    if (suite.manifest.content_hash != run.suite_hash) {
      return FailedPrecondition(
          fmt::format("suite '{}' changed since run {}: its baselines cannot be computed",
                      suite.manifest.id, run.id));
    }
    PLUMB_ASSIGN_OR_RETURN(RunOptions options, OptionsOfRun(run));
    auto computed = EvaluateInProcess(suite, backends, missing, options);
    if (!computed) {
      return Internal(fmt::format("baselines on suite '{}': {}", suite.manifest.id,
                                  computed.error().message()));
    }
    for (size_t b = 0; b < missing.size(); ++b) {
      // A reader's database may not be writable: the cache is then skipped, never fatal.
      if (write_cache) {
        (void)cache.PutBaseline(BaselineKey(run, missing[b], metric_options), run.suite_id,
                                missing[b], (*computed)[b]);
      }
      found[missing[b]] = std::move((*computed)[b]);
    }
  }
  for (const std::string& model : models)
    out.push_back(BaselineScores{model, std::move(found[model])});
  return out;
}

}  // namespace plumb
