// Reading results back: run summaries, leaderboards (Markdown, CSV, JSON, LaTeX, HTML), the HTML
// report and plumb serve.
#ifndef PLUMB_REPORT_H_
#define PLUMB_REPORT_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/store.h"

namespace plumb {

// What a leaderboard shows.
struct LeaderboardQuery {
  std::vector<std::string> suites;       // empty: every suite with a completed run
  std::string metric;                    // "" = each suite's primary metric
  std::optional<bool> higher_is_better;  // required for a metric other than the primary one
  bool all_runs = false;                 // every completed run is a row (default: newest per model)
  std::vector<int64_t> runs;             // only these runs (chosen runs instead of the newest)
  // Stability columns: consistency across a perturbation grid's variants and position bias.
  bool with_stability = false;
};

// One row: a model's run of a suite and the ranked metric.
struct LeaderboardRow {
  std::string model_spec;
  RunRecord run;                       // id 0 for a built-in baseline from the cache
  Metric metric;                       // the ranked metric, whole suite
  std::optional<Metric> errors;        // error_rate
  std::optional<Metric> judge_errors;  // the highest <grader>.judge_error_rate
  bool reference = false;              // a built-in baseline: shown, never ranked
  int rank = 0;                        // shared when intervals overlap; 0 for references
  std::vector<Metric> categories;      // the ranked metric per category
  std::optional<Metric> consistency;   // perturbation grids (docs/statistics.md "Stability")
  std::optional<Metric> position_bias;
};

struct LeaderboardSection {
  std::string suite_id;
  int suite_version = 0;
  std::string metric;
  bool higher_is_better = true;
  std::vector<LeaderboardRow> rows;  // best first; references among them by value
};

struct Leaderboard {
  std::vector<LeaderboardSection> sections;  // by suite id
  std::string generated_at;
  std::vector<std::string> notes;
  bool with_stability = false;  // LeaderboardQuery::with_stability
};

// The built-in baselines' metrics for the configuration of `run` (empty when unavailable).
using BaselineSource = std::function<std::vector<BaselineScores>(const RunRecord& run)>;

// Rank = 1 + the number of ranked rows whose 95% interval lies entirely on the better side of
// this row's interval; rows whose intervals overlap share a rank.
inline constexpr const char* kRankFootnote =
    "Rank = 1 + the number of models whose 95% interval lies entirely above this model's (below, "
    "when lower is better), so models whose intervals overlap share a rank. Reference rows are the "
    "built-in baselines (chance and constant answers) on the same items; they are not ranked.";

// Reads the leaderboard from the metrics table (no per-sample scan). Rows of builtin/* models are
// references; `baselines` adds the built-in baselines that were not run as models.
Result<Leaderboard> BuildLeaderboard(const Store& store, const LeaderboardQuery& query,
                                     const BaselineSource& baselines = nullptr);

// The leaderboard as one table: a row per model, a column per section (suite version), each
// cell that model's row there (nullptr where it has none). Ranked models first, by their mean
// rank over the sections they appear in (then name); references last. Empty when there is only
// one section or a model has several rows in one section (--all-runs).
struct LeaderboardOverview {
  std::vector<std::string> models;
  std::vector<bool> reference;
  std::vector<std::vector<const LeaderboardRow*>> cells;  // [model][section]
};
LeaderboardOverview Overview(const Leaderboard& board);

// "81.33 [74.36, 86.76] #1" (no rank for references and undefined values; "-" for no row).
std::string OverviewCell(const LeaderboardRow* row);

// Renders as "md", "csv", "json", "latex" or "html" (a self-contained page). md, latex and html
// start with the overview table when there is one.
Result<std::string> FormatLeaderboard(const Leaderboard& board, const std::string& format);

// What plumb report renders.
struct ReportOptions {
  std::vector<int64_t> runs;  // these runs; empty: the leaderboard's (newest per model and suite)
  int max_items = 1000;       // drill-down samples per run
  BaselineSource baselines;   // reference rows
  std::string source;         // the database, named in the header
  // false: each run's items are a link to /runs/ID (plumb serve's index page) instead of inline
  // tables, so the page stays fast on a large database.
  bool items_inline = true;
};

// One self-contained HTML page (no network, no external scripts or fonts): leaderboard tables
// (sortable), bar charts with interval whiskers, per-category heat maps, judge-score
// distributions and each run's items (prompt, reply, parsed answer, judgments with reasons).
// Every model output is escaped.
Result<std::string> RenderReport(const Store& store, const ReportOptions& options);

// plumb serve: the report, the leaderboard and a JSON API, live and read-only (docs/serve.md).
struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  int max_items = 1000;
  BaselineSource baselines;
  std::string source;
};

// Serves until `stop` becomes true; `on_listening` is called with the port once it listens.
// kUnavailable when the port cannot be bound.
Status Serve(const Store& store, const ServeOptions& options, const std::atomic<bool>& stop,
             const std::function<void(int port)>& on_listening);

// A run's record as JSON (what `plumb show --format json` prints under "run"; no secrets).
Json RunToJson(const RunRecord& run);

// A run and its metrics as "text" or "json", with the built-in baselines' values beside them
// (and `baseline_note` when they could not be had).
Result<std::string> FormatRun(const RunRecord& run, const std::vector<Metric>& metrics,
                              const std::string& format,
                              const std::vector<BaselineScores>& baselines = {},
                              const std::string& baseline_note = "");

// "25.33" for a value, "-" when undefined.
std::string FormatValue(const std::optional<double>& v);
// "[18.90, 32.87]", or "" without an interval.
std::string FormatInterval(const Metric& m);
// A leaderboard's stability cell: "93.33 [84.10, 97.40]", "-" when the run has no such metric.
std::string StabilityText(const std::optional<Metric>& m);

}  // namespace plumb

#endif  // PLUMB_REPORT_H_
