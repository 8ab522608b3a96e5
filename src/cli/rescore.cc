// plumb rescore RUN: grade a run's stored replies again (rule graders, and judges: the run's own
// or new ones) without calling the model under test, as a new run linked to the original.
#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/runner.h"
#include "plumb/store.h"

namespace plumb::cli {

Result<std::unique_ptr<Backend>> StoredRepliesOf(const Store& store, int64_t run_id) {
  PLUMB_ASSIGN_OR_RETURN(auto samples, store.GetSamples(run_id));
  std::map<std::tuple<std::string, int, int>, Completion> replies;
  for (const auto& s : samples) {
    for (const auto& r : s.responses) {
      if (r.ok) replies[{r.item_id, r.epoch, r.turn}] = r.completion;
    }
  }
  return MakeStoredRepliesBackend(fmt::format("rescore-of-run-{}@1", run_id), std::move(replies));
}

Action SetupRescore(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string run;
    std::vector<std::string> graders;
    double max_judge_error_rate = 5.0;
    ModelFlags m;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("run", f->run, "Run id or 'latest'")->required();
  app.add_option("--grader", f->graders,
                 "Only these judge graders (repeatable; default: all the suite uses)");
  app.add_option("--max-judge-error-rate", f->max_judge_error_rate,
                 "Judge error rate (%) above which the run exits 3")
      ->check(CLI::Range(0.0, 100.0));
  f->m.Add(app, /*model_flags=*/false);
  return [f, &ctx]() {
    auto store = OpenStore(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto id = ResolveRunId(ctx, **store, f->run);
    if (!id) return ReportError(id.error());
    auto run = (*store)->GetRun(*id);
    if (!run) return ReportError(run.error());
    auto suite = ctx.LoadSuiteOfRun(*run);
    if (!suite) return ReportError(suite.error());
    if (suite->manifest.content_hash != run->suite_hash) {
      return ReportError(InvalidArgument(fmt::format(
          "suite '{}' changed since run {} (content hash {} now, {} then): rescore needs the items "
          "the run answered",
          run->suite_id, *id, suite->manifest.content_hash.substr(0, 12),
          run->suite_hash.substr(0, 12))));
    }
    for (const auto& g : f->graders) {
      if (auto judge = ctx.Judges().Get(g); !judge) return ReportError(judge.error());
    }
    auto backend = StoredRepliesOf(**store, *id);
    if (!backend) return ReportError(backend.error());
    ModelFlags m = f->m;
    m.InheritFrom(*run);  // the run's judges and where they live, unless given
    std::unique_ptr<HttpScheduler> scheduler = m.MakeScheduler();
    std::vector<std::unique_ptr<Backend>> owned;
    auto judges = m.MakeJudges(ctx, scheduler.get(), owned);
    if (!judges) return ReportError(judges.error());
    auto options = OptionsOfRun(*run);
    if (!options) return ReportError(options.error());
    options->concurrency = m.concurrency;
    options->progress = ProgressMode::kAuto;
    options->settings = m.Settings();
    options->settings["rescore_of"] = *id;
    if (!f->graders.empty()) options->settings["judge_graders"] = f->graders;
    options->judge_graders = f->graders;
    options->max_judge_error_rate = f->max_judge_error_rate;
    options->cache = m.Cache();
    if (Status s = m.SetPrices(ctx, "replay/stored", *options); !s.ok()) return ReportError(s);
    options->parent_run_id = *id;
    auto summary =
        RunSuite(*suite, **backend, scheduler.get(), **store, *options, Interrupted(), *judges);
    if (!summary) return ReportError(summary.error());
    return ReportRun(ctx, **store, *suite, *summary, f->max_judge_error_rate);
  };
}

}  // namespace plumb::cli
