// Reading results back: run summaries and leaderboards, as text, Markdown, CSV or JSON.
#ifndef PLUMB_REPORT_H_
#define PLUMB_REPORT_H_

#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/store.h"

namespace plumb {

// One leaderboard row: a model's latest completed run of a suite and its headline metric.
struct LeaderboardRow {
  std::string suite_id;
  int suite_version = 0;
  std::string model_spec;
  RunRecord run;
  Metric metric;            // the suite's primary metric, whole suite
  std::optional<Metric> errors;  // error_rate, when the suite reports one
};

// Rows for every (suite, model) pair with a completed run, newest run each, ordered by suite
// and then best first. `suite_id` "" means all suites.
Result<std::vector<LeaderboardRow>> BuildLeaderboard(const Store& store, const std::string& suite_id);

// Renders rows as "md", "csv" or "json" (kInvalidArgument for another format).
Result<std::string> FormatLeaderboard(const std::vector<LeaderboardRow>& rows, const std::string& format);

// A run and its metrics as "text" or "json", with the built-in baselines' values beside them
// (and `baseline_note` when they could not be had).
Result<std::string> FormatRun(const RunRecord& run, const std::vector<Metric>& metrics,
                              const std::string& format, const std::vector<BaselineScores>& baselines = {},
                              const std::string& baseline_note = "");

// "25.33" for a value, "-" when undefined.
std::string FormatValue(const std::optional<double>& v);
// "[18.90, 32.87]", or "" without an interval.
std::string FormatInterval(const Metric& m);

}  // namespace plumb

#endif  // PLUMB_REPORT_H_
