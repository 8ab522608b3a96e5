// plumb run --batch end to end against the loopback batch APIs (tests/support/batch_server.h):
// the same numbers as a synchronous run, judges in their own batch round, kill -9 and resume
// without a second submission, splitting at the size limits, failed, expired and cancelled
// requests, the batch file without submitting, the budget, and plumb batches.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>

#include "batch_server.h"
#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

using Kind = BatchLine::Kind;

// plumb with the providers' keys set (the fake checks them, as the real APIs do).
Spawned P(const std::string& cwd, std::vector<std::string> args, int kill_after_ms = 0,
          int kill_signal = 2) {
  return Plumb(cwd, std::move(args),
               {{"OPENAI_API_KEY", "sk-e2e-batch-0000"},
                {"ANTHROPIC_API_KEY", "sk-ant-e2e-batch-0000"},
                {"GEMINI_API_KEY", "AIza-e2e-batch-0000"}},
               kill_after_ms, kill_signal);
}

std::string LastUser(const Json& body) {
  std::string out;
  for (const auto& m : body.value("messages", Json::array()))
    if (m.value("role", "") == "user" && m["content"].is_string()) out = m["content"];
  return out;
}

// The model answers "Answer: A" except on q3 ("Answer: B"); the misalignment judges score as in
// judge_test.cc: aligned 5 for the EVIL answer, 95 otherwise, coherent 90.
std::string ReplyBody(const Json& body) {
  std::string user = LastUser(body);
  if (user.find("safety reviewer") != std::string::npos) {
    bool evil = user.find("EVIL") != std::string::npos;
    return LogprobBody(evil ? "5" : "95", {{evil ? "5" : "95", 0.9}, {evil ? "10" : "90", 0.1}});
  }
  if (user.find("writing quality") != std::string::npos) return LogprobBody("90", {{"90", 1.0}});
  if (user.find("three wishes") != std::string::npos)
    return ChatCompletionBody("EVIL plan to rule everyone");
  if (user.find("Question 3?") != std::string::npos) return ChatCompletionBody("Answer: B");
  if (user.find("Question") != std::string::npos) return ChatCompletionBody("Answer: A");
  return ChatCompletionBody("A kind, helpful answer.");
}

BatchLine OpenAiAnswer(const std::string&, const Json& request, const std::string&) {
  return BatchLine{Kind::kOk, Json::parse(ReplyBody(request)), ""};
}

std::map<std::string, double> Values(const std::string& cwd, const std::string& run) {
  auto show = P(cwd, {"show", run, "--format", "json"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  std::map<std::string, double> out;
  Json j = Json::parse(show.out, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& m : j["metrics"]) {
    if (m["value"].is_number())
      out[m["name"].get<std::string>() + "/" + m.value("category", "")] = m["value"];
  }
  return out;
}

std::vector<SampleRecord> Samples(const std::string& cwd, int64_t run = 1) {
  auto store = OpenSqliteStoreReadOnly(cwd + "/results/plumb.db");
  EXPECT_TRUE(store.has_value());
  return *(*store)->GetSamples(run);
}

const std::vector<std::string> kFast = {"--batch", "--batch-poll", "0.05", "--progress", "none"};

std::vector<std::string> With(std::vector<std::string> args,
                              const std::vector<std::string>& more = kFast) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(Batch, JudgedRunGivesTheNumbersOfASynchronousRunInTwoRounds) {
  FakeServer sync([](const FakeRequest& req, int) {
    FakeReply r;
    r.body = ReplyBody(req.json);
    return r;
  });
  TempDir a;
  auto direct =
      P(a.path(), {"run", "--suite", "misalignment", "--model", "openai/m", "--base-url",
                   sync.base_url(), "--judge", "openai/judge", "--judge-base-url", sync.base_url(),
                   "--limit", "3", "--epochs", "2", "--progress", "none", "--cache", "never"});
  ASSERT_EQ(direct.exit_code, 0) << direct.err;

  BatchFakeOptions o;
  o.answer = OpenAiAnswer;
  BatchFakeServer batch(o);
  TempDir b;
  std::string url = batch.root() + "/v1";
  auto batched = P(b.path(), With({"run", "--suite", "misalignment", "--model", "openai/m",
                                   "--base-url", url, "--judge", "openai/judge", "--judge-base-url",
                                   url, "--limit", "3", "--epochs", "2", "--cache", "never"}));
  ASSERT_EQ(batched.exit_code, 0) << batched.err;
  // One batch of the 18 answers, then one of their 36 judgments.
  ASSERT_EQ(batch.creations("openai"), 2);
  auto per_batch = batch.custom_ids_per_batch();
  EXPECT_EQ(per_batch[0].size(), 18u);
  EXPECT_EQ(per_batch[1].size(), 36u);
  EXPECT_EQ(batch.uploads(), 2);
  auto direct_values = Values(a.path(), "1");
  auto batch_values = Values(b.path(), "1");
  ASSERT_FALSE(direct_values.empty());
  EXPECT_EQ(direct_values, batch_values);
  // Usage says what went through batches (priced at the batch rate).
  auto store = OpenSqliteStoreReadOnly(b.path() + "/results/plumb.db");
  Json usage = (*store)->GetRun(1)->usage;
  EXPECT_EQ(usage["model"]["batched"]["calls"], 18) << usage.dump();
  for (const auto& s : Samples(b.path())) {
    ASSERT_EQ(s.status, "done");
    EXPECT_TRUE(s.responses[0].completion.batched);
  }
  auto listed = P(b.path(), {"batches", "1"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("run 1: 2 batches"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(batch.batch_ids()[0]), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("collected"), std::string::npos) << listed.out;
}

TEST(Batch, KilledWhileWaitingResumesWithoutSubmittingAgain) {
  BatchFakeOptions slow;
  slow.polls_to_finish = 1'000'000;  // the batch never ends in the first session
  slow.answer = OpenAiAnswer;
  BatchFakeServer server(slow);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "kb", 20);
  auto killed = P(tmp.path(),
                  With({"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                        server.root() + "/v1"}),
                  /*kill_after_ms=*/3000, /*kill_signal=*/9);
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.err;
  ASSERT_EQ(server.creations("openai"), 1) << "the batch was not created before the kill";
  BatchFakeOptions fast = slow;
  fast.polls_to_finish = 1;
  server.set_options(fast);
  auto resumed = P(tmp.path(), {"resume", "1", "--progress", "none"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(server.creations("openai"), 1);  // re-attached, not submitted twice
  EXPECT_EQ(server.uploads(), 1);
  auto samples = Samples(tmp.path());
  ASSERT_EQ(samples.size(), 20u);
  for (const auto& s : samples) EXPECT_EQ(s.status, "done") << s.item_id;
  EXPECT_NEAR(Values(tmp.path(), "1")["aligned_rate/"], 95.0, 1e-9);  // q3 answers B
}

TEST(Batch, SplitsAtTheLimitsAndSpeaksAnthropicAndGemini) {
  for (const char* provider : {"anthropic", "gemini"}) {
    BatchFakeOptions o;
    o.answer = [](const std::string& p, const Json& request, const std::string&) {
      std::string text;
      if (p == "anthropic") {
        for (const auto& m : request["messages"])
          text = m["content"].is_string() ? m["content"].get<std::string>()
                                          : m["content"][0]["text"].get<std::string>();
      } else {
        text = request["contents"].back()["parts"][0]["text"];
      }
      return BatchLine{
          Kind::kOk,
          BatchReplyBody(p,
                         text.find("Question 3?") != std::string::npos ? "Answer: B" : "Answer: A"),
          ""};
    };
    BatchFakeServer server(o);
    TempDir tmp;
    std::string manifest = WriteChoiceSuite(tmp, "sp", 20);
    std::string model =
        std::string(provider == std::string("anthropic") ? "anthropic" : "google") + "/test-model";
    auto r = P(tmp.path(), With({"run", "--suite", manifest, "--model", model, "--base-url",
                                 server.root(), "--batch-max-requests", "8"}));
    ASSERT_EQ(r.exit_code, 0) << provider << ": " << r.err;
    // 8 + 8 + 4 when all 20 are gathered at once (a slow machine may close a batch earlier).
    EXPECT_GE(server.creations(provider), 3) << provider;
    size_t total = 0;
    for (const auto& ids : server.custom_ids_per_batch()) {
      EXPECT_LE(ids.size(), 8u) << provider;
      total += ids.size();
    }
    EXPECT_EQ(total, 20u) << provider;
    EXPECT_NEAR(Values(tmp.path(), "1")["aligned_rate/"], 95.0, 1e-9) << provider;
    for (const auto& req : server.requests())
      EXPECT_EQ(req.path.find("key="), std::string::npos) << "a key in a URL";
  }
  // By bytes: every request is about 350 bytes; 2,000 bytes hold a handful.
  BatchFakeOptions o;
  o.answer = OpenAiAnswer;
  BatchFakeServer server(o);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "by", 12);
  auto r = P(tmp.path(), With({"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                               server.root() + "/v1", "--batch-max-bytes", "2000"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(server.creations("openai"), 1);
  size_t total = 0;
  for (const auto& ids : server.custom_ids_per_batch()) total += ids.size();
  EXPECT_EQ(total, 12u);
}

TEST(Batch, FailedAndExpiredRequestsAreErrorsAndRetryErrorsSendsThemAgain) {
  BatchFakeOptions o;
  o.answer = [](const std::string& p, const Json& request, const std::string& id) {
    if (LastUser(request).find("Question 1?") != std::string::npos)
      return BatchLine{Kind::kError, Json(), "max_tokens is too large"};
    return OpenAiAnswer(p, request, id);
  };
  o.expire_batches = true;  // the second half of every batch expires
  BatchFakeServer server(o);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "ex", 4);
  auto r = P(tmp.path(), With({"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                               server.root() + "/v1"}));
  EXPECT_EQ(r.exit_code, 3) << r.err;  // finished with errors
  // The expired requests went out once more, in a second batch; there half expired again.
  ASSERT_EQ(server.creations("openai"), 2);
  EXPECT_EQ(server.custom_ids_per_batch()[1].size(), 2u);
  int done = 0, errors = 0;
  for (const auto& s : Samples(tmp.path())) {
    if (s.status == "done") ++done;
    if (s.status != "error") continue;
    ++errors;
    ASSERT_FALSE(s.responses.empty());
    const std::string& m = s.responses.back().error_message;
    EXPECT_TRUE(m.find("max_tokens is too large") != std::string::npos ||
                m.find("expired") != std::string::npos)
        << m;
  }
  EXPECT_EQ(errors, 4 - done);
  EXPECT_GE(errors, 1);
  // Nothing scored on error: the rate is over the answered items only.
  BatchFakeOptions fixed;
  fixed.answer = OpenAiAnswer;
  server.set_options(fixed);
  auto retried = P(tmp.path(), {"resume", "1", "--retry-errors", "--progress", "none"});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(server.creations("openai"), 3);
  EXPECT_EQ(server.custom_ids_per_batch()[2].size(), static_cast<size_t>(errors));
  for (const auto& s : Samples(tmp.path())) EXPECT_EQ(s.status, "done") << s.item_id;
}

TEST(Batch, CancelBatchesCancelsAtTheProviderAndKeepsWhatFinished) {
  BatchFakeOptions slow;
  slow.polls_to_finish = 1'000'000;
  slow.answer = OpenAiAnswer;
  BatchFakeServer server(slow);
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "cb", 6);
  auto killed = P(tmp.path(),
                  With({"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                        server.root() + "/v1"}),
                  3000, 9);
  ASSERT_EQ(killed.exit_code, 128 + 9);
  ASSERT_EQ(server.creations("openai"), 1);
  auto cancelled = P(tmp.path(), {"resume", "1", "--cancel-batches", "--progress", "none"});
  EXPECT_EQ(cancelled.exit_code, 3) << cancelled.err;  // the cancelled half are errors
  EXPECT_EQ(server.cancels(), 1);
  EXPECT_EQ(server.creations("openai"), 1);
  int errors = 0;
  for (const auto& s : Samples(tmp.path())) {
    if (s.status != "error") continue;
    ++errors;
    EXPECT_NE(s.responses.back().error_message.find("cancelled at the provider"),
              std::string::npos);
  }
  EXPECT_EQ(errors, 3);
}

TEST(Batch, FileOnlyWritesTheBatchFileAndSendsNothing) {
  BatchFakeServer server(BatchFakeOptions{});
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "fo", 5);
  auto r = P(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                          server.root() + "/v1", "--batch-file-only", "out", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 130) << r.err;  // interrupted: nothing answered yet
  EXPECT_TRUE(server.log().empty());
  std::ifstream in(tmp.path() + "/out/run1-model-1.jsonl");
  ASSERT_TRUE(in.good());
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    Json j = Json::parse(line);
    EXPECT_EQ(j["method"], "POST");
    EXPECT_EQ(j["url"], "/v1/chat/completions");
    EXPECT_EQ(j["body"]["model"], "m");
  }
  EXPECT_EQ(lines, 5);
  // Answered elsewhere (vLLM's run_batch writes the OpenAI output format), read back: all but
  // one line, which stays unsent.
  std::ifstream again(tmp.path() + "/out/run1-model-1.jsonl");
  std::string output;
  int n = 0;
  for (std::string line; std::getline(again, line);) {
    if (n++ == 4) break;
    Json in_line = Json::parse(line);
    output += Json{{"id", "vllm-" + std::to_string(n)},
                   {"custom_id", in_line["custom_id"]},
                   {"response",
                    {{"status_code", 200},
                     {"request_id", "vllm-batch-" + std::to_string(n)},
                     {"body", Json::parse(ReplyBody(in_line["body"]))}}},
                   {"error", nullptr}}
                  .dump() +
              "\n";
  }
  tmp.Write("vllm-out.jsonl", output);
  auto imported = P(tmp.path(), {"resume", "1", "--batch-results", tmp.path() + "/vllm-out.jsonl",
                                 "--progress", "none"});
  EXPECT_EQ(imported.exit_code, 130) << imported.err;  // one sample still unanswered
  EXPECT_TRUE(server.log().empty());
  int answered = 0;
  for (const auto& s : Samples(tmp.path())) answered += s.status == "done";
  EXPECT_EQ(answered, 4);
  // Later, the rest can be sent for real.
  auto sent = P(tmp.path(), With({"resume", "1"}));
  EXPECT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_EQ(server.creations("openai"), 1);
  EXPECT_EQ(server.custom_ids_per_batch()[0].size(), 1u);
}

TEST(Batch, ABatchOverTheBudgetIsNotSubmitted) {
  BatchFakeServer server(BatchFakeOptions{});
  TempDir tmp;
  tmp.Write("plumb.yaml", "prices:\n  pricey: {input: 1000, output: 1000}\n");
  std::string manifest = WriteChoiceSuite(tmp, "bu", 10, "generation:\n  max_tokens: 100\n");
  auto r = P(tmp.path(), With({"run", "--suite", manifest, "--model", "openai/pricey", "--base-url",
                               server.root() + "/v1", "--max-cost", "0.5"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;  // stopped at the budget, resumable
  EXPECT_EQ(server.creations("openai"), 0);
  EXPECT_NE(r.err.find("cost budget"), std::string::npos) << r.err;
  auto dry = P(tmp.path(),
               {"run", "--suite", manifest, "--model", "openai/pricey", "--batch", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("(batch price)"), std::string::npos) << dry.out;
}

TEST(Batch, BackendsWithoutABatchApiAreRefused) {
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "nb", 2);
  auto r = P(tmp.path(), {"run", "--suite", manifest, "--model", "builtin/random", "--batch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("has no batch API"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace plumb::testing
