// plumb resume RUN: continue an interrupted, failed or killed run. Only samples that never
// ended are sent again (with --retry-errors on plumb run, errored ones too); metrics are then
// recomputed from the database, so the numbers equal those of an uninterrupted run.
#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/runner.h"
#include "plumb/store.h"

namespace plumb::cli {

int ContinueRun(const Context& ctx, Store& store, int64_t run_id, ModelFlags flags,
                bool retry_errors, ProgressMode progress, double max_judge_error_rate,
                bool worker) {
  auto run = store.GetRun(run_id);
  if (!run) return ReportError(run.error());
  if (run->status == "completed" && worker) {
    // A worker that starts late (a Job's pod restarted) has done its part.
    std::fprintf(stderr, "plumb: run %lld is completed: nothing to work on\n",
                 static_cast<long long>(run_id));
    return kExitOk;
  }
  if (run->status == "completed" && !retry_errors) {
    return ReportError(
        InvalidArgument(fmt::format("run {} is completed: nothing to resume (plumb run "
                                    "--retry-errors {} re-sends its errored samples)",
                                    run_id, run_id)));
  }
  if (worker && (flags.batch || !flags.batch_results.empty() || flags.cancel_batches)) {
    return ReportError(InvalidArgument(
        "plumb work sends requests one by one: batch mode is for one process (plumb run or "
        "resume --batch)"));
  }
  // Taken before anything changes, so a second resume of a live run changes nothing.
  if (!worker) {
    if (Status s = store.AcquireRun(run_id); !s.ok()) return ReportError(s);
  }
  auto suite = ctx.LoadSuiteOfRun(*run);
  if (!suite) return ReportError(suite.error());
  if (suite->manifest.content_hash != run->suite_hash) {
    return ReportError(InvalidArgument(
        fmt::format("suite '{}' changed since run {} started (content hash {} now, {} then): a "
                    "resumed run must answer the same items",
                    run->suite_id, run_id, suite->manifest.content_hash.substr(0, 12),
                    run->suite_hash.substr(0, 12))));
  }
  auto options = OptionsOfRun(*run);
  if (!options) return ReportError(options.error());
  flags.InheritFrom(*run);
  flags.seed = run->seed;
  std::unique_ptr<HttpScheduler> scheduler = flags.MakeScheduler();
  // A re-grading (plumb rescore) continues from the replies of the run it re-grades.
  auto backend = run->parent_run_id
                     ? StoredRepliesOf(store, *run->parent_run_id)
                     : flags.MakeBackend(ctx, scheduler.get(), run->model_spec, /*judge=*/false);
  if (!backend) return ReportError(backend.error());
  std::vector<std::unique_ptr<Backend>> owned;
  auto judges = flags.MakeJudges(ctx, scheduler.get(), owned);
  if (!judges) return ReportError(judges.error());
  if (retry_errors) {
    auto reset = store.ResetErroredSamples(run_id);
    if (!reset) return ReportError(reset.error());
    std::fprintf(stderr, "plumb: run %lld: %lld errored samples will be sent again\n",
                 static_cast<long long>(run_id), static_cast<long long>(*reset));
  }
  options->concurrency = flags.concurrency;
  options->progress = progress;
  Json settings = flags.Settings();
  for (const char* key : {"rescore_of", "judge_graders", "suite_file", "alias"}) {
    if (run->settings.contains(key)) settings[key] = run->settings[key];
  }
  options->settings = settings;
  options->max_judge_error_rate = max_judge_error_rate;
  options->cache = flags.Cache();
  std::string priced = run->parent_run_id ? "replay/stored" : run->model_spec;
  if (Status s = flags.SetPrices(ctx, priced, *options); !s.ok()) return ReportError(s);
  if (!run->parent_run_id && !worker) {
    if (Status s = flags.ApplyBatch(ctx, run->model_spec, **backend, *judges, *options); !s.ok())
      return ReportError(s);
  }
  options->wait_for_finish = !worker;
  auto summary = worker ? WorkOnRun(*suite, *run, **backend, scheduler.get(), store, *options,
                                    Interrupted(), *judges)
                        : ResumeRun(*suite, *run, **backend, scheduler.get(), store, *options,
                                    Interrupted(), *judges);
  if (!summary) return ReportError(summary.error());
  return ReportRun(ctx, store, *suite, *summary, max_judge_error_rate);
}

Action SetupResume(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string run;
    bool retry_errors = false;
    double max_judge_error_rate = 5.0;
    std::string progress = "auto";
    ModelFlags m;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("run", f->run, "Run id or 'latest'")->required();
  app.add_flag("--retry-errors", f->retry_errors,
               "Also send again the samples that ended in an error");
  app.add_option("--max-judge-error-rate", f->max_judge_error_rate,
                 "Judge error rate (%) above which the run exits 3")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--progress", f->progress, "Progress display")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  app.add_flag("--cancel-batches", f->m.cancel_batches,
               "Cancel the run's batches at the provider, then collect what they finished "
               "(the rest are errors: --retry-errors sends them again)");
  app.add_option("--batch-results", f->m.batch_results,
                 "Answer from this batch results file (the OpenAI batch output format, e.g. "
                 "vLLM's run_batch on a --batch-file-only file) instead of sending anything");
  f->m.Add(app, /*model_flags=*/true);
  return [f, &ctx]() {
    auto store = OpenStore(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto id = ResolveRunId(ctx, **store, f->run);
    if (!id) return ReportError(id.error());
    return ContinueRun(ctx, **store, *id, f->m, f->retry_errors, ParseProgress(f->progress),
                       f->max_judge_error_rate);
  };
}

Action SetupWork(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string run;
    double max_judge_error_rate = 5.0;
    std::string progress = "none";
    ModelFlags m;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("run", f->run, "Run id or 'latest'")->required();
  app.add_option("--max-judge-error-rate", f->max_judge_error_rate,
                 "Judge error rate (%) above which the worker that finishes the run exits 3")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--progress", f->progress, "Progress display (of this worker's samples)")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();
  f->m.Add(app, /*model_flags=*/true);
  return [f, &ctx]() {
    auto store = OpenStore(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto id = ResolveRunId(ctx, **store, f->run);
    if (!id) return ReportError(id.error());
    return ContinueRun(ctx, **store, *id, f->m, /*retry_errors=*/false,
                       ParseProgress(f->progress), f->max_judge_error_rate, /*worker=*/true);
  };
}

}  // namespace plumb::cli
