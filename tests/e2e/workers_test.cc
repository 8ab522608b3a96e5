// Cooperating workers (issue 15): plumb work processes share one run through the results
// database, SQLite or PostgreSQL. Each sample is answered once at the server (a worker killed
// with kill -9 loses nothing but what it had in flight), one worker computes the metrics, and
// they equal a single process's.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/hash.h"
#include "plumb/store.h"
#include "postgres_server.h"

namespace plumb::testing {
namespace {

const std::map<std::string, std::string> kKey = {{"OPENAI_API_KEY", "sk-test"}};

// A deterministic "model" (the answer depends only on the prompt) that takes `delay_ms`.
FakeServer::Handler Deterministic(int delay_ms) {
  return [delay_ms](const FakeRequest& req, int) {
    FakeReply r;
    std::string prompt = LastUserMessage(req.json);
    r.text = std::string("Answer: ") + "ABCD"[DeriveSeed(0, prompt) % 4];
    r.delay_ms = delay_ms;
    return r;
  };
}

// How many times the server was asked each prompt.
std::map<std::string, int> PromptCounts(const FakeServer& server) {
  std::map<std::string, int> out;
  for (const auto& r : server.requests()) ++out[LastUserMessage(r.json)];
  return out;
}

std::vector<Metric> MetricsOf(const std::string& db, int64_t run) {
  auto store = OpenStoreReadOnly(db);
  EXPECT_TRUE(store.has_value()) << store.error().message();
  if (!store) return {};
  auto metrics = (*store)->GetMetrics(run);
  return metrics ? *metrics : std::vector<Metric>();
}

void ExpectSameMetrics(const std::vector<Metric>& got, const std::vector<Metric>& want) {
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].category, want[i].category);
    EXPECT_EQ(got[i].value, want[i].value) << want[i].name;
    EXPECT_EQ(got[i].ci_low, want[i].ci_low) << want[i].name;
    EXPECT_EQ(got[i].n, want[i].n) << want[i].name;
  }
}

// The clean single-process metrics of `manifest` against `server`.
std::vector<Metric> CleanRun(const TempDir& tmp, const std::string& manifest,
                             const FakeServer& server) {
  std::string clean = tmp.path() + "/clean.db";
  auto r = Plumb(tmp.path(),
                 {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                  server.base_url(), "--progress", "none", "--db", clean},
                 kKey);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return MetricsOf(clean, 1);
}

class Workers : public ::testing::TestWithParam<bool> {  // PostgreSQL?
 protected:
  // The database of this engine: a SQLite file, or a new PostgreSQL database.
  std::string Db(const TempDir& tmp) {
    if (!GetParam()) return tmp.path() + "/team.db";
    return pg_->NewDatabase();
  }
  // The worker that computed run 1's metrics.
  std::string Finisher(const std::string& db) {
    if (!GetParam()) {
      SQLite::Database d(db, SQLite::OPEN_READONLY);
      return d.execAndGet("SELECT finisher FROM runs WHERE id = 1").getString();
    }
    std::string out;
    EXPECT_EQ(
        pg_->Exec(db.substr(db.rfind('/') + 1), "SELECT finisher FROM runs WHERE id = 1", &out),
        "");
    return out;
  }
  PostgresServer* pg_ = nullptr;
};

TEST_P(Workers, ThreeWorkersOneKilledAnswerEachSampleOnceWithTheNumbersOfOneProcess) {
  if (GetParam()) {
    PLUMB_POSTGRES_OR_SKIP(server);
    pg_ = server;
  }
  FakeServer server(Deterministic(40));
  TempDir tmp;
  const int n = 300;
  std::string manifest = WriteChoiceSuite(tmp, "crowd", n, "shuffle: true\n");
  std::vector<Metric> expected = CleanRun(tmp, manifest, server);
  const int clean_requests = server.request_count();
  ASSERT_EQ(clean_requests, n);

  std::string db = Db(tmp);
  auto queued = Plumb(tmp.path(),
                      {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                       server.base_url(), "--workers-only", "--db", db},
                      kKey);
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  EXPECT_NE(queued.out.find("run 1 queued: 300 samples for workers"), std::string::npos)
      << queued.out;
  EXPECT_EQ(server.request_count(), clean_requests) << "a queued run sends nothing";
  {
    auto store = std::move(OpenStoreReadOnly(db)).value();
    EXPECT_EQ(store->GetRun(1)->status, "queued");
    EXPECT_EQ(store->CountSamples(1)->planned, n);
  }

  // Each worker: 2 requests at a time. Together about 300 x 40 ms / 6 = 2 s; the third is
  // killed after 1 s.
  auto work = [&](int kill_after_ms) {
    return Plumb(tmp.path(), {"work", "1", "--concurrency", "2", "--db", db}, kKey, kill_after_ms,
                 9);
  };
  Spawned a, b, victim;
  std::thread ta([&] { a = work(0); });
  std::thread tb([&] { b = work(0); });
  std::thread tv([&] { victim = work(1000); });
  ta.join();
  tb.join();
  tv.join();
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(b.exit_code, 0) << b.err;
  ASSERT_EQ(victim.exit_code, 128 + 9)
      << "the third worker finished before it was killed: " << victim.out << victim.err;

  auto store = std::move(OpenStoreReadOnly(db)).value();
  EXPECT_EQ(store->GetRun(1)->status, "completed");
  auto counts = store->CountSamples(1);
  EXPECT_EQ(counts->planned, n);
  EXPECT_EQ(counts->done, n);
  EXPECT_EQ(counts->pending, 0);
  int responses = 0;
  auto samples = store->GetSamples(1);
  for (const auto& s : *samples) responses += static_cast<int>(s.responses.size());
  EXPECT_EQ(responses, n) << "one final response per sample";

  // At the server: every prompt of the run, each once apart from what the killed worker had
  // sent and not yet committed: its requests in flight (at most its concurrency, 2) and the
  // answers in its write queue (a few: the writer commits every few milliseconds). 8 leaves room
  // for a slow commit on a loaded machine.
  std::map<std::string, int> asked = PromptCounts(server);
  int repeated = 0;
  for (const auto& [prompt, times] : asked) {
    EXPECT_GE(times, 2) << "asked by the clean run and the workers: " << prompt;
    repeated += times - 2;
  }
  EXPECT_EQ(static_cast<int>(asked.size()), n);
  EXPECT_LE(repeated, 8);
  EXPECT_EQ(server.request_count(), 2 * n + repeated);

  ExpectSameMetrics(MetricsOf(db, 1), expected);
  std::string finisher = Finisher(db);
  EXPECT_FALSE(finisher.empty()) << "one worker computed the metrics";
  // The worker that did not finish the run says so, or shows the finished run.
  for (const Spawned* w : {&a, &b}) {
    EXPECT_TRUE(w->out.find("run 1  completed") != std::string::npos ||
                w->err.find("goes on in its other workers") != std::string::npos)
        << w->out << w->err;
  }
  // A worker that starts after the end has nothing to do.
  auto late = work(0);
  EXPECT_EQ(late.exit_code, 0) << late.err;
  EXPECT_NE(late.err.find("is completed: nothing to work on"), std::string::npos) << late.err;
}

TEST_P(Workers, AWorkerJoinsAPlumbRunAndTheRunReportsTheWhole) {
  if (GetParam()) {
    PLUMB_POSTGRES_OR_SKIP(server);
    pg_ = server;
  }
  FakeServer server(Deterministic(30));
  TempDir tmp;
  const int n = 200;
  std::string manifest = WriteChoiceSuite(tmp, "joined", n, "shuffle: true\n");
  std::vector<Metric> expected = CleanRun(tmp, manifest, server);
  std::string db = Db(tmp);
  Spawned run, worker;
  std::thread tr([&] {
    run = Plumb(tmp.path(),
                {"run", "--suite", manifest, "--model", "openai/m", "--base-url", server.base_url(),
                 "--concurrency", "2", "--progress", "none", "--db", db},
                kKey);
  });
  // The run alone takes about 200 x 30 ms / 2 = 3 s; the worker joins after 1 s.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  std::thread tw([&] {
    worker = Plumb(tmp.path(), {"work", "1", "--concurrency", "2", "--db", db}, kKey);
  });
  tr.join();
  tw.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(worker.exit_code, 0) << worker.err;
  // The run reports the whole run, whichever process finished it.
  EXPECT_NE(run.out.find("run 1  completed"), std::string::npos) << run.out << run.err;
  for (const auto& [prompt, times] : PromptCounts(server)) EXPECT_EQ(times, 2) << prompt;
  EXPECT_EQ(server.request_count(), 2 * n);
  ExpectSameMetrics(MetricsOf(db, 1), expected);
  auto store = std::move(OpenStoreReadOnly(db)).value();
  EXPECT_EQ(store->CountSamples(1)->done, n);
}

INSTANTIATE_TEST_SUITE_P(Engines, Workers, ::testing::Values(false, true),
                         [](const auto& engine) { return engine.param ? "Postgres" : "Sqlite"; });

TEST(Postgres, TwoConcurrentRunsIntoOneDatabaseLoseNothing) {
  PLUMB_POSTGRES_OR_SKIP(pg);
  FakeServer server(Deterministic(5));
  TempDir tmp;
  std::string one = WriteChoiceSuite(tmp, "one", 150, "shuffle: true\n");
  std::string two = WriteChoiceSuite(tmp, "two", 150, "shuffle: true\n");
  std::string db = pg->NewDatabase();
  Spawned a, b;
  auto run = [&](const std::string& manifest) {
    return Plumb(tmp.path(),
                 {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                  server.base_url(), "--epochs", "2", "--progress", "none", "--db", db},
                 kKey);
  };
  std::thread ta([&] { a = run(one); });
  std::thread tb([&] { b = run(two); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(b.exit_code, 0) << b.err;
  auto store = std::move(OpenStoreReadOnly(db)).value();
  auto listed = store->ListRuns(RunFilter{});
  std::vector<RunRecord> runs = *listed;
  ASSERT_EQ(runs.size(), 2u);
  for (const auto& r : runs) {
    EXPECT_EQ(r.status, "completed");
    auto counts = store->CountSamples(r.id);
    EXPECT_EQ(counts->planned, 300);
    EXPECT_EQ(counts->done, 300);
    int responses = 0;
    auto samples = store->GetSamples(r.id);
    for (const auto& s : *samples) {
      responses += static_cast<int>(s.responses.size());
      EXPECT_FALSE(s.grades.empty());
    }
    EXPECT_EQ(responses, 300);
    EXPECT_FALSE(store->GetMetrics(r.id)->empty());
  }
  EXPECT_EQ(server.request_count(), 600);
}

}  // namespace
}  // namespace plumb::testing
