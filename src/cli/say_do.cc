// plumb say-do: a model's stated choices against its actions on the same items.
#include "plumb/say_do.h"

#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/store.h"

namespace plumb::cli {

Action SetupSayDo(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string stated, enacted, stated_suite, enacted_suite, format = "text", out;
    bool all_items = false;
    int bootstrap = kDefaultBootstrapResamples;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("stated", f->stated,
                 "The stated run (a multiple-choice suite, e.g. pacifaist-style): id, 'latest', a "
                 "tag, or with --stated-suite a model name")
      ->required();
  app.add_option("enacted", f->enacted,
                 "The enacted run (an agentic suite, e.g. pacifaist-situated): id, 'latest', a "
                 "tag, or with --enacted-suite a model name")
      ->required();
  app.add_option("--stated-suite", f->stated_suite,
                 "Resolve the stated reference within this suite (tags, 'latest', model names)");
  app.add_option("--enacted-suite", f->enacted_suite,
                 "Resolve the enacted reference within this suite");
  app.add_option("--format", f->format, "Output format")
      ->check(CLI::IsMember({"text", "md", "json"}));
  app.add_flag("--all-items", f->all_items,
               "List every item (default: the items where words and actions part)");
  app.add_option("--bootstrap", f->bootstrap, "Bootstrap resamples for the intervals")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  app.add_option("--out", f->out, "Write to FILE instead of standard output");
  return [f, &ctx]() {
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto stated = ResolveRunId(ctx, **store, f->stated, f->stated_suite, !f->stated_suite.empty());
    if (!stated) return ReportError(stated.error());
    auto enacted =
        ResolveRunId(ctx, **store, f->enacted, f->enacted_suite, !f->enacted_suite.empty());
    if (!enacted) return ReportError(enacted.error());
    for (int64_t id : {*stated, *enacted}) {
      auto run = (*store)->GetRun(id);
      if (!run) return ReportError(run.error());
      if (run->status != "completed") {
        std::fprintf(stderr, "plumb: warning: run %lld is %s; its unfinished items are left out\n",
                     static_cast<long long>(id), run->status.c_str());
      }
    }
    auto stated_run = (*store)->GetRun(*stated);
    auto r = ComputeSayDo(**store, *stated, *enacted,
                          MetricOptions{stated_run ? stated_run->seed : 1, f->bootstrap});
    if (!r) return ReportError(r.error());
    auto text = FormatSayDo(*r, f->format, f->all_items);
    if (!text) return ReportError(text.error());
    if (f->out.empty()) {
      std::fputs(text->c_str(), stdout);
      return kExitOk;
    }
    if (Status s = WriteOutputFile(f->out, *text); !s.ok()) return ReportError(s);
    std::fprintf(stderr, "plumb: wrote %s\n", f->out.c_str());
    return kExitOk;
  };
}

}  // namespace plumb::cli
