// The CLI end to end, without network: baselines, show, leaderboard, bad input (exit 2, file:line,
// nothing written), unknown names.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "e2e.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

TEST(Cli, RunsBaselinesShowsAndRanks) {
  TempDir tmp;
  auto r = Plumb(tmp.path(), {"run", "--suite", "pacifaist-style", "--model", "builtin/first",
                              "--model", "builtin/refuse", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("run 1  completed  pacifaist-style@"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("run 2  completed"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/results/plumb.db"));

  auto show = Plumb(tmp.path(), {"show", "latest", "--format", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  Json j = Json::parse(show.out);
  EXPECT_EQ(j["run"]["id"], 2);
  EXPECT_EQ(j["run"]["model"], "builtin/refuse");
  bool refusal = false;
  for (const auto& m : j["metrics"]) {
    if (m["name"] == "refusal_rate" && m["category"] == "") refusal = m["value"] == 100.0;
  }
  EXPECT_TRUE(refusal) << show.out;

  auto board = Plumb(tmp.path(), {"leaderboard", "--format", "csv"});
  ASSERT_EQ(board.exit_code, 0) << board.err;
  EXPECT_NE(board.out.find(",aligned_rate,1,0,1,builtin/refuse,0,0,"), std::string::npos)
      << board.out;
  EXPECT_NE(board.out.find("pacifaist-style,"), std::string::npos);
  EXPECT_NE(board.out.find(",aligned_rate,1,0,1,builtin/first,25.333333333333332,"),
            std::string::npos)
      << board.out;

  auto text = Plumb(tmp.path(), {"show", "1"});
  EXPECT_NE(text.out.find("aligned_rate [EP1]"), std::string::npos) << text.out;

  // The built-in baselines beside every summary, computed once and cached in the database.
  EXPECT_NE(r.out.find("k   random    first     last   refuse"), std::string::npos) << r.out;
  EXPECT_NE(text.out.find("aligned_rate           25.33  [19.05, 32.85]         150      38    "
                          "24.67    25.33    24.67     0.00"),
            std::string::npos)
      << text.out;
  ASSERT_TRUE(j["baselines"].contains("builtin/random")) << show.out;
  for (const auto& m : j["baselines"]["builtin/first"]) {
    if (m["name"] == "aligned_rate" && m["category"] == "") {
      EXPECT_NEAR(m["value"].get<double>(), 25.333, 1e-3);
    }
  }
  SQLite::Database db(tmp.path() + "/results/plumb.db", SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM baselines").getInt(), 7);  // shared by both runs
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM runs").getInt(), 2);       // baselines are not runs
}

TEST(Cli, MalformedManifestExits2AndWritesNothing) {
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "bad", 3, "template: \"{prompt\"\n");
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "builtin/first"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "plumb: error: " + manifest + ":3: field 'template': unclosed '{' at offset 0\n");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/results"));
}

TEST(Cli, MalformedJsonlLineExits2AndWritesNothing) {
  TempDir tmp;
  WriteChoiceSuite(tmp, "bad", 2);
  std::string items = tmp.Write(
      "bad/items.jsonl",
      "{\"id\": \"q0\", \"prompt\": \"P\", \"options\": [\"a\", \"b\"], \"aligned\": \"A\"}\n"
      "{\"id\": \"q1\", \"prompt\": \"P\", \"options\": [\"a\", \"b\"] \"aligned\": \"A\"}\n");
  auto r = Plumb(tmp.path(), {"run", "--suite", "bad", "--suites-dir", tmp.path(), "--model",
                              "builtin/first", "--db", tmp.path() + "/x.db"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("plumb: error: " + items + ":2: invalid JSON: syntax error", 0), 0u)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/x.db"));
}

TEST(Cli, UnknownNamesSuggest) {
  TempDir tmp;
  auto r = Plumb(tmp.path(), {"run", "--suite", "pacifaist-styl", "--model", "builtin/first"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "plumb: error: unknown suite 'pacifaist-styl' (did you mean 'pacifaist-style'?)\n");
  r = Plumb(tmp.path(), {"run", "--suite", "pacifaist-style", "--model", "gpt-4o"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(
      r.err,
      "plumb: error: model spec 'gpt-4o' must look like KIND/MODEL, e.g. openai/gpt-4o-mini or "
      "builtin/random\n");
  r = Plumb(tmp.path(), {"run", "--suite", "pacifaist-style", "--model", "openai/gpt-4o"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "plumb: error: backend 'openai': OPENAI_API_KEY is not set (export it, or name another "
            "variable with --api-key-env)\n");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/results"));
  r = Plumb(tmp.path(), {"run", "--suite", "pacifaist-style"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "plumb: error: plumb run needs --suite and --model (or --retry-errors RUN)\n");
  r = Plumb(tmp.path(), {"show", "latest"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "plumb: error: results database 'results/plumb.db' does not exist (run plumb run "
            "first, or see --db)\n");
}

TEST(Cli, ListsSuitesAndBackends) {
  TempDir tmp;
  auto r = Plumb(tmp.path(), {"list", "suites"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pacifaist-style"), std::string::npos);
  r = Plumb(tmp.path(), {"list", "backends"});
  EXPECT_NE(r.out.find("openai"), std::string::npos);
  EXPECT_NE(r.out.find("builtin"), std::string::npos);
  r = Plumb(tmp.path(), {"list", "graders"});
  EXPECT_NE(r.out.find("refusal"), std::string::npos);
}

TEST(Cli, EpochsAndLimitAreRecorded) {
  TempDir tmp;
  auto r =
      Plumb(tmp.path(), {"run", "--suite", "pacifaist-style", "--model", "builtin/random",
                         "--limit", "10", "--epochs", "3", "--seed", "9", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto run = (*store)->GetRun(1);
  EXPECT_EQ(run->n_samples, 30);
  EXPECT_EQ(run->epochs, 3);
  EXPECT_EQ(*run->limit, 10);
  EXPECT_EQ(run->seed, 9u);
  // Baselines on the same 10 items x 3 epochs; reducers over the epochs for every k.
  Json j = Json::parse(Plumb(tmp.path(), {"show", "1", "--format", "json"}).out);
  for (const auto& m : j["baselines"]["builtin/random"]) {
    if (m["name"] == "aligned_rate" && m["category"] == "") {
      EXPECT_EQ(m["n"], 30);
    }
  }
  std::set<std::string> names;
  for (const auto& m : j["metrics"]) names.insert(m["name"].get<std::string>());
  for (const char* reducer : {"aligned_rate@majority", "aligned_rate@pass@1", "aligned_rate@pass@3",
                              "aligned_rate@pass^3"}) {
    EXPECT_TRUE(names.count(reducer)) << reducer;
  }
  EXPECT_FALSE(names.count("aligned_rate@pass@4"));
}

}  // namespace
}  // namespace plumb::testing
