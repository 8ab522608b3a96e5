// plumb leaderboard, plumb report and plumb serve: reading results back for people.
#include "plumb/report.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "cli/commands.h"
#include "plumb/store.h"

namespace plumb::cli {
namespace {

// The built-in baselines of a run's configuration, from the database's cache or computed in
// memory (read-only: never written back), remembered per run for this process; the suite is
// loaded once per id; none when it cannot be loaded any more. Safe to call from several threads
// (plumb serve answers requests concurrently).
BaselineSource BaselineSourceFor(const Context& ctx, Store& store) {
  struct Memo {
    std::mutex mu;
    std::map<std::string, std::optional<Suite>> suites;
    std::map<int64_t, std::vector<BaselineScores>> runs;
  };
  auto memo = std::make_shared<Memo>();
  return [&ctx, &store, memo](const RunRecord& run) {
    std::lock_guard<std::mutex> lock(memo->mu);
    if (auto known = memo->runs.find(run.id); known != memo->runs.end()) return known->second;
    auto [it, added] = memo->suites.emplace(run.suite_id, std::nullopt);
    if (added) {
      if (auto s = ctx.LoadSuiteOfRun(run)) it->second = std::move(*s);
    }
    std::vector<BaselineScores> scores;
    if (it->second) scores = BaselinesOf(ctx, store, *it->second, run, /*write_cache=*/false).first;
    memo->runs[run.id] = scores;
    return scores;
  };
}

// Run references (ids, latest, tags) to ids.
Result<std::vector<int64_t>> ResolveRuns(const Context& ctx, const Store& store,
                                         const std::vector<std::string>& refs) {
  std::vector<int64_t> ids;
  for (const auto& ref : refs) {
    PLUMB_ASSIGN_OR_RETURN(int64_t id, ResolveRunId(ctx, store, ref));
    PLUMB_RETURN_IF_ERROR(store.GetRun(id).status());
    ids.push_back(id);
  }
  return ids;
}

}  // namespace

Action SetupLeaderboard(CLI::App& app, Context& ctx) {
  struct Flags {
    std::vector<std::string> suites, runs;
    bool all = false, all_runs = false, latest = false, no_baselines = false;
    bool with_stability = false;
    std::string metric, direction, format = "md", out;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--suite", f->suites, "Only these suites (repeatable)");
  app.add_flag("--all", f->all, "Every suite (the default)");
  app.add_option("--metric", f->metric,
                 "Rank by this metric instead of each suite's primary metric");
  app.add_option("--direction", f->direction,
                 "Which way --metric is better (needed unless it is the primary metric)")
      ->check(CLI::IsMember({"higher", "lower"}));
  app.add_flag("--latest-per-model", f->latest,
               "One row per model: its newest completed run (the default)");
  app.add_flag("--all-runs", f->all_runs, "Every completed run is a row");
  app.add_option("--run", f->runs, "Only these runs (ids, 'latest' or tags; repeatable)");
  app.add_flag("--no-baselines", f->no_baselines,
               "Leave out the built-in baselines' reference rows");
  app.add_flag("--with-stability", f->with_stability,
               "Add consistency (across a perturbation grid) and position bias columns");
  app.add_option("--format", f->format, "Output format")
      ->check(CLI::IsMember({"md", "csv", "json", "latex", "html"}));
  app.add_option("--out", f->out, "Write to FILE instead of standard output");
  return [f, &ctx]() {
    if (f->all && !f->suites.empty())
      return ReportError(InvalidArgument("--all and --suite exclude each other"));
    if (f->all_runs && (f->latest || !f->runs.empty())) {
      return ReportError(InvalidArgument("--all-runs excludes --latest-per-model and --run"));
    }
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    LeaderboardQuery q;
    q.suites = f->suites;
    q.metric = f->metric;
    if (!f->direction.empty()) q.higher_is_better = f->direction == "higher";
    q.all_runs = f->all_runs;
    q.with_stability = f->with_stability;
    auto runs = ResolveRuns(ctx, **store, f->runs);
    if (!runs) return ReportError(runs.error());
    q.runs = *runs;
    auto board =
        BuildLeaderboard(**store, q, f->no_baselines ? nullptr : BaselineSourceFor(ctx, **store));
    if (!board) return ReportError(board.error());
    auto text = FormatLeaderboard(*board, f->format);
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

Action SetupReport(CLI::App& app, Context& ctx) {
  struct Flags {
    std::vector<std::string> runs;
    bool all = false;
    std::string out = "results/report.html";
    int max_items = 1000;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("run", f->runs, "Runs to report (ids, 'latest' or tags); default: --all");
  app.add_flag("--all", f->all, "The newest run of every model on every suite");
  app.add_option("--out", f->out, "The HTML file to write")->capture_default_str();
  app.add_option("--max-items", f->max_items, "Samples per run in the item drill-down")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  return [f, &ctx]() {
    if (f->all && !f->runs.empty())
      return ReportError(InvalidArgument("give runs or --all, not both"));
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    ReportOptions options;
    auto runs = ResolveRuns(ctx, **store, f->runs);
    if (!runs) return ReportError(runs.error());
    options.runs = *runs;
    options.max_items = f->max_items;
    options.baselines = BaselineSourceFor(ctx, **store);
    options.source = StoreDisplayName(ctx.db_path);
    auto page = RenderReport(**store, options);
    if (!page) return ReportError(page.error());
    if (Status s = WriteOutputFile(f->out, *page); !s.ok()) return ReportError(s);
    std::printf("wrote %s (%zu bytes)\n", f->out.c_str(), page->size());
    return kExitOk;
  };
}

Action SetupServe(CLI::App& app, Context& ctx) {
  struct Flags {
    int port = 8080;
    std::string host = "127.0.0.1";
    int max_items = 1000;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--port", f->port, "Port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--host", f->host, "Address to listen on (the default serves this machine only)")
      ->capture_default_str();
  app.add_option("--max-items", f->max_items, "Samples per run in the item drill-down")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  return [f, &ctx]() {
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    ServeOptions options;
    options.host = f->host;
    options.port = f->port;
    options.max_items = f->max_items;
    options.baselines = BaselineSourceFor(ctx, **store);
    options.source = StoreDisplayName(ctx.db_path);
    Status s = Serve(**store, options, Interrupted(), [&](int port) {
      std::printf("plumb serve: http://%s:%d/ (read-only, %s; Ctrl-C stops)\n", f->host.c_str(),
                  port, StoreDisplayName(ctx.db_path).c_str());
      std::fflush(stdout);
    });
    if (!s.ok()) return ReportError(s);
    return kExitOk;
  };
}

}  // namespace plumb::cli
