// The CLI on a PostgreSQL results database (--db postgresql://...): the same commands give the
// same numbers as on SQLite; a killed run resumes; the password never shows.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include <filesystem>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/hash.h"
#include "plumb/store.h"
#include "postgres_server.h"

namespace plumb::testing {
namespace {

// `text` with its times (ISO 8601, as runs and tags record them) replaced: they differ from run
// to run.
std::string WithoutTimes(const std::string& text) {
  static const RE2 kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
  std::string out = text;
  RE2::GlobalReplace(&out, kTime, "TIME");
  return out;
}

// What one engine's commands print, with what differs from run to run (times) left out.
struct Outputs {
  Json show1, show2, show_tag;
  std::string board, compare, tagged, tags;
};

Json ShowJson(const std::string& cwd, const std::string& db, const std::string& run) {
  auto r = Plumb(cwd, {"show", run, "--format", "json", "--db", db});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Json j = Json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  if (!j.is_object() || !j.contains("run")) return Json();
  j["run"].erase("started_at");
  j["run"].erase("finished_at");
  return j;
}

Outputs RunCommands(const TempDir& tmp, const std::string& manifest, const std::string& db) {
  Outputs o;
  auto run = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "builtin/random", "--model",
                                "builtin/first", "--seed", "7", "--epochs", "2", "--progress",
                                "none", "--db", db});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("run 2  completed"), std::string::npos) << run.out;
  o.show1 = ShowJson(tmp.path(), db, "1");
  o.show2 = ShowJson(tmp.path(), db, "latest");
  auto board = Plumb(tmp.path(), {"leaderboard", "--format", "csv", "--db", db});
  EXPECT_EQ(board.exit_code, 0) << board.err;
  o.board = WithoutTimes(board.out);
  auto tag = Plumb(tmp.path(), {"tag", "1", "production", "--db", db});
  EXPECT_EQ(tag.exit_code, 0) << tag.err;
  o.tagged = tag.out;
  auto tags = Plumb(tmp.path(), {"tag", "--list", "--db", db});
  EXPECT_EQ(tags.exit_code, 0) << tags.err;
  o.tags = WithoutTimes(tags.out);
  o.show_tag = ShowJson(tmp.path(), db, "production");
  auto compare = Plumb(tmp.path(), {"compare", "production", "2", "--format", "json", "--db", db});
  EXPECT_EQ(compare.exit_code, 0) << compare.err;
  o.compare = WithoutTimes(compare.out);
  return o;
}

TEST(Postgres, CommandsGiveTheNumbersTheyGiveOnSqlite) {
  PLUMB_POSTGRES_OR_SKIP(server);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "pg-choice", 40, "shuffle: true\n");
  Outputs sqlite = RunCommands(tmp, manifest, tmp.path() + "/results.db");
  Outputs pg = RunCommands(tmp, manifest, server->NewDatabase());
  EXPECT_EQ(pg.show1, sqlite.show1);
  EXPECT_EQ(pg.show2, sqlite.show2);
  EXPECT_EQ(pg.show_tag, sqlite.show1);
  EXPECT_EQ(pg.board, sqlite.board);
  EXPECT_EQ(pg.tagged, sqlite.tagged);
  EXPECT_EQ(pg.tags, sqlite.tags);
  EXPECT_EQ(pg.compare, sqlite.compare);
  ASSERT_TRUE(pg.show1.contains("metrics")) << pg.show1.dump();
  EXPECT_FALSE(pg.show1["metrics"].empty());
  EXPECT_FALSE(pg.show1["baselines"].empty());
  EXPECT_NE(pg.board.find("builtin/first"), std::string::npos) << pg.board;
  EXPECT_NE(pg.tags.find("production"), std::string::npos) << pg.tags;
  EXPECT_NE(pg.compare.find("aligned_rate"), std::string::npos) << pg.compare;
  EXPECT_EQ(pg.show1["run"]["model"], "builtin/random");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/postgresql:"))
      << "a URL is never a SQLite file";
}

// A deterministic "model": the answer depends only on the prompt.
FakeReply DeterministicReply(const FakeRequest& req) {
  FakeReply r;
  std::string prompt = LastUserMessage(req.json);
  r.text = std::string("Answer: ") + "ABCD"[DeriveSeed(0, prompt) % 4];
  r.delay_ms = 10;
  return r;
}

TEST(Postgres, AKilledRunResumesToTheNumbersOfACleanRun) {
  PLUMB_POSTGRES_OR_SKIP(server);
  FakeServer fake([](const FakeRequest& req, int) { return DeterministicReply(req); });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "crash", 200, "shuffle: true\n");
  auto args = [&](const std::string& db) {
    return std::vector<std::string>{PLUMB_BINARY,    "run",      "--suite",    manifest,
                                    "--model",       "openai/m", "--base-url", fake.base_url(),
                                    "--concurrency", "2",        "--progress", "none",
                                    "--db",          db};
  };
  std::string clean = tmp.path() + "/clean.db";
  ASSERT_EQ(Spawn(args(clean), {{"OPENAI_API_KEY", "sk-test"}}, tmp.path()).exit_code, 0);
  auto clean_store = OpenStoreReadOnly(clean);
  ASSERT_TRUE(clean_store.has_value());
  std::vector<Metric> expected = *(*clean_store)->GetMetrics(1);

  std::string db;
  bool started = false;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    db = server->NewDatabase();
    auto killed =
        Spawn(args(db), {{"OPENAI_API_KEY", "sk-test"}}, tmp.path(), 400 + 300 * attempt, 9);
    ASSERT_EQ(killed.exit_code, 128 + 9) << "the run finished before it could be killed";
    auto store = OpenStoreReadOnly(db);
    started = store && (*store)->GetRun(1) && (*store)->CountSamples(1)->done > 0;
  }
  ASSERT_TRUE(started) << "the first session never got as far as answering";
  {
    auto store = std::move(OpenStoreReadOnly(db)).value();
    EXPECT_EQ(store->GetRun(1)->status, "interrupted") << "its owner is dead";
    EXPECT_GT(store->CountSamples(1)->pending, 0);
  }
  auto resumed = Spawn({PLUMB_BINARY, "resume", "latest", "--db", db, "--progress", "none"},
                       {{"OPENAI_API_KEY", "sk-test"}}, tmp.path());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto store = std::move(OpenStoreReadOnly(db)).value();
  EXPECT_EQ(store->GetRun(1)->status, "completed");
  auto counts = store->CountSamples(1);
  EXPECT_EQ(counts->done, 200);
  EXPECT_EQ(counts->planned, 200);
  auto metrics = store->GetMetrics(1);
  ASSERT_EQ(metrics->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*metrics)[i].name, expected[i].name);
    EXPECT_EQ((*metrics)[i].category, expected[i].category);
    EXPECT_EQ((*metrics)[i].value, expected[i].value) << expected[i].name;
    EXPECT_EQ((*metrics)[i].n, expected[i].n);
  }
  auto again = Spawn({PLUMB_BINARY, "resume", "latest", "--db", db}, {}, tmp.path());
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("is completed: nothing to resume"), std::string::npos) << again.err;
}

TEST(Postgres, ThePasswordNeverShows) {
  PLUMB_POSTGRES_OR_SKIP(server);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "pw", 5);
  const std::string password = PostgresServer::kPassword;
  std::string name = server->NewDatabaseName(PostgresServer::kPasswordUser);
  std::string url = server->UrlFor(name, PostgresServer::kPasswordUser, password);
  std::map<std::string, std::string> env = {{"PGPASSFILE", "/nonexistent"}};
  std::string everything;
  for (std::vector<std::string> args :
       {std::vector<std::string>{"run", "--suite", manifest, "--model", "builtin/first",
                                 "--progress", "none"},
        {"show", "latest", "--format", "json"},
        {"leaderboard"},
        {"report", "--all", "--out", tmp.path() + "/report.html"},
        {"show", "7"}}) {
    args.push_back("--db");
    args.push_back(url);
    auto r = Plumb(tmp.path(), args, env);
    everything += r.out + r.err;
    if (args[0] != "show" || args[1] != "7") {
      EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    }
  }
  everything += ReadFile(tmp.path() + "/report.html");
  EXPECT_NE(everything.find("builtin/first"), std::string::npos) << everything;
  EXPECT_NE(everything.find("run 7 not found in 'postgresql://plumb_pw@127.0.0.1:"),
            std::string::npos)
      << everything;
  EXPECT_EQ(everything.find(password), std::string::npos) << everything;
  std::string dump;
  ASSERT_EQ(server->Exec(name,
                         "SELECT (SELECT string_agg(r::text, '') FROM runs r) || "
                         "(SELECT string_agg(s::text, '') FROM responses s)",
                         &dump),
            "");
  EXPECT_FALSE(dump.empty());
  EXPECT_EQ(dump.find(password), std::string::npos) << dump;

  auto wrong = Plumb(tmp.path(),
                     {"show", "latest", "--db",
                      server->UrlFor(name, PostgresServer::kPasswordUser, "wrong-pw-1234")},
                     env);
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("password authentication failed"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("wrong-pw-1234"), std::string::npos) << wrong.err;
  auto from_env = Plumb(
      tmp.path(), {"show", "latest", "--db", server->UrlFor(name, PostgresServer::kPasswordUser)},
      {{"PGPASSFILE", "/nonexistent"}, {"PGPASSWORD", password}});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
}

// plumb db copy: SQLite -> PostgreSQL -> SQLite gives the same show output (times included),
// tags follow their runs, and copying again adds nothing.
TEST(Postgres, DbCopyRoundTripIsExactAndIdempotent) {
  PLUMB_POSTGRES_OR_SKIP(server);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "cp", 12);
  std::string first = tmp.path() + "/first.db", back = tmp.path() + "/back.db";
  auto run = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "builtin/random",
                                "--model", "builtin/first", "--epochs", "2", "--progress", "none",
                                "--db", first});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(Plumb(tmp.path(), {"tag", "2", "production", "--db", first}).exit_code, 0);
  std::string pg = server->NewDatabase();
  auto to_pg = Plumb(tmp.path(), {"db", "copy", "--from", first, "--to", pg});
  ASSERT_EQ(to_pg.exit_code, 0) << to_pg.err;
  EXPECT_NE(to_pg.out.find("2 runs copied, 0 skipped"), std::string::npos) << to_pg.out;
  auto again = Plumb(tmp.path(), {"db", "copy", "--from", first, "--to", pg});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("0 runs copied, 2 skipped"), std::string::npos) << again.out;
  auto to_back = Plumb(tmp.path(), {"db", "copy", "--from", pg, "--to", back});
  ASSERT_EQ(to_back.exit_code, 0) << to_back.err;
  for (const char* ref : {"1", "2", "production"}) {
    std::string a = Plumb(tmp.path(), {"show", ref, "--format", "json", "--db", first}).out;
    std::string b = Plumb(tmp.path(), {"show", ref, "--format", "json", "--db", pg}).out;
    std::string c = Plumb(tmp.path(), {"show", ref, "--format", "json", "--db", back}).out;
    ASSERT_FALSE(a.empty()) << ref;
    EXPECT_EQ(a, b) << ref;
    EXPECT_EQ(a, c) << ref;
  }
  auto store = OpenSqliteStoreReadOnly(back);
  auto one = (*store)->GetSamples(1);
  auto src = OpenSqliteStoreReadOnly(first);
  auto orig = (*src)->GetSamples(1);
  ASSERT_EQ(one->size(), orig->size());
  for (size_t i = 0; i < one->size(); ++i) {
    EXPECT_EQ((*one)[i].responses.size(), (*orig)[i].responses.size());
    EXPECT_EQ(DumpJson((*one)[i].presentation), DumpJson((*orig)[i].presentation));
    ASSERT_EQ((*one)[i].grades.size(), (*orig)[i].grades.size());
    if (!(*one)[i].grades.empty()) {
      EXPECT_EQ((*one)[i].grades[0].label, (*orig)[i].grades[0].label);
    }
  }
  EXPECT_EQ((*store)->GetRun(1)->uuid, (*src)->GetRun(1)->uuid);
  EXPECT_EQ((*store)->GetRun(1)->uuid.size(), 32u);
}

}  // namespace
}  // namespace plumb::testing
