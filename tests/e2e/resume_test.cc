// Crash-safe resume: plumb is killed (SIGKILL, Ctrl-C, SIGTERM) at several points of a run against
// the loopback server and resumed; the final numbers equal a clean run's and nothing is duplicated.
// --retry-errors re-sends only the samples that ended in an error.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <random>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/hash.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

// A deterministic "model": the answer depends only on the prompt.
FakeReply DeterministicReply(const FakeRequest& req) {
  FakeReply r;
  std::string prompt = LastUserMessage(req.json);
  r.text = std::string("Answer: ") + "ABCD"[DeriveSeed(0, prompt) % 4];
  r.delay_ms = 5;
  return r;
}

std::vector<Metric> MetricsOf(const std::string& db, int64_t run) {
  auto store = OpenSqliteStoreReadOnly(db);
  EXPECT_TRUE(store.has_value());
  return *(*store)->GetMetrics(run);
}

TEST(Resume, KilledRunsResumeToTheNumbersOfACleanRun) {
  FakeServer server([](const FakeRequest& req, int) { return DeterministicReply(req); });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "crash", 240, "shuffle: true\n");
  std::vector<std::string> base = {
      "run",        "--suite",         manifest,        "--model", "openai/m",
      "--base-url", server.base_url(), "--concurrency", "4",       "--progress",
      "none"};
  auto with_db = [](std::vector<std::string> args, const std::string& db) {
    args.push_back("--db");
    args.push_back(db);
    return args;
  };
  std::string clean_db = tmp.path() + "/clean.db";
  ASSERT_EQ(Plumb(tmp.path(), with_db(base, clean_db)).exit_code, 0);
  std::vector<Metric> clean = MetricsOf(clean_db, 1);

  std::mt19937 rng(20261126);
  for (int trial = 0; trial < 3; ++trial) {
    std::string db = tmp.path() + "/killed-" + std::to_string(trial) + ".db";
    // Kill the first session and two resumes at random points, then let a resume finish. On a
    // loaded machine the first kill can come before the run exists; then start again, later.
    bool started = false;
    for (int attempt = 0; attempt < 5 && !started; ++attempt) {
      std::filesystem::remove(db);
      auto first = Spawn(
          [&] {
            auto args = with_db(base, db);
            args.insert(args.begin(), PLUMB_BINARY);
            return args;
          }(),
          {}, tmp.path(), 80 + static_cast<int>(rng() % 150) + 200 * attempt, 9);
      ASSERT_EQ(first.exit_code, 128 + 9) << "the run finished before it could be killed";
      auto store = OpenSqliteStoreReadOnly(db);
      started = store && (*store)->GetRun(1);
    }
    ASSERT_TRUE(started) << "the first session never got as far as creating the run";
    // Resume, killing the resume too at random points, until the run is complete.
    bool complete = false;
    for (int k = 0; k < 6 && !complete; ++k) {
      int kill_ms = k < 2 ? 60 + static_cast<int>(rng() % 120) : 0;
      auto resumed = Spawn({PLUMB_BINARY, "resume", "latest", "--db", db, "--progress", "none"}, {},
                           tmp.path(), kill_ms, 9);
      if (resumed.exit_code == 2) {
        EXPECT_NE(resumed.err.find("is completed: nothing to resume"), std::string::npos)
            << resumed.err;
        complete = true;
      } else {
        ASSERT_TRUE(resumed.exit_code == 128 + 9 || resumed.exit_code == 0) << resumed.err;
        complete = resumed.exit_code == 0;
      }
    }
    ASSERT_TRUE(complete);
    auto store = OpenSqliteStoreReadOnly(db);
    ASSERT_TRUE(store) << store.error().message();
    auto run = (*store)->GetRun(1);
    ASSERT_TRUE(run) << run.error().message();
    EXPECT_EQ(run->status, "completed");
    auto samples = (*store)->GetSamples(1);
    ASSERT_EQ(samples->size(), 240u);
    for (const auto& s : *samples) {
      EXPECT_EQ(s.status, "done") << s.item_id;
      EXPECT_EQ(s.responses.size(), 1u) << s.item_id;  // the key makes a duplicate impossible
    }
    std::vector<Metric> resumed = MetricsOf(db, 1);
    ASSERT_EQ(resumed.size(), clean.size());
    for (size_t i = 0; i < clean.size(); ++i) {
      EXPECT_EQ(resumed[i].name, clean[i].name);
      EXPECT_EQ(resumed[i].category, clean[i].category);
      EXPECT_EQ(resumed[i].value, clean[i].value) << clean[i].name << " trial " << trial;
      EXPECT_EQ(resumed[i].n, clean[i].n);
      EXPECT_EQ(resumed[i].ci_low, clean[i].ci_low);
    }
  }
  EXPECT_EQ(Plumb(tmp.path(), {"resume", "1", "--db", clean_db}).exit_code, 2);  // completed
}

// A run stopped by `signal` (Ctrl-C, or the SIGTERM a container runtime sends before it kills)
// commits what it has, exits 130, and `plumb run --resume` continues the same run.
void StopThenResume(int signal) {
  FakeServer server([](const FakeRequest& req, int) {
    FakeReply r = DeterministicReply(req);
    r.delay_ms = 30;
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "slow", 60);
  std::vector<std::string> args = {
      "run",        "--suite",         manifest,        "--model", "openai/m",
      "--base-url", server.base_url(), "--concurrency", "2",       "--progress",
      "none"};
  auto stopped = Plumb(tmp.path(), args, {}, /*kill_after_ms=*/300, signal);
  EXPECT_EQ(stopped.exit_code, 130) << stopped.err;
  EXPECT_NE(stopped.err.find("interrupted"), std::string::npos) << stopped.err;
  int requests_before = server.request_count();
  args.push_back("--resume");
  auto resumed = Plumb(tmp.path(), args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("run 1  completed"), std::string::npos) << resumed.out;
  // Only the unfinished samples were sent again (a request in flight at the signal may repeat).
  EXPECT_LE(server.request_count() - requests_before, 60 - 4);
  EXPECT_LE(server.request_count(), 60 + 2);
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  EXPECT_EQ(*(*store)->LatestRunId(), 1);
  auto again = Plumb(tmp.path(), args);  // the newest run completed: --resume starts a new one
  EXPECT_NE(again.out.find("run 2  completed"), std::string::npos) << again.out;
}

TEST(Resume, CtrlCThenRunResumeContinuesTheSameRun) { StopThenResume(SIGINT); }

TEST(Resume, SigtermStopsLikeCtrlCAndTheRunResumes) { StopThenResume(SIGTERM); }

TEST(Resume, RetryErrorsResendsOnlyTheErroredSamples) {
  std::atomic<bool> broken{true};
  std::atomic<int> requests{0};
  FakeServer server([&](const FakeRequest& req, int) {
    ++requests;
    FakeReply r = DeterministicReply(req);
    if (broken && LastUserMessage(req.json).find("Question 7?") != std::string::npos) {
      r.status = 500;
      r.body = "down";
    }
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "flaky", 12);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                              server.base_url(), "--max-retries", "0", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 3) << r.err;
  broken = false;
  int before = requests.load();
  auto retry = Plumb(tmp.path(), {"run", "--retry-errors", "1", "--progress", "none"});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_NE(retry.err.find("run 1: 1 errored samples will be sent again"), std::string::npos)
      << retry.err;
  EXPECT_EQ(requests.load() - before, 1);
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  for (const auto& s : *samples) {
    EXPECT_EQ(s.status, "done");
    EXPECT_EQ(s.responses.size(), 1u);
  }
  auto metrics = (*store)->GetMetrics(1);
  for (const auto& m : *metrics) {
    if (m.name == "error_rate") {
      EXPECT_EQ(*m.k, 0);
    }
  }
}

}  // namespace
}  // namespace plumb::testing

namespace plumb::testing {
namespace {

TEST(Cache, TemperatureZeroRepeatsComeFromTheCacheAndEpochsStayIndependent) {
  FakeServer server([](const FakeRequest& req, int) { return DeterministicReply(req); });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "cached", 10, "generation:\n  temperature: 0\n");
  std::vector<std::string> args = {
      "run",      "--suite", manifest,     "--model", "openai/m", "--base-url", server.base_url(),
      "--epochs", "2",       "--progress", "none"};
  ASSERT_EQ(Plumb(tmp.path(), args).exit_code, 0);
  EXPECT_EQ(server.request_count(), 20);  // each epoch is its own request
  ASSERT_EQ(Plumb(tmp.path(), args).exit_code, 0);
  EXPECT_EQ(server.request_count(), 20) << "the repeat must come from the cache";
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto second = (*store)->GetSamples(2);
  for (const auto& s : *second) {
    EXPECT_TRUE(s.responses[0].completion.cached);
    EXPECT_EQ(s.responses[0].completion.attempts, 0);
  }
  auto m1 = (*store)->GetMetrics(1), m2 = (*store)->GetMetrics(2);
  ASSERT_EQ(m1->size(), m2->size());
  for (size_t i = 0; i < m1->size(); ++i) EXPECT_EQ((*m1)[i].value, (*m2)[i].value);
  args.push_back("--cache");
  args.push_back("never");
  ASSERT_EQ(Plumb(tmp.path(), args).exit_code, 0);
  EXPECT_EQ(server.request_count(), 40);
  // Sampling at temperature 1 is not cached under the default policy.
  args.back() = "auto";
  args.push_back("--temperature");
  args.push_back("1");
  ASSERT_EQ(Plumb(tmp.path(), args).exit_code, 0);
  EXPECT_EQ(server.request_count(), 60);
}

}  // namespace
}  // namespace plumb::testing
