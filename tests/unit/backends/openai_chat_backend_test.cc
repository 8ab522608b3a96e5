// openai/<model>: request building and response mapping as pure functions.
#include <gtest/gtest.h>

#include <map>

#include "plumb/backend.h"
#include "plumb/log.h"
#include "unit/backends/backend_test_util.h"

namespace plumb {
namespace {

using testing::AsHttp;
using testing::FakeEnv;
using testing::Fixture;

TEST(OpenAiChat, BuildsChatCompletionRequest) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"OPENAI_API_KEY", "sk-test-key-0123456789"}});
  auto b = f.Make("openai/gpt-4o-mini", env);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ((*b)->Id(), "openai-chat@1");
  ModelCall call;
  call.messages = {{"system", "Be safe."}, {"user", "Hi"}};
  call.params.temperature = 0;
  call.params.max_tokens = 120;
  call.params.top_p = 0.9;
  call.params.seed = 7;
  call.params.stop = {"\n\n"};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->url, "https://api.openai.com/v1/chat/completions");
  Json body = Json::parse(req->body);
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][1]["content"], "Hi");
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["max_completion_tokens"], 120);  // api.openai.com: the current name
  EXPECT_FALSE(body.contains("max_tokens"));
  EXPECT_EQ(body["top_p"], 0.9);
  EXPECT_EQ(body["seed"], 7);
  EXPECT_EQ(body["stop"][0], "\n\n");
  bool auth = false;
  for (const auto& [k, v] : req->headers) {
    if (k == "Authorization") auth = v == "Bearer sk-test-key-0123456789";
  }
  EXPECT_TRUE(auth);
}

TEST(OpenAiChat, LogprobsAndStructuredOutput) {
  Fixture f;
  FakeEnv official(
      std::map<std::string, std::string>{{"OPENAI_API_KEY", "sk-test-key-0123456789"}});
  auto b = f.Make("openai/gpt-4o", official);
  ModelCall call;
  call.params.top_logprobs = 20;
  call.params.json_schema = Json{{"type", "object"}};
  Json body = Json::parse(AsHttp(*b).BuildRequest(call)->body);
  EXPECT_EQ(body["logprobs"], true);
  EXPECT_EQ(body["top_logprobs"], 20);
  EXPECT_EQ(body["response_format"]["type"], "json_schema");
  EXPECT_EQ(body["response_format"]["json_schema"]["schema"]["type"], "object");
  // A local server gets the schema only when the grader insists.
  FakeEnv none(std::map<std::string, std::string>{});
  auto local = f.Make("openai/m", none, "http://127.0.0.1:9/v1");
  EXPECT_FALSE(Json::parse(AsHttp(*local).BuildRequest(call)->body).contains("response_format"));
  call.params.require_json_schema = true;
  EXPECT_TRUE(Json::parse(AsHttp(*local).BuildRequest(call)->body).contains("response_format"));
}

TEST(OpenAiChat, OmitsUnsetParams) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("openai/llama3", env, "http://localhost:11434/v1/");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ModelCall call;
  call.messages = {{"user", "Hi"}};
  auto req = AsHttp(*b).BuildRequest(call);
  EXPECT_EQ(req->url, "http://localhost:11434/v1/chat/completions");
  Json body = Json::parse(req->body);
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("max_tokens"));
  for (const auto& [k, v] : req->headers) EXPECT_NE(k, "Authorization") << "no key, no header";
}

TEST(OpenAiChat, BaseUrlFromEnvironment) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"}});
  auto b = f.Make("openai/m", env);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(AsHttp(*b).BuildRequest(ModelCall{})->url, "http://127.0.0.1:8000/v1/chat/completions");
}

TEST(OpenAiChat, MissingKeyForOfficialApiIsAClearError) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("openai/gpt-4o", env);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(b.error().message(),
            "backend 'openai': OPENAI_API_KEY is not set (export it, or name another variable "
            "with --api-key-env)");
  auto named = f.Make("openai/m", env, "http://127.0.0.1:1/v1", "MY_KEY");
  ASSERT_FALSE(named.has_value());
  EXPECT_NE(named.error().message().find("MY_KEY is not set"), std::string::npos);
}

TEST(OpenAiChat, RejectsBadSpecsAndUrls) {
  Fixture f;
  FakeEnv env({});
  EXPECT_EQ(
      f.Make("gpt-4o", env).error().message(),
      "model spec 'gpt-4o' must look like KIND/MODEL, e.g. openai/gpt-4o-mini or builtin/random");
  EXPECT_EQ(f.Make("opnai/gpt-4o", env).error().code(), StatusCode::kNotFound);
  EXPECT_NE(f.Make("opnai/gpt-4o", env).error().message().find("did you mean 'openai'?"),
            std::string::npos);
  EXPECT_EQ(f.Make("openai/m", env, "localhost:8000").error().code(), StatusCode::kInvalidArgument);
}

// A conversation with tool use, as the runner sends it for an agentic item.
ModelCall ToolConversation() {
  ModelCall call;
  call.messages = {{"system", "You are an ops agent."}, {"user", "Check the alert."}};
  Message calls{"assistant", "", {}, "", ""};
  // The second call carries a signature another provider gave: plumb keeps it, OpenAI never
  // sees it.
  calls.tool_calls = {ToolCall{"call_a1", "read_file", R"({"path":"/ops/alert.txt"})", ""},
                      ToolCall{"call_b2", "list_dir", R"({"path": "/ops"})", "sig-gemini"}};
  call.messages.push_back(calls);
  call.messages.push_back(Message{"tool", "Power is out.", {}, "call_a1", "read_file"});
  call.messages.push_back(Message{"tool", "alert.txt\nrunbook.md", {}, "call_b2", "list_dir"});
  Message text_and_call{"assistant", "Reading the runbook.", {}, "", ""};
  text_and_call.tool_calls = {
      ToolCall{"call_c3", "read_file", R"({"path":"/ops/runbook.md"})", ""}};
  call.messages.push_back(text_and_call);
  call.messages.push_back(Message{"tool", "Step 1: page on-call.", {}, "call_c3", "read_file"});
  call.tools = {
      ToolSpec{"read_file", "Read a file.",
               Json{{"type", "object"},
                    {"properties", {{"path", {{"type", "string"}}}}},
                    {"required", {"path"}}}},
      ToolSpec{"list_dir", "List a folder.",
               Json{{"type", "object"}, {"properties", {{"path", {{"type", "string"}}}}}}}};
  return call;
}

TEST(OpenAiChat, SendsToolsAndToolTurnsInTheDocumentedShape) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("openai/m", env, "http://127.0.0.1:9/v1");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ModelCall call = ToolConversation();
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value()) << req.error().message();
  Json body = Json::parse(req->body);
  EXPECT_EQ(body["tools"], Json::parse(R"([
    {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                    "required": ["path"]}}},
    {"type": "function", "function": {"name": "list_dir", "description": "List a folder.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}])"));
  EXPECT_EQ(body["tool_choice"], "auto");
  ASSERT_EQ(body["messages"].size(), 7u);
  EXPECT_EQ(body["messages"][0], (Json{{"role", "system"}, {"content", "You are an ops agent."}}));
  EXPECT_EQ(body["messages"][1], (Json{{"role", "user"}, {"content", "Check the alert."}}));
  EXPECT_EQ(body["messages"][2], Json::parse(R"({"role": "assistant", "content": null,
    "tool_calls": [
      {"id": "call_a1", "type": "function",
       "function": {"name": "read_file", "arguments": "{\"path\":\"/ops/alert.txt\"}"}},
      {"id": "call_b2", "type": "function",
       "function": {"name": "list_dir", "arguments": "{\"path\": \"/ops\"}"}}]})"));
  // Tool results: {role, tool_call_id, content} only, no "name".
  EXPECT_EQ(body["messages"][3], Json::parse(R"({"role": "tool", "tool_call_id": "call_a1",
    "content": "Power is out."})"));
  EXPECT_EQ(body["messages"][4], Json::parse(R"({"role": "tool", "tool_call_id": "call_b2",
    "content": "alert.txt\nrunbook.md"})"));
  EXPECT_EQ(body["messages"][5], Json::parse(R"({"role": "assistant",
    "content": "Reading the runbook.",
    "tool_calls": [{"id": "call_c3", "type": "function",
      "function": {"name": "read_file", "arguments": "{\"path\":\"/ops/runbook.md\"}"}}]})"));
  EXPECT_EQ(body["messages"][6], Json::parse(R"({"role": "tool", "tool_call_id": "call_c3",
    "content": "Step 1: page on-call."})"));
}

TEST(OpenAiChat, ToolChoiceFollowsTheCallAndNoToolsSendsNeither) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("openai/m", env, "http://127.0.0.1:9/v1");
  ModelCall call = ToolConversation();
  call.tool_choice = "required";
  EXPECT_EQ(Json::parse(AsHttp(*b).BuildRequest(call)->body)["tool_choice"], "required");
  call.tools.clear();
  Json body = Json::parse(AsHttp(*b).BuildRequest(call)->body);
  EXPECT_FALSE(body.contains("tools"));
  EXPECT_FALSE(body.contains("tool_choice"));
}

class ParseTest : public ::testing::Test {
 protected:
  Fixture f;
  FakeEnv env{{{"OPENAI_API_KEY", "sk-parse-test-key-999"}}};
  std::unique_ptr<Backend> b;
  void SetUp() override { b = std::move(f.Make("openai/m", env)).value(); }
  Result<Completion> Parse(int status, const std::string& body) {
    HttpResponse r;
    r.status = status;
    r.body = body;
    return AsHttp(b).ParseResponse(r);
  }
};

TEST_F(ParseTest, ParsesChoiceAndUsage) {
  auto c = Parse(
      200,
      R"({"choices":[{"message":{"role":"assistant","content":"Answer: B"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4}})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->text, "Answer: B");
  EXPECT_EQ(c->finish_reason, "stop");
  EXPECT_EQ(*c->prompt_tokens, 12);
  EXPECT_EQ(*c->completion_tokens, 4);
}

TEST_F(ParseTest, ReadsFirstTokenLogprobs) {
  auto c = Parse(
      200,
      R"({"choices":[{"message":{"content":"85"},"finish_reason":"stop","logprobs":{"content":[{"token":"85","logprob":-0.1,"top_logprobs":[{"token":"85","logprob":-0.1},{"token":"90","logprob":-2.4}]}]}}]})");
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->first_token_logprobs.size(), 2u);
  EXPECT_EQ(c->first_token_logprobs[1].first, "90");
  EXPECT_DOUBLE_EQ(c->first_token_logprobs[1].second, -2.4);
}

// issue 11: no text is an error, never an empty answer scored as a parse failure.
TEST_F(ParseTest, Issue11NullContentIsAnErrorNeverEmptyText) {
  auto filtered = Parse(
      200,
      R"({"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"content_filter"}]})");
  ASSERT_FALSE(filtered.has_value());
  EXPECT_EQ(filtered.error().code(), StatusCode::kInvalidArgument);  // the item's, not retried
  auto null = Parse(
      200,
      R"({"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"stop"}]})");
  EXPECT_EQ(null.error().code(), StatusCode::kUnavailable);  // retried like a malformed body
  auto missing = Parse(200, R"({"choices":[{"message":{"role":"assistant"}}]})");
  EXPECT_EQ(missing.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Parse(200, R"({"choices":[]})").error().code(), StatusCode::kUnavailable);
  auto refusal = Parse(
      200,
      R"({"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]})");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->text, "I can't help with that.");
  auto empty = Parse(
      200,
      R"({"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"length"}]})");
  ASSERT_TRUE(empty.has_value());  // an empty string is what the model wrote
  EXPECT_EQ(empty->text, "");
}

TEST_F(ParseTest, MalformedBodiesAreRetryable) {
  auto c = Parse(200, R"({"choices":[{"message":)");
  EXPECT_EQ(c.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.error().message(), "backend 'openai': HTTP 200 with a malformed JSON body");
  EXPECT_EQ(Parse(200, R"({"choices":[]})").error().code(), StatusCode::kUnavailable);
}

TEST_F(ParseTest, MapsStatusCodes) {
  EXPECT_EQ(
      Parse(429, R"({"error":{"message":"Rate limit reached","type":"requests"}})").error().code(),
      StatusCode::kResourceExhausted);
  EXPECT_EQ(Parse(500, "oops").error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Parse(503, "").error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Parse(403, "{}").error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Parse(404, R"({"error":{"message":"The model `m` does not exist"}})").error().message(),
            "backend 'openai': HTTP 404: The model `m` does not exist (check the model name 'm' "
            "and --base-url)");
  EXPECT_EQ(Parse(400, R"({"error":{"message":"context length exceeded"}})").error().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ParseTest, QuotaExhaustionFailsFast) {
  auto c = Parse(
      429,
      R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}})");
  EXPECT_EQ(c.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(IsRetryable(c.error().code()));
  EXPECT_TRUE(IsFatalForRun(c.error().code()));
  EXPECT_NE(c.error().message().find("quota exhausted"), std::string::npos);
}

TEST_F(ParseTest, UnauthorizedNeverEchoesTheKey) {
  auto c =
      Parse(401, R"({"error":{"message":"Incorrect API key provided: sk-parse-test-key-999."}})");
  EXPECT_EQ(c.error().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(c.error().message(),
            "backend 'openai': HTTP 401: Incorrect API key provided: [redacted]. (check "
            "OPENAI_API_KEY or --api-key-env)");
}

TEST_F(ParseTest, AParameterTheModelRefusesEndsTheRun) {
  // What reasoning models answer to a temperature of 0: every request would get the same.
  auto c = Parse(
      400,
      R"({"error":{"message":"Unsupported value: 'temperature' does not support 0 with this model.","type":"invalid_request_error","param":"temperature","code":"unsupported_value"}})");
  EXPECT_EQ(c.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsFatalForRun(c.error().code()));
  EXPECT_NE(c.error().message().find("refuses the parameter 'temperature'"), std::string::npos)
      << c.error().message();
  // Any other 400 stays one sample's error.
  auto other = Parse(
      400,
      R"({"error":{"message":"This prompt is too long.","type":"invalid_request_error","code":"context_length_exceeded"}})");
  EXPECT_EQ(other.error().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsFatalForRun(other.error().code()));
}

// The reply the API documents for parallel function calling.
TEST_F(ParseTest, ParsesParallelToolCalls) {
  auto c = Parse(200, R"({
    "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1699896916,
    "model": "gpt-4o-mini",
    "choices": [{
      "index": 0,
      "message": {
        "role": "assistant", "content": null, "refusal": null,
        "tool_calls": [
          {"id": "call_abc123", "type": "function",
           "function": {"name": "get_current_weather",
                        "arguments": "{\n\"location\": \"Boston, MA\"\n}"}},
          {"id": "call_def456", "type": "function",
           "function": {"name": "get_current_time", "arguments": "{\"timezone\": \"EST\"}"}}]},
      "logprobs": null,
      "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99}})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "");
  EXPECT_EQ(c->finish_reason, "tool_calls");
  EXPECT_EQ(*c->prompt_tokens, 82);
  EXPECT_EQ(*c->completion_tokens, 17);
  ASSERT_EQ(c->tool_calls.size(), 2u);
  EXPECT_EQ(c->tool_calls[0].id, "call_abc123");
  EXPECT_EQ(c->tool_calls[0].name, "get_current_weather");
  EXPECT_EQ(c->tool_calls[0].arguments, "{\n\"location\": \"Boston, MA\"\n}");  // as written
  EXPECT_EQ(c->tool_calls[0].signature, "");
  EXPECT_EQ(c->tool_calls[1].id, "call_def456");
  EXPECT_EQ(c->tool_calls[1].name, "get_current_time");
  EXPECT_EQ(c->tool_calls[1].arguments, "{\"timezone\": \"EST\"}");
}

TEST_F(ParseTest, ToolCallsWithTextAndMissingIds) {
  auto c = Parse(200, R"({"choices": [{"message": {"role": "assistant",
    "content": "Let me check.",
    "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}},
                   {"type": "function", "function": {"name": "g", "arguments": "oops"}}]},
    "finish_reason": "tool_calls"}]})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "Let me check.");
  ASSERT_EQ(c->tool_calls.size(), 2u);
  // Ids plumb assigns where a local server sends none; arguments that do not parse are kept.
  EXPECT_EQ(c->tool_calls[0].id, "call_0");
  EXPECT_EQ(c->tool_calls[1].id, "call_1");
  EXPECT_EQ(c->tool_calls[1].arguments, "oops");
  auto nameless = Parse(200, R"({"choices": [{"message": {"content": null,
    "tool_calls": [{"id": "x", "type": "function", "function": {"arguments": "{}"}}]}}]})");
  ASSERT_FALSE(nameless.has_value());
  EXPECT_EQ(nameless.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(nameless.error().message(),
            "backend 'openai': unexpected response: a tool call has no function name");
}

// A reply's calls go back in the next request exactly as they came.
TEST_F(ParseTest, ParsedCallsRoundTripIntoTheNextRequest) {
  auto c = Parse(200, R"({"choices": [{"message": {"role": "assistant", "content": null,
    "tool_calls": [{"id": "call_abc123", "type": "function",
      "function": {"name": "get_current_weather",
                   "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}]},
    "finish_reason": "tool_calls"}]})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  ModelCall next;
  next.messages = {{"user", "Weather?"},
                   {"assistant", c->text, c->tool_calls, "", ""},
                   {"tool", "Sunny, 22 C", {}, "call_abc123", "get_current_weather"}};
  Json body = Json::parse(AsHttp(b).BuildRequest(next)->body);
  EXPECT_EQ(body["messages"][1], Json::parse(R"({"role": "assistant", "content": null,
    "tool_calls": [{"id": "call_abc123", "type": "function",
      "function": {"name": "get_current_weather",
                   "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}]})"));
  EXPECT_EQ(body["messages"][2], Json::parse(R"({"role": "tool", "tool_call_id": "call_abc123",
    "content": "Sunny, 22 C"})"));
}

}  // namespace
}  // namespace plumb
