// Tokens and cost end to end: usage per role from the API's counts, named models from
// plumb.yaml, --dry-run (nothing sent or written), --max-cost stops cleanly and resumes.
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

// Every reply reports 1000 prompt and 100 completion tokens.
FakeReply Priced(const FakeRequest&) {
  FakeReply r;
  r.body = ChatCompletionBody("Answer: A", "stop", 1000, 100);
  return r;
}

TEST(Cost, UsageAndCostPerRoleWithANamedModel) {
  FakeServer server([](const FakeRequest& req, int) { return Priced(req); });
  TempDir tmp;
  tmp.Write("plumb.yaml", "models:\n  local:\n    spec: openai/tiny\n    base_url: " +
                              server.base_url() + "\n    price: {input: 2, output: 10}\n");
  std::string manifest = WriteChoiceSuite(tmp, "priced", 10);
  auto r =
      Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "local", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.requests()[0].json["model"], "tiny");
  // 10 calls x (1000 x $2 + 100 x $10) per million = $0.03
  EXPECT_NE(r.out.find("tokens of the model: 10 calls (0 cached), 10000 prompt + 1000 completion "
                       "tokens, $0.0300"),
            std::string::npos)
      << r.out;
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto run = (*store)->GetRun(1);
  EXPECT_EQ(run->model_spec, "openai/tiny");
  EXPECT_EQ(run->settings["alias"], "local");
  EXPECT_NEAR(run->usage["model"]["cost_usd"].get<double>(), 0.03, 1e-12);
  EXPECT_EQ(run->usage["model"]["prompt_tokens"], 10000);
}

TEST(Cost, DryRunSendsAndWritesNothing) {
  FakeServer server([](const FakeRequest& req, int) { return Priced(req); });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "dry", 12, "generation:\n  max_tokens: 50\n");
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/gpt-4o-mini",
                              "--base-url", server.base_url(), "--epochs", "2", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("24 samples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model: 24 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at most 1200 completion tokens"), std::string::npos) << r.out;
  EXPECT_EQ(server.request_count(), 0);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/results"));
}

TEST(Cost, MaxCostStopsCleanlyAndTheRunResumes) {
  FakeServer server([](const FakeRequest& req, int) {
    FakeReply r = Priced(req);
    r.delay_ms = 5;
    return r;
  });
  TempDir tmp;
  tmp.Write("plumb.yaml", "prices:\n  pricey: {input: 100, output: 1000}\n");  // $0.2 per call
  std::string manifest = WriteChoiceSuite(tmp, "budget", 30);
  std::vector<std::string> args = {
      "run",        "--suite",         manifest,        "--model", "openai/pricey",
      "--base-url", server.base_url(), "--concurrency", "1",       "--max-cost",
      "1",          "--progress",      "none"};
  auto r = Plumb(tmp.path(), args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("stopped at the cost budget"), std::string::npos) << r.err;
  int sent = server.request_count();
  EXPECT_GE(sent, 5);
  EXPECT_LE(sent, 7);  // stops within a call of the budget
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  EXPECT_EQ((*store)->GetRun(1)->status, "interrupted");
  auto resumed = Plumb(tmp.path(), {"resume", "1", "--max-cost", "100", "--progress", "none"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  // The call in flight when the budget stopped the run is abandoned and sent again.
  EXPECT_LE(server.request_count(), 31);
  auto after = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*after)->GetSamples(1);
  for (const auto& s : *samples) {
    EXPECT_EQ(s.status, "done");
    EXPECT_EQ(s.responses.size(), 1u);
  }
  auto missing = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/no-such-price",
                                    "--base-url", server.base_url(), "--max-cost", "1"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err,
            "plumb: error: --max-cost: no price is known for 'openai/no-such-price' (add it under "
            "'prices:' in plumb.yaml)\n");
}

}  // namespace
}  // namespace plumb::testing
