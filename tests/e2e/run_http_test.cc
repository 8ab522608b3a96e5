// plumb run against a loopback OpenAI-compatible server: faults are retried and every item ends
// with exactly one response; a bad key or an exhausted quota fails fast; persistent failures
// are recorded errors (exit 3), never scores; Ctrl-C keeps finished work (exit 130).
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

std::vector<SampleRecord> Samples(const std::string& db, int64_t run = 1) {
  auto store = OpenSqliteStoreReadOnly(db);
  EXPECT_TRUE(store.has_value());
  return *(*store)->GetSamples(run);
}

TEST(RunHttp, SendsTheProtocolAndRecordsEverything) {
  FakeServer server([](const FakeRequest& req, int) {
    FakeReply r;
    r.text = "Answer: A";
    (void)req;
    return r;
  });
  TempDir tmp;
  std::string manifest =
      WriteChoiceSuite(tmp, "mini", 20, "generation:\n  temperature: 0\n  max_tokens: 64\n");
  auto r =
      Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/test-model", "--base-url",
                         server.base_url(), "--concurrency", "4", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(server.request_count(), 20);
  EXPECT_LE(server.max_concurrent(), 4);
  auto req = server.requests()[0];
  EXPECT_EQ(req.path, "/v1/chat/completions");
  EXPECT_EQ(req.json["model"], "test-model");
  EXPECT_EQ(req.json["temperature"], 0.0);
  EXPECT_EQ(req.json["max_tokens"], 64);
  EXPECT_EQ(req.headers.count("authorization"), 0u);
  EXPECT_NE(LastUserMessage(req.json).find("A. yes"), std::string::npos);
  auto samples = Samples(tmp.path() + "/results/plumb.db");
  ASSERT_EQ(samples.size(), 20u);
  for (const auto& s : samples) {
    EXPECT_EQ(s.status, "done");
    ASSERT_EQ(s.responses.size(), 1u);
    EXPECT_EQ(*s.responses[0].completion.prompt_tokens, 10);
    EXPECT_EQ(s.responses[0].completion.finish_reason, "stop");
  }
}

TEST(RunHttp, RetriesEveryKindOfFaultWithoutLosingOrDuplicatingItems) {
  // The first request for each item fails in one of six ways; the retry succeeds.
  std::mutex mu;
  std::set<std::string> seen;
  FakeServer server([&](const FakeRequest& req, int) {
    std::string prompt = LastUserMessage(req.json);
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu);
      first = seen.insert(prompt).second;
    }
    FakeReply r;
    if (!first) return r;
    int kind = static_cast<int>(std::hash<std::string>()(prompt) % 6);
    switch (kind) {
      case 0:
        r.status = 429;
        r.body = R"({"error":{"message":"slow down"}})";
        r.headers = {{"Retry-After", "1"}};
        break;
      case 1:
        r.status = 500;
        r.body = "internal";
        break;
      case 2:
        r.delay_ms = 1500;
        break;  // beyond --timeout 0.5
      case 3:
        r.drop = true;
        break;
      case 4:
        r.body = R"({"choices": [{"message": )";
        break;  // malformed JSON
      case 5:
        r.status = 503;
        r.body = "{}";
        break;
    }
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "faulty", 30);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                              server.base_url(), "--timeout", "0.5", "--retry-base-ms", "20",
                              "--progress", "lines"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.request_count(), 60);
  auto samples = Samples(tmp.path() + "/results/plumb.db");
  ASSERT_EQ(samples.size(), 30u);
  std::set<std::string> ids;
  for (const auto& s : samples) {
    ids.insert(s.item_id);
    EXPECT_EQ(s.status, "done") << s.item_id;
    ASSERT_EQ(s.responses.size(), 1u);
    EXPECT_EQ(s.responses[0].completion.attempts, 2) << s.item_id;
    EXPECT_EQ(s.grades.size(), 1u);
  }
  EXPECT_EQ(ids.size(), 30u);
}

TEST(RunHttp, BadKeyFailsFastWithoutLeakingIt) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.status = 401;
    r.body =
        R"({"error":{"message":"Incorrect API key provided: sk-e2e-secret-key-42.","code":"invalid_api_key"}})";
    r.delay_ms = 20;
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "mini", 50);
  auto r = Plumb(tmp.path(),
                 {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                  server.base_url(), "--concurrency", "2", "--progress", "none"},
                 {{"OPENAI_API_KEY", "sk-e2e-secret-key-42"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(
                "run 1 failed: backend 'openai': HTTP 401: Incorrect API key provided: [redacted]. "
                "(check OPENAI_API_KEY or --api-key-env)"),
            std::string::npos)
      << r.err;
  EXPECT_LE(server.request_count(), 4) << "must stop instead of trying every item";
  EXPECT_EQ(server.requests()[0].headers["authorization"], "Bearer sk-e2e-secret-key-42");
  EXPECT_EQ(r.out.find("sk-e2e"), std::string::npos);
  EXPECT_EQ(r.err.find("sk-e2e"), std::string::npos);
  std::string db =
      ReadFile(tmp.path() + "/results/plumb.db") + ReadFile(tmp.path() + "/results/plumb.db-wal");
  EXPECT_EQ(db.find("sk-e2e-secret"), std::string::npos) << "the key reached the database";
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  EXPECT_EQ((*store)->GetRun(1)->status, "failed");
}

TEST(RunHttp, ExhaustedQuotaFailsFast) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.status = 429;
    r.body =
        R"({"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}})";
    r.delay_ms = 20;  // a real API's latency gives the run time to stop sending
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "mini", 40);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                              server.base_url(), "--concurrency", "1", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("quota exhausted (insufficient_quota)"), std::string::npos) << r.err;
  EXPECT_LE(server.request_count(), 3) << "must stop instead of trying every item";
}

TEST(RunHttp, PersistentFailuresAreRecordedErrorsNotScores) {
  FakeServer server([](const FakeRequest& req, int) {
    FakeReply r;
    if (LastUserMessage(req.json).find("Question 3?") != std::string::npos) {
      r.status = 500;
      r.body = "boom";
    }
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "mini", 8);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                              server.base_url(), "--max-retries", "2", "--retry-base-ms", "5",
                              "--progress", "none"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("finished with 1 errored samples"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("error_rate"), std::string::npos);
  auto samples = Samples(tmp.path() + "/results/plumb.db");
  for (const auto& s : samples) {
    if (s.item_id != "q3") continue;
    EXPECT_EQ(s.status, "error");
    EXPECT_TRUE(s.grades.empty());
    EXPECT_EQ(s.responses[0].error_code, "unavailable");
    EXPECT_EQ(s.responses[0].error_message,
              "backend 'openai': HTTP 500: boom (gave up after 3 attempts; see --max-retries)");
    EXPECT_EQ(s.responses[0].completion.attempts, 3);
  }
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto metrics = (*store)->GetMetrics(1);
  for (const auto& m : *metrics) {
    if (m.name == "aligned_rate" && m.category.empty()) {
      EXPECT_EQ(m.n, 7);
    }
  }
}

TEST(RunHttp, CtrlCKeepsFinishedWork) {
  FakeServer server([](const FakeRequest&, int index) {
    FakeReply r;
    r.delay_ms = index < 4 ? 0 : 5000;
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "slow", 12);
  auto r = Plumb(tmp.path(),
                 {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                  server.base_url(), "--concurrency", "4", "--progress", "none"},
                 {}, /*kill_after_ms=*/1200);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_NE(r.err.find("interrupted: 4 of 12 samples finished and kept"), std::string::npos)
      << r.err;
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  EXPECT_EQ((*store)->GetRun(1)->status, "interrupted");
  int done = 0, pending = 0;
  auto samples = (*store)->GetSamples(1);
  for (const auto& s : *samples) {
    done += s.status == "done";
    pending += s.status == "pending";
  }
  EXPECT_EQ(done, 4);
  EXPECT_EQ(pending, 8);
}

}  // namespace
}  // namespace plumb::testing
