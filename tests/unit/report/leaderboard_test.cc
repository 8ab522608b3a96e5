// Leaderboards: newest completed run per model, ranks shared where intervals overlap, reference
// rows, every export format (and that CSV and JSON round-trip to the stored numbers).
#include <gtest/gtest.h>

#include <algorithm>

#include "plumb/csv.h"
#include "plumb/report.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

int64_t AddRun(Store& store, const std::string& model, std::optional<double> value,
               const std::string& status, bool higher_is_better = true, int suite_version = 1,
               const std::string& suite = "demo") {
  RunRecord r;
  r.started_at = "2026-01-01T00:00:00Z";
  r.status = "running";
  r.suite_id = suite;
  r.suite_version = suite_version;
  r.primary_metric = "aligned_rate";
  r.higher_is_better = higher_is_better;
  r.model_spec = model;
  r.backend_id = "x@1";
  auto id = store.CreateRun(r, {}, {}, {});
  Metric m;
  m.name = "aligned_rate";
  m.value = value;
  if (value) {
    m.ci_low = *value - 5;
    m.ci_high = *value + 5;
    m.k = static_cast<int64_t>(*value);
  }
  m.n = 100;
  m.ci_method = "wilson";
  Metric e;
  e.name = "error_rate";
  e.value = 1;
  e.n = 100;
  e.k = 1;
  EXPECT_TRUE(store.PutMetrics(*id, {m, e}).ok());
  EXPECT_TRUE(store.FinishRun(*id, status, "").ok());
  return *id;
}

// Value of (suite, model) in the first section with that suite.
const LeaderboardRow* Row(const Leaderboard& b, const std::string& model) {
  for (const auto& s : b.sections) {
    for (const auto& r : s.rows) {
      if (r.model_spec == model) return &r;
    }
  }
  return nullptr;
}

TEST(Leaderboard, NewestCompletedRunPerModelWithSharedRanks) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/a", 40, "completed");
  int64_t a2 = AddRun(*store, "m/a", 60, "completed");  // [55, 65]
  AddRun(*store, "m/a", 99, "failed");                  // never on the board
  int64_t b =
      AddRun(*store, "m/b", 50, "completed");  // [45, 55]: touches a's interval, shares rank 1
  AddRun(*store, "m/c", 30, "completed");      // [25, 35]: both are surely better, rank 3
  AddRun(*store, "builtin/first", 52, "completed");  // a reference row, never ranked
  auto board = BuildLeaderboard(*store, LeaderboardQuery{});
  ASSERT_TRUE(board.has_value()) << board.error().message();
  ASSERT_EQ(board->sections.size(), 1u);
  const auto& rows = board->sections[0].rows;
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].model_spec, "m/a");
  EXPECT_EQ(rows[0].run.id, a2);
  EXPECT_EQ(rows[0].rank, 1);
  EXPECT_EQ(rows[1].model_spec, "builtin/first");
  EXPECT_TRUE(rows[1].reference);
  EXPECT_EQ(rows[1].rank, 0);
  EXPECT_EQ(rows[2].run.id, b);
  EXPECT_EQ(rows[2].rank, 1);
  EXPECT_EQ(rows[3].rank, 3);

  auto md = *FormatLeaderboard(*board, "md");
  EXPECT_NE(md.find("## demo (v1): aligned_rate, higher is better"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | m/a | 60.00 | [55.00, 65.00] | 100 | 1 | - | 2 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| ref | _builtin/first_ | 52.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("share a rank"), std::string::npos);
  auto json = Json::parse(*FormatLeaderboard(*board, "json"));
  EXPECT_EQ(json["suites"][0]["rows"][0]["value"], 60.0);
  EXPECT_EQ(json["suites"][0]["rows"][1]["rank"], nullptr);
  EXPECT_FALSE(FormatLeaderboard(*board, "xml").has_value());
}

TEST(Leaderboard, ExportsRoundTripToTheStoredNumbers) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/a,\"quoted\"", 100.0 / 3, "completed");
  AddRun(*store, "m/b", 2.0 / 7, "completed");
  auto board = BuildLeaderboard(*store, LeaderboardQuery{});
  auto csv = ParseCsv(*FormatLeaderboard(*board, "csv"), "board.csv");
  ASSERT_TRUE(csv.has_value()) << csv.error().message();
  ASSERT_EQ(csv->size(), 3u);
  const auto& header = (*csv)[0].fields;
  auto col = [&](const std::string& name) {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  for (size_t i = 1; i < csv->size(); ++i) {
    const auto& f = (*csv)[i].fields;
    const LeaderboardRow* r = Row(*board, f[col("model")]);
    ASSERT_NE(r, nullptr) << f[col("model")];
    EXPECT_EQ(std::stod(f[col("value")]), *r->metric.value);  // exactly, not to 4 places
    EXPECT_EQ(std::stod(f[col("ci_low")]), *r->metric.ci_low);
    EXPECT_EQ(std::stoll(f[col("n")]), r->metric.n);
    EXPECT_EQ(std::stoll(f[col("run_id")]), r->run.id);
  }
  Json j = Json::parse(*FormatLeaderboard(*board, "json"));
  for (const auto& row : j["suites"][0]["rows"]) {
    const LeaderboardRow* r = Row(*board, row["model"].get<std::string>());
    EXPECT_EQ(row["value"].get<double>(), *r->metric.value);
    EXPECT_EQ(row["ci_high"].get<double>(), *r->metric.ci_high);
  }
}

TEST(Leaderboard, LatexAndHtmlEscape) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/a_b&c<script>", 50, "completed");
  auto board = BuildLeaderboard(*store, LeaderboardQuery{});
  std::string latex = *FormatLeaderboard(*board, "latex");
  EXPECT_NE(latex.find("m/a\\_b\\&c<script>"), std::string::npos) << latex;
  EXPECT_NE(latex.find("\\begin{tabular}"), std::string::npos);
  EXPECT_NE(latex.find("95\\% CI"), std::string::npos);
  std::string html = *FormatLeaderboard(*board, "html");
  size_t scripts = 0;
  for (size_t at = html.find("<script"); at != std::string::npos; at = html.find("<script", at + 1))
    ++scripts;
  EXPECT_EQ(scripts, 1u) << "only plumb's own script";
  EXPECT_NE(html.find("m/a_b&amp;c&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"chart\""), std::string::npos);
}

TEST(Leaderboard, BaselineRowsMetricChoiceAndRunSelection) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  int64_t a1 = AddRun(*store, "m/a", 40, "completed");
  AddRun(*store, "m/a", 60, "completed");
  BaselineSource baselines = [](const RunRecord& run) {
    EXPECT_EQ(run.suite_id, "demo");
    Metric m;
    m.name = "aligned_rate";
    m.value = 25;
    m.ci_low = 20;
    m.ci_high = 30;
    m.n = 100;
    return std::vector<BaselineScores>{{"builtin/random", {m}}};
  };
  auto board = BuildLeaderboard(*store, LeaderboardQuery{}, baselines);
  const LeaderboardRow* random = Row(*board, "builtin/random");
  ASSERT_NE(random, nullptr);
  EXPECT_TRUE(random->reference);
  EXPECT_EQ(random->run.id, 0);
  EXPECT_EQ(board->sections[0].rows.back().model_spec, "builtin/random");

  LeaderboardQuery all;
  all.all_runs = true;
  EXPECT_EQ(BuildLeaderboard(*store, all)->sections[0].rows.size(), 2u);
  LeaderboardQuery chosen;
  chosen.runs = {a1};
  auto one = BuildLeaderboard(*store, chosen);
  ASSERT_EQ(one->sections[0].rows.size(), 1u);
  EXPECT_EQ(one->sections[0].rows[0].metric.value, 40);

  LeaderboardQuery errors;
  errors.metric = "error_rate";
  auto refused = BuildLeaderboard(*store, errors);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("--direction higher|lower"), std::string::npos);
  errors.higher_is_better = false;
  auto by_errors = BuildLeaderboard(*store, errors);
  ASSERT_TRUE(by_errors.has_value()) << by_errors.error().message();
  EXPECT_FALSE(by_errors->sections[0].higher_is_better);
  LeaderboardQuery missing;
  missing.metric = "nope";
  missing.higher_is_better = true;
  EXPECT_EQ(BuildLeaderboard(*store, missing).error().code(), StatusCode::kInvalidArgument);
}

TEST(Leaderboard, LowerIsBetterAndUndefinedRankLast) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/none", std::nullopt, "completed", false);
  AddRun(*store, "m/high", 30, "completed", false);
  AddRun(*store, "m/low", 10, "completed", false);
  LeaderboardQuery q;
  q.suites = {"demo"};
  auto board = BuildLeaderboard(*store, q);
  const auto& rows = board->sections[0].rows;
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].model_spec, "m/low");
  EXPECT_EQ(rows[1].model_spec, "m/high");
  EXPECT_EQ(rows[1].rank, 2);
  EXPECT_EQ(rows[2].model_spec, "m/none");
  EXPECT_EQ(rows[2].rank, 0);
  EXPECT_NE(FormatLeaderboard(*board, "md")->find("aligned_rate, lower is better"),
            std::string::npos);
}

TEST(Leaderboard, SuiteVersionsAreSeparateSectionsAndMarkdownCellsAreEscaped) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/a", 70, "completed", true, 1);
  int64_t a2 = AddRun(*store, "m/a", 40, "completed", true, 2);  // newer run, new items
  int64_t b = AddRun(*store, "m/pipe|model", 50, "completed", true, 1);
  auto board = BuildLeaderboard(*store, LeaderboardQuery{});
  ASSERT_TRUE(board.has_value()) << board.error().message();
  ASSERT_EQ(board->sections.size(), 2u);
  EXPECT_EQ(board->sections[0].suite_version, 2);  // newest version first
  ASSERT_EQ(board->sections[0].rows.size(), 1u);
  EXPECT_EQ(board->sections[0].rows[0].run.id, a2);
  EXPECT_EQ(board->sections[1].suite_version, 1);
  ASSERT_EQ(board->sections[1].rows.size(), 2u);  // m/a keeps its v1 run there
  EXPECT_EQ(board->sections[1].rows[1].run.id, b);
  std::string md = *FormatLeaderboard(*board, "md");
  EXPECT_NE(md.find("## demo (v2)"), std::string::npos) << md;
  EXPECT_NE(md.find("| 2 | m/pipe\\|model | 50.00 |"), std::string::npos) << md;
}

TEST(Leaderboard, OverviewHasARowPerModelAndAColumnPerSuite) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/a", 80, "completed", true, 1, "alpha");  // [75, 85] #1
  AddRun(*store, "m/b", 50, "completed", true, 1, "alpha");  // [45, 55] #2
  AddRun(*store, "m/b", 20, "completed", false, 1, "beta");  // lower is better: #1
  AddRun(*store, "builtin/random", 25, "completed", true, 1, "alpha");
  auto board = BuildLeaderboard(*store, LeaderboardQuery{});
  ASSERT_TRUE(board.has_value()) << board.error().message();
  LeaderboardOverview o = Overview(*board);
  // m/b: mean rank (2 + 1) / 2 = 1.5, m/a: 1; the reference last.
  ASSERT_EQ(o.models, (std::vector<std::string>{"m/a", "m/b", "builtin/random"}));
  EXPECT_EQ(o.reference, (std::vector<bool>{false, false, true}));
  ASSERT_EQ(o.cells[0].size(), 2u);
  EXPECT_EQ(OverviewCell(o.cells[0][0]), "80.00 [75.00, 85.00] #1");
  EXPECT_EQ(OverviewCell(o.cells[0][1]), "-");  // m/a never ran beta
  EXPECT_EQ(OverviewCell(o.cells[1][1]), "20.00 [15.00, 25.00] #1");
  EXPECT_EQ(OverviewCell(o.cells[2][0]), "25.00 [20.00, 30.00]");  // references are not ranked
  std::string md = *FormatLeaderboard(*board, "md");
  EXPECT_EQ(
      md.rfind("## Overview\n\n| model | alpha v1: aligned_rate ↑ | beta v1: aligned_rate ↓ |\n",
               0),
      0u)
      << md;
  EXPECT_NE(md.find("| _builtin/random_ | 25.00 [20.00, 30.00] | - |"), std::string::npos) << md;
  EXPECT_NE(FormatLeaderboard(*board, "latex")->find("\\caption{Overview}"), std::string::npos);
  EXPECT_NE(FormatLeaderboard(*board, "html")->find("id=\"overview-table\""), std::string::npos);

  // Several runs of one model per suite (--all-runs): no overview.
  AddRun(*store, "m/a", 70, "completed", true, 1, "alpha");
  LeaderboardQuery all;
  all.all_runs = true;
  auto every = BuildLeaderboard(*store, all);
  EXPECT_TRUE(Overview(*every).models.empty());
  EXPECT_EQ(FormatLeaderboard(*every, "md")->find("## Overview"), std::string::npos);
  // One suite: no overview either.
  LeaderboardQuery one;
  one.suites = {"alpha"};
  EXPECT_TRUE(Overview(*BuildLeaderboard(*store, one)).models.empty());
}

}  // namespace
}  // namespace plumb
