// The Anthropic and Gemini backends end to end against a loopback server speaking their APIs.
#include <gtest/gtest.h>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

std::string Root(const FakeServer& s) { return "http://127.0.0.1:" + std::to_string(s.port()); }

TEST(Providers, AnthropicMessages) {
  FakeServer server([](const FakeRequest& req, int index) {
    FakeReply r;
    if (index == 0) {  // overloaded once: retried
      r.status = 529;
      r.body = R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
      return r;
    }
    r.body = Json{{"type", "message"},
                  {"content", {{{"type", "text"}, {"text", "Answer: A"}}}},
                  {"stop_reason", "end_turn"},
                  {"usage", {{"input_tokens", 11}, {"output_tokens", 4}}}}
                 .dump();
    (void)req;
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "an", 3, "system_prompt: Be careful.\n");
  auto r = Plumb(tmp.path(),
                 {"run", "--suite", manifest, "--model", "anthropic/claude-test", "--base-url",
                  Root(server), "--retry-base-ms", "5", "--concurrency", "1", "--progress", "none"},
                 {{"ANTHROPIC_API_KEY", "sk-ant-e2e-0000"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const FakeRequest req = server.requests()[1];
  EXPECT_EQ(req.path, "/v1/messages");
  EXPECT_EQ(req.headers.at("x-api-key"), "sk-ant-e2e-0000");
  EXPECT_EQ(req.headers.at("anthropic-version"), "2023-06-01");
  EXPECT_EQ(req.json["system"], "Be careful.");
  EXPECT_EQ(req.json["messages"][0]["role"], "user");
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  EXPECT_EQ((*samples)[0].responses[0].completion.finish_reason, "end_turn");
  EXPECT_EQ(*(*samples)[0].responses[0].completion.prompt_tokens, 11);
  EXPECT_EQ((*samples)[0].responses[0].completion.attempts, 2);
  EXPECT_EQ((*store)->GetRun(1)->backend_id, "anthropic-messages@1");
}

TEST(Providers, GeminiGenerateContent) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.body = Json{{"candidates",
                   {{{"content",
                      {{"role", "model"}, {"parts", {{{"text", "Answer: "}}, {{"text", "A"}}}}}},
                     {"finishReason", "STOP"}}}},
                  {"usageMetadata", {{"promptTokenCount", 9}, {"candidatesTokenCount", 2}}}}
                 .dump();
    return r;
  });
  TempDir tmp;
  std::string manifest =
      WriteChoiceSuite(tmp, "ge", 2, "generation:\n  temperature: 0\n  max_tokens: 30\n");
  auto r = Plumb(tmp.path(),
                 {"run", "--suite", manifest, "--model", "google/gemini-test", "--base-url",
                  Root(server), "--progress", "none"},
                 {{"GOOGLE_API_KEY", "AIza-e2e-key-000000000000000"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const FakeRequest req = server.requests()[0];
  EXPECT_EQ(req.path, "/v1beta/models/gemini-test:generateContent");
  EXPECT_EQ(req.headers.at("x-goog-api-key"), "AIza-e2e-key-000000000000000");
  EXPECT_EQ(req.json["generationConfig"]["maxOutputTokens"], 30);
  EXPECT_EQ(req.json["contents"][0]["role"], "user");
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  EXPECT_EQ((*samples)[0].responses[0].completion.text, "Answer: A");
  EXPECT_EQ((*samples)[0].responses[0].completion.finish_reason, "STOP");
  auto missing = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "google/gemini-test"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("GEMINI_API_KEY is not set"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace plumb::testing
