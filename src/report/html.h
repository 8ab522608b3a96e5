// HTML building blocks of the report, the HTML leaderboard and plumb serve: escaping, a page
// shell with inline CSS and a small inline script (sortable tables, filters), and SVG charts
// drawn by plumb. No network, no external scripts or fonts. Every text that reaches the page
// goes through Escape.
#ifndef PLUMB_REPORT_HTML_H_
#define PLUMB_REPORT_HTML_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plumb/report.h"

namespace plumb::html {

// Escapes &, <, >, " and ' (safe in text and in quoted attributes, of HTML and of XML).
std::string Escape(std::string_view s);

// The Content-Security-Policy of every page: nothing external, inline style, and only plumb's
// own inline script (by hash).
std::string ContentSecurityPolicy();

// A complete page: <!doctype html>, the CSP, the inline style and script, `body`.
std::string Page(const std::string& title, const std::string& body);

struct Bar {
  std::string label;
  std::optional<double> value;
  std::optional<double> low;  // 95% interval (whisker)
  std::optional<double> high;
  bool reference = false;  // drawn grey
};
// A horizontal bar chart with interval whiskers (SVG, class "chart").
std::string BarChart(const std::string& title, const std::vector<Bar>& bars);

// A table of values coloured from worst to best (SVG, class "heatmap"); rows x columns.
std::string HeatMap(const std::string& title, const std::vector<std::string>& rows,
                    const std::vector<std::string>& columns,
                    const std::vector<std::vector<std::optional<double>>>& values,
                    bool higher_is_better);

// A histogram of `values` over [lo, hi] in `bins` bins (SVG, class "histogram").
std::string Histogram(const std::string& title, const std::vector<double>& values, double lo,
                      double hi, int bins);

// Where a leaderboard row's run number links: nowhere (a standalone leaderboard file), to the
// run's drill-down on the same page (the report), or to the run's page (plumb serve).
enum class RunLinks { kNone, kInPage, kServed };

// The id of a leaderboard section's element: "lb-<suite>-v<version>".
std::string SectionId(const LeaderboardSection& s);

// One suite's leaderboard: a sortable table and its bar chart; `with_stability`: the
// consistency and position bias columns too.
std::string SectionHtml(const LeaderboardSection& s, RunLinks links, bool with_stability = false);

// The overview table of a leaderboard with several suites ("" otherwise; see Overview).
std::string OverviewHtml(const Leaderboard& board);

// The leaderboard's sections as sortable tables with their bar charts and the rank footnote.
std::string LeaderboardBody(const Leaderboard& board, RunLinks links);

// LeaderboardBody as a complete page (plumb leaderboard --format html, plumb serve).
std::string LeaderboardPage(const Leaderboard& board, RunLinks links);

}  // namespace plumb::html

#endif  // PLUMB_REPORT_HTML_H_
