// plumb run: evaluate one or more models on a suite.
#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/runner.h"
#include "plumb/store.h"

namespace plumb::cli {
namespace {

struct RunFlags {
  std::string suite;
  std::vector<std::string> models;
  std::optional<int64_t> limit;
  std::optional<int> epochs;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> max_tokens;
  std::optional<int64_t> model_seed;
  double max_judge_error_rate = 5.0;
  std::string progress = "auto";
  ModelFlags m;
};

ProgressMode ParseProgress(const std::string& s) {
  if (s == "bar") return ProgressMode::kBar;
  if (s == "lines") return ProgressMode::kLines;
  if (s == "none") return ProgressMode::kNone;
  return ProgressMode::kAuto;
}

int RunOne(const Context& ctx, const RunFlags& f, const Suite& suite, const std::string& model) {
  std::unique_ptr<HttpScheduler> scheduler = f.m.MakeScheduler();
  auto backend = f.m.MakeBackend(ctx, scheduler.get(), model, /*judge=*/false);
  if (!backend) return ReportError(backend.error());
  std::vector<std::unique_ptr<Backend>> judge_backends;
  auto judges = f.m.MakeJudges(ctx, scheduler.get(), judge_backends);
  if (!judges) return ReportError(judges.error());
  if (suite.kind->NeedsJudges() && judges->empty()) {
    return ReportError(InvalidArgument(fmt::format(
        "suite '{}' is scored by LLM judges: name a judge model with --judge SPEC", suite.manifest.id)));
  }
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(ctx.db_path);
  if (!store) return ReportError(store.error());

  RunOptions options;
  options.model_spec = model;
  options.epochs = f.epochs.value_or(suite.manifest.samples);
  options.limit = f.limit;
  options.seed = f.m.seed;
  options.concurrency = f.m.concurrency;
  options.params.temperature = f.temperature;
  options.params.top_p = f.top_p;
  options.params.max_tokens = f.max_tokens;
  options.params.seed = f.model_seed;
  options.progress = ParseProgress(f.progress);
  options.settings = f.m.Settings();
  options.max_judge_error_rate = f.max_judge_error_rate;

  Result<RunSummary> summary = RunSuite(suite, **backend, scheduler.get(), **store, options, Interrupted(), *judges);
  if (!summary) return ReportError(summary.error());
  return ReportRun(**store, *summary, f.max_judge_error_rate);
}

}  // namespace

Action SetupRun(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<RunFlags>();
  app.add_option("--suite", f->suite, "Suite id, or a suite folder / suite.yaml path")->required();
  app.add_option("--model", f->models,
                 "Model spec KIND/MODEL, e.g. openai/gpt-4o-mini or builtin/random (repeatable)")
      ->required();
  app.add_option("--limit", f->limit, "Only the first N items")->check(CLI::PositiveNumber);
  app.add_option("--epochs", f->epochs, "Samples per item (default: the suite's 'samples', else 1)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--seed", f->m.seed, "Seed for option order, baselines and bootstrap");
  app.add_option("--temperature", f->temperature, "Sampling temperature (overrides the suite)")
      ->check(CLI::Range(0.0, 2.0));
  app.add_option("--top-p", f->top_p, "Nucleus sampling (overrides the suite)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-tokens", f->max_tokens, "Max tokens per reply (overrides the suite)")
      ->check(CLI::PositiveNumber);
  app.add_option("--model-seed", f->model_seed, "Sampling seed sent to the model (overrides the suite)");
  app.add_option("--max-judge-error-rate", f->max_judge_error_rate,
                 "Judge error rate (%) above which the run exits 3")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--progress", f->progress, "Progress display")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  f->m.Add(app, /*model_flags=*/true);
  return [f, &ctx]() {
    Result<Suite> suite = ctx.LoadSuiteByName(f->suite);
    if (!suite) return ReportError(suite.error());
    int worst = kExitOk;
    for (const auto& model : f->models) {
      if (Interrupted().load()) return kExitInterrupted;
      int code = RunOne(ctx, *f, *suite, model);
      if (code == kExitUsage || code == kExitInterrupted) return code;
      if (code != kExitOk && (worst == kExitOk || code == kExitRunFailed)) worst = code;
    }
    return worst;
  };
}

}  // namespace plumb::cli
