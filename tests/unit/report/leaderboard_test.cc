// Leaderboards: latest completed run per model, best first, in md/csv/json.
#include "plumb/report.h"

#include <gtest/gtest.h>

#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

int64_t AddRun(Store& store, const std::string& model, std::optional<double> value,
               const std::string& status, bool higher_is_better = true) {
  RunRecord r;
  r.started_at = "2026-01-01T00:00:00Z";
  r.status = "running";
  r.suite_id = "demo";
  r.suite_version = 1;
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

TEST(Leaderboard, LatestCompletedRunPerModelBestFirst) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/a", 40, "completed");
  int64_t a2 = AddRun(*store, "m/a", 60, "completed");
  AddRun(*store, "m/a", 99, "failed");  // never on the board
  int64_t b = AddRun(*store, "m/b", 50, "completed");
  auto rows = BuildLeaderboard(*store, "");
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].model_spec, "m/a");
  EXPECT_EQ((*rows)[0].run.id, a2);
  EXPECT_EQ((*rows)[1].run.id, b);

  auto md = FormatLeaderboard(*rows, "md");
  EXPECT_NE(md->find("| 1 | m/a | 60.00 | [55.00, 65.00] | 100 | 1 | 2 |"), std::string::npos) << *md;
  auto csv = FormatLeaderboard(*rows, "csv");
  EXPECT_EQ(csv->substr(0, csv->find('\n')),
            "suite,suite_version,model,metric,value,ci_low,ci_high,n,errors,run_id,finished_at");
  EXPECT_NE(csv->find("demo,1,m/b,aligned_rate,50.0000,45.0000,55.0000,100,1,4,"), std::string::npos) << *csv;
  auto json = Json::parse(*FormatLeaderboard(*rows, "json"));
  EXPECT_EQ(json[0]["value"], 60.0);
  EXPECT_EQ(json[1]["model"], "m/b");
  EXPECT_FALSE(FormatLeaderboard(*rows, "xml").has_value());
}

TEST(Leaderboard, LowerIsBetterAndUndefinedRankLast) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  AddRun(*store, "m/none", std::nullopt, "completed", false);
  AddRun(*store, "m/high", 30, "completed", false);
  AddRun(*store, "m/low", 10, "completed", false);
  auto rows = BuildLeaderboard(*store, "demo");
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].model_spec, "m/low");
  EXPECT_EQ((*rows)[1].model_spec, "m/high");
  EXPECT_EQ((*rows)[2].model_spec, "m/none");
  EXPECT_NE(FormatLeaderboard(*rows, "md")->find("aligned_rate, lower is better"), std::string::npos);
}

}  // namespace
}  // namespace plumb
