// plumb run: evaluate one or more models on a suite.
#include <fmt/format.h>

#include <future>

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
  int bootstrap = kDefaultBootstrapResamples;
  double max_judge_error_rate = 5.0;
  std::string progress = "auto";
  bool resume = false;
  bool dry_run = false;
  bool workers_only = false;
  std::vector<std::string> perturb;
  std::optional<std::string> retry_errors;
  ModelFlags m;
};

RunOptions BaseOptions(const RunFlags& f, const Suite& suite) {
  RunOptions options;
  options.epochs = f.epochs.value_or(suite.manifest.samples);
  options.limit = f.limit;
  options.seed = f.m.seed;
  options.bootstrap_resamples = f.bootstrap;
  options.concurrency = f.m.concurrency;
  options.params.temperature = f.temperature;
  options.params.top_p = f.top_p;
  options.params.max_tokens = f.max_tokens;
  options.params.seed = f.model_seed;
  options.progress = ParseProgress(f.progress);
  options.settings = f.m.Settings();
  options.max_judge_error_rate = f.max_judge_error_rate;
  options.cache = f.m.Cache();
  if (!f.perturb.empty()) options.settings["perturb"] = f.perturb;
  return options;
}

std::string Money(const std::optional<double>& usd) {
  return usd ? fmt::format("${:.4f}", *usd) : "unknown (no price)";
}

// plumb run --dry-run: what would be sent and what it could cost; nothing is sent or written.
int DryRun(const Context& ctx, const RunFlags& f, const Suite& suite, const std::string& model) {
  RunOptions options = BaseOptions(f, suite);
  if (Status s = f.m.SetPrices(ctx, model, options); !s.ok()) return ReportError(s);
  auto e = EstimateRun(suite, options);
  if (!e) return ReportError(e.error());
  std::string spec = ctx.ResolveSpec(model);
  std::optional<double> model_cost;
  const ModelAlias* alias = ctx.Alias(model);
  const bool batched = f.m.batch || (alias && alias->batch);
  if (options.model_price && e->completion_tokens) {
    model_cost = batched ? options.model_price->BatchCost(e->prompt_tokens, *e->completion_tokens)
                         : options.model_price->Cost(e->prompt_tokens, *e->completion_tokens);
  }
  std::string out = fmt::format("dry run: {}@{}, {} samples, model {}\n", suite.manifest.id,
                                suite.manifest.version, e->samples, spec);
  out += fmt::format(
      "  model: {} requests, ~{} prompt tokens, {} completion tokens, cost at most {}{}\n",
      e->model_requests, e->prompt_tokens,
      e->completion_tokens ? fmt::format("at most {}", *e->completion_tokens)
                           : std::string("unbounded (no max_tokens)"),
      Money(model_cost), batched ? " (batch price)" : "");
  std::optional<double> total = model_cost;
  for (const auto& j : f.m.judges) {
    std::string jspec = ctx.ResolveSpec(j);
    auto price = options.judge_prices.find(jspec);
    std::optional<double> cost;
    // Judges reply briefly: their max_tokens is set per grader; 600 bounds every shipped one.
    const ModelAlias* judge_alias = ctx.Alias(j);
    const bool judge_batched = f.m.batch || (judge_alias && judge_alias->batch);
    if (price != options.judge_prices.end()) {
      cost = judge_batched
                 ? price->second.BatchCost(e->judge_prompt_tokens, e->judge_requests * 600)
                 : price->second.Cost(e->judge_prompt_tokens, e->judge_requests * 600);
    }
    out += fmt::format("  judge {}: {} requests, ~{} prompt tokens, cost at most {}\n", jspec,
                       e->judge_requests, e->judge_prompt_tokens, Money(cost));
    total = total && cost ? std::optional<double>(*total + *cost) : std::nullopt;
  }
  if (suite.kind->NeedsJudges() && f.m.judges.empty()) out += "  (this suite also needs --judge)\n";
  out += fmt::format(
      "  total cost at most {} (prices: plumb list models; tokens estimated at 4 characters "
      "each)\n",
      Money(total));
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

int RunOne(const Context& ctx, const RunFlags& f, const Suite& suite, const std::string& model) {
  if (f.dry_run) return DryRun(ctx, f, suite, model);
  std::unique_ptr<HttpScheduler> scheduler = f.m.MakeScheduler();
  auto backend = f.m.MakeBackend(ctx, scheduler.get(), model, /*judge=*/false);
  if (!backend) return ReportError(backend.error());
  std::vector<std::unique_ptr<Backend>> judge_backends;
  auto judges = f.m.MakeJudges(ctx, scheduler.get(), judge_backends);
  if (!judges) return ReportError(judges.error());
  if (suite.kind->NeedsJudges() && judges->empty()) {
    return ReportError(InvalidArgument(
        fmt::format("suite '{}' is scored by LLM judges: name a judge model with --judge SPEC",
                    suite.manifest.id)));
  }
  Result<std::unique_ptr<Store>> store = OpenStore(ctx.db_path);
  if (!store) return ReportError(store.error());

  RunOptions options = BaseOptions(f, suite);
  options.model_spec = ctx.ResolveSpec(model);
  if (Status s = f.m.SetPrices(ctx, model, options); !s.ok()) return ReportError(s);
  if (Status s = f.m.ApplyBatch(ctx, model, **backend, *judges, options); !s.ok())
    return ReportError(s);

  // The built-in baselines need no network: they are computed (or read from the cache) while the
  // model answers, from what they depend on.
  RunRecord planned;
  planned.suite_id = suite.manifest.id;
  planned.suite_hash = suite.manifest.content_hash;
  planned.seed = options.seed;
  planned.epochs = options.epochs;
  planned.limit = options.limit;
  planned.settings["bootstrap_resamples"] = options.bootstrap_resamples;
  Store& results = **store;
  auto baselines = std::async(std::launch::async,
                              [&] { return BaselinesOf(ctx, results, suite, planned, true); });

  options.plan_only = f.workers_only;
  Result<RunSummary> summary =
      RunSuite(suite, **backend, scheduler.get(), results, options, Interrupted(), *judges);
  BaselineView beside = baselines.get();
  if (!summary) return ReportError(summary.error());
  if (summary->status == "queued") {
    std::printf("run %lld queued: %lld samples for workers (plumb work %lld, with this --db)\n",
                static_cast<long long>(summary->run_id), static_cast<long long>(summary->samples),
                static_cast<long long>(summary->run_id));
    return kExitOk;
  }
  return ReportRun(ctx, results, suite, *summary, f.max_judge_error_rate, std::move(beside));
}

// The newest run of (suite, model) that did not complete, if any.
Result<std::optional<int64_t>> FindUnfinishedRun(const Context& ctx, const std::string& suite,
                                                 const std::string& model) {
  auto opened = OpenStoreReadOnly(ctx.db_path);
  if (!opened && opened.error().code() == StatusCode::kNotFound) return std::optional<int64_t>();
  PLUMB_ASSIGN_OR_RETURN(auto store, std::move(opened));
  PLUMB_ASSIGN_OR_RETURN(auto runs, store->ListRuns(RunFilter{suite, ""}));
  std::optional<int64_t> found;
  for (const auto& r : runs) {
    if (r.model_spec == model && !r.parent_run_id)
      found = r.status == "completed" ? std::nullopt : std::optional<int64_t>(r.id);
  }
  return found;
}

}  // namespace

Action SetupRun(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<RunFlags>();
  app.add_option("--suite", f->suite, "Suite id, or a suite folder / suite.yaml path");
  app.add_option("--model", f->models,
                 "Model spec KIND/MODEL, e.g. openai/gpt-4o-mini or builtin/random (repeatable)");
  app.add_flag("--dry-run", f->dry_run,
               "Print the requests, tokens and cost a run would take; send nothing");
  app.add_option("--perturb", f->perturb,
                 "Run under a grid of presentations: order, labels, answer_format, system_prompt, "
                 "paraphrases (comma separated); the score comes with its stability "
                 "(docs/statistics.md)")
      ->delimiter(',');
  app.add_flag("--workers-only", f->workers_only,
               "Create the run and its plan, send nothing: plumb work RUN processes execute it");
  app.add_flag(
      "--resume", f->resume,
      "Continue the newest unfinished run of this suite and model instead of starting anew");
  app.add_option("--retry-errors", f->retry_errors,
                 "RUN: send again only the samples of RUN that ended in an error");
  app.add_option("--limit", f->limit, "Only the first N items")->check(CLI::PositiveNumber);
  app.add_option("--epochs", f->epochs, "Samples per item (default: the suite's 'samples', else 1)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--seed", f->m.seed, "Seed for option order, baselines and bootstrap");
  app.add_option("--bootstrap", f->bootstrap, "Bootstrap resamples for confidence intervals")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  app.add_option("--temperature", f->temperature, "Sampling temperature (overrides the suite)")
      ->check(CLI::Range(0.0, 2.0));
  app.add_option("--top-p", f->top_p, "Nucleus sampling (overrides the suite)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-tokens", f->max_tokens, "Max tokens per reply (overrides the suite)")
      ->check(CLI::PositiveNumber);
  app.add_option("--model-seed", f->model_seed,
                 "Sampling seed sent to the model (overrides the suite)");
  app.add_option("--max-judge-error-rate", f->max_judge_error_rate,
                 "Judge error rate (%) above which the run exits 3")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--progress", f->progress, "Progress display")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  f->m.Add(app, /*model_flags=*/true);
  return [f, &ctx]() {
    if (f->retry_errors) {
      auto store = OpenStore(ctx.db_path);
      if (!store) return ReportError(store.error());
      auto id = ResolveRunId(ctx, **store, *f->retry_errors);
      if (!id) return ReportError(id.error());
      return ContinueRun(ctx, **store, *id, f->m, /*retry_errors=*/true, ParseProgress(f->progress),
                         f->max_judge_error_rate);
    }
    if (f->suite.empty() || f->models.empty()) {
      return ReportError(
          InvalidArgument("plumb run needs --suite and --model (or --retry-errors RUN)"));
    }
    Json overlay = Json::object();
    if (!f->perturb.empty()) overlay["perturbations"] = f->perturb;
    Result<Suite> suite = ctx.LoadSuiteByName(f->suite, overlay.empty() ? nullptr : &overlay);
    if (!suite) return ReportError(suite.error());
    int worst = kExitOk;
    for (const auto& model : f->models) {
      if (Interrupted().load()) return kExitInterrupted;
      int code;
      std::optional<int64_t> unfinished;
      if (f->resume) {
        auto found = FindUnfinishedRun(ctx, suite->manifest.id, model);
        if (!found) return ReportError(found.error());
        unfinished = *found;
      }
      if (unfinished) {
        auto store = OpenStore(ctx.db_path);
        if (!store) return ReportError(store.error());
        code = ContinueRun(ctx, **store, *unfinished, f->m, false, ParseProgress(f->progress),
                           f->max_judge_error_rate);
      } else {
        code = RunOne(ctx, *f, *suite, model);
      }
      if (code == kExitUsage || code == kExitInterrupted) return code;
      if (code != kExitOk && (worst == kExitOk || code == kExitRunFailed)) worst = code;
    }
    return worst;
  };
}

}  // namespace plumb::cli
