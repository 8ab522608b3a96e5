// anthropic/<model>: request building and response mapping as pure functions.
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
using testing::Header;

TEST(AnthropicBackend, BuildsMessagesRequest) {
  Fixture f;
  FakeEnv env(
      std::map<std::string, std::string>{{"ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789"}});
  auto b = f.Make("anthropic/claude-sonnet-4-5", env);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ((*b)->Id(), "anthropic-messages@1");
  EXPECT_EQ((*b)->CacheIdentity(),
            "anthropic-messages@1|https://api.anthropic.com|claude-sonnet-4-5");
  ModelCall call;
  call.messages = {{"system", "Be safe."},
                   {"user", "Hi"},
                   {"assistant", "Hello."},
                   {"system", "Answer with one letter."},
                   {"user", "A or B?"}};
  call.params.temperature = 0;
  call.params.max_tokens = 120;
  call.params.top_p = 0.9;
  call.params.seed = 7;
  call.params.stop = {"END"};
  call.params.top_logprobs = 5;
  call.params.json_schema = Json{{"type", "object"}};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(Header(*req, "x-api-key"), "sk-ant-test-key-0123456789");
  EXPECT_EQ(Header(*req, "anthropic-version"), "2023-06-01");
  EXPECT_EQ(Header(*req, "content-type"), "application/json");
  EXPECT_EQ(Header(*req, "Authorization"), "<absent>");
  Json body = Json::parse(req->body);
  EXPECT_EQ(body["model"], "claude-sonnet-4-5");
  EXPECT_EQ(body["max_tokens"], 120);
  EXPECT_EQ(body["system"], "Be safe.\n\nAnswer with one letter.");
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][0], (Json{{"role", "user"}, {"content", "Hi"}}));
  EXPECT_EQ(body["messages"][1], (Json{{"role", "assistant"}, {"content", "Hello."}}));
  EXPECT_EQ(body["messages"][2], (Json{{"role", "user"}, {"content", "A or B?"}}));
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["top_p"], 0.9);
  EXPECT_EQ(body["stop_sequences"], Json::array({"END"}));
  // The API has no seed, logprobs or structured output.
  EXPECT_FALSE(body.contains("seed"));
  EXPECT_FALSE(body.contains("logprobs"));
  EXPECT_FALSE(body.contains("top_logprobs"));
  EXPECT_FALSE(body.contains("response_format"));
  EXPECT_FALSE(body.contains("stop"));
}

TEST(AnthropicBackend, DefaultsMaxTokensAndOmitsUnsetParams) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("anthropic/m", env, "http://127.0.0.1:8080/");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ModelCall call;
  call.messages = {{"user", "Hi"}};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->url, "http://127.0.0.1:8080/v1/messages");
  EXPECT_EQ(Header(*req, "x-api-key"), "<absent>") << "no key, no header";
  EXPECT_EQ(Header(*req, "anthropic-version"), "2023-06-01");
  Json body = Json::parse(req->body);
  EXPECT_EQ(body["max_tokens"], 1024);
  EXPECT_FALSE(body.contains("system"));
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("top_p"));
  EXPECT_FALSE(body.contains("stop_sequences"));
}

TEST(AnthropicBackend, RejectsUnknownRoles) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("anthropic/m", env, "http://127.0.0.1:8080");
  ModelCall call;
  call.messages = {{"user", "Hi"}, {"robot", "{}"}};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_FALSE(req.has_value());
  EXPECT_EQ(req.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(req.error().message(), "backend 'anthropic': message 1 has unknown role 'robot'");
}

TEST(AnthropicBackend, BaseUrlFromEnvironment) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"ANTHROPIC_BASE_URL", "http://127.0.0.1:8000/"}});
  auto b = f.Make("anthropic/m", env);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(AsHttp(*b).BuildRequest(ModelCall{})->url, "http://127.0.0.1:8000/v1/messages");
  // --base-url wins over the environment.
  auto flag = f.Make("anthropic/m", env, "https://proxy.example.com");
  EXPECT_EQ(AsHttp(*flag).BuildRequest(ModelCall{})->url, "https://proxy.example.com/v1/messages");
}

TEST(AnthropicBackend, MissingKeyForOfficialApiIsAClearError) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("anthropic/claude-sonnet-4-5", env);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(b.error().message(),
            "backend 'anthropic': ANTHROPIC_API_KEY is not set (export it, or name another "
            "variable with --api-key-env)");
  auto named = f.Make("anthropic/m", env, "", "MY_KEY");
  ASSERT_FALSE(named.has_value());
  EXPECT_EQ(named.error().message(),
            "backend 'anthropic': MY_KEY is not set (export it, or name another variable with "
            "--api-key-env)");
}

TEST(AnthropicBackend, KeyFromNamedVariable) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"MY_KEY", "sk-ant-named-key-424242"}});
  auto b = f.Make("anthropic/m", env, "", "MY_KEY");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(Header(*AsHttp(*b).BuildRequest(ModelCall{}), "x-api-key"), "sk-ant-named-key-424242");
}

TEST(AnthropicBackend, RejectsBadUrlsOptionsAndSpecs) {
  Fixture f;
  FakeEnv env({});
  auto url = f.Make("anthropic/m", env, "localhost:8000");
  EXPECT_EQ(url.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(url.error().message(),
            "backend 'anthropic': base URL 'localhost:8000' must start with http:// or https:// "
            "(see --base-url)");
  auto opt = f.Make("anthropic/m", env, "http://127.0.0.1:1", "", {{"beta", "x"}});
  EXPECT_EQ(opt.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(opt.error().message(),
            "backend 'anthropic': unknown --backend-option 'beta' (known: none)");
  EXPECT_EQ(f.Make("anthropic/", env).error().code(), StatusCode::kInvalidArgument);
}

TEST(AnthropicBackend, SendsToolsAndToolTurnsInTheDocumentedShape) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("anthropic/m", env, "http://127.0.0.1:8080");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ModelCall call;
  call.messages = {{"system", "You are an ops agent."}, {"user", "Check the alert."}};
  Message first{"assistant", "Let me look.", {}, "", ""};
  // The signature is another provider's: it never reaches this API.
  first.tool_calls = {ToolCall{"toolu_01", "read_file", R"({"path":"/ops/alert.txt"})", "sig"},
                      ToolCall{"toolu_02", "list_dir", R"({"path": "/ops", "depth": 2})", ""}};
  call.messages.push_back(first);
  call.messages.push_back(Message{"tool", "Power is out.", {}, "toolu_01", "read_file"});
  call.messages.push_back(Message{"tool", "alert.txt\nrunbook.md", {}, "toolu_02", "list_dir"});
  Message second{"assistant", "", {}, "", ""};
  second.tool_calls = {ToolCall{"toolu_03", "read_file", "not json", ""}};
  call.messages.push_back(second);
  call.messages.push_back(
      Message{"tool",
              "Error: the arguments are not a JSON object. No action was taken.",
              {},
              "toolu_03",
              "read_file"});
  call.tools = {ToolSpec{"read_file", "Read a file.",
                         Json{{"type", "object"},
                              {"properties", {{"path", {{"type", "string"}}}}},
                              {"required", {"path"}}}},
                ToolSpec{"list_dir", "List a folder.",
                         Json{{"type", "object"}, {"properties", Json::object()}}}};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value()) << req.error().message();
  Json body = Json::parse(req->body);
  EXPECT_EQ(body["system"], "You are an ops agent.");
  EXPECT_EQ(body["tools"], Json::parse(R"([
    {"name": "read_file", "description": "Read a file.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                      "required": ["path"]}},
    {"name": "list_dir", "description": "List a folder.",
     "input_schema": {"type": "object", "properties": {}}}])"));
  EXPECT_EQ(body["tool_choice"], (Json{{"type", "auto"}}));
  ASSERT_EQ(body["messages"].size(), 5u);
  EXPECT_EQ(body["messages"][0], (Json{{"role", "user"}, {"content", "Check the alert."}}));
  // The input is an object, parsed from the arguments text.
  EXPECT_EQ(body["messages"][1], Json::parse(R"({"role": "assistant", "content": [
    {"type": "text", "text": "Let me look."},
    {"type": "tool_use", "id": "toolu_01", "name": "read_file",
     "input": {"path": "/ops/alert.txt"}},
    {"type": "tool_use", "id": "toolu_02", "name": "list_dir",
     "input": {"path": "/ops", "depth": 2}}]})"));
  // Both results of that turn in one user message.
  EXPECT_EQ(body["messages"][2], Json::parse(R"({"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Power is out."},
    {"type": "tool_result", "tool_use_id": "toolu_02",
     "content": "alert.txt\nrunbook.md"}]})"));
  // No text block for an empty text; arguments that are not an object still give an object.
  EXPECT_EQ(body["messages"][3], Json::parse(R"({"role": "assistant", "content": [
    {"type": "tool_use", "id": "toolu_03", "name": "read_file",
     "input": {"arguments": "not json"}}]})"));
  EXPECT_EQ(body["messages"][4], Json::parse(R"({"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "toolu_03",
     "content": "Error: the arguments are not a JSON object. No action was taken."}]})"));
  call.tool_choice = "required";
  EXPECT_EQ(Json::parse(AsHttp(*b).BuildRequest(call)->body)["tool_choice"],
            (Json{{"type", "any"}}));
  call.tools.clear();
  body = Json::parse(AsHttp(*b).BuildRequest(call)->body);
  EXPECT_FALSE(body.contains("tools"));
  EXPECT_FALSE(body.contains("tool_choice"));
}

class AnthropicParseTest : public ::testing::Test {
 protected:
  Fixture f;
  FakeEnv env{{{"ANTHROPIC_API_KEY", "sk-ant-parse-test-key-999"}}};
  std::unique_ptr<Backend> b;
  void SetUp() override { b = std::move(f.Make("anthropic/claude-m", env)).value(); }
  Result<Completion> Parse(int status, const std::string& body) {
    HttpResponse r;
    r.status = status;
    r.body = body;
    return AsHttp(b).ParseResponse(r);
  }
  static std::string Error(const std::string& type, const std::string& message) {
    return Json{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}.dump();
  }
};

TEST_F(AnthropicParseTest, ParsesTextBlocksAndUsage) {
  auto c = Parse(200, R"({
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
    "model": "claude-m",
    "content": [{"type": "thinking", "thinking": "Let me see.", "signature": "abc"},
                {"type": "text", "text": "Answer: "},
                {"type": "text", "text": "B"}],
    "stop_reason": "end_turn", "stop_sequence": null,
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 100,
              "cache_read_input_tokens": 2000, "output_tokens": 4}})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "Answer: B");
  EXPECT_EQ(c->finish_reason, "end_turn");
  EXPECT_EQ(*c->prompt_tokens, 2112);
  EXPECT_EQ(*c->completion_tokens, 4);
  EXPECT_TRUE(c->first_token_logprobs.empty());
}

TEST_F(AnthropicParseTest, UsageWithoutCacheFields) {
  auto c =
      Parse(200, R"({"type":"message","role":"assistant","content":[{"type":"text","text":"A"}],
    "stop_reason":"max_tokens","usage":{"input_tokens":7,"output_tokens":1}})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->finish_reason, "max_tokens");
  EXPECT_EQ(*c->prompt_tokens, 7);
  EXPECT_EQ(*c->completion_tokens, 1);
}

// issue 11: no text is an error, never an empty answer.
TEST_F(AnthropicParseTest, Issue11EmptyContentIsAnError) {
  auto stopped =
      Parse(200, R"({"type":"message","role":"assistant","content":[],"stop_reason":"refusal"})");
  EXPECT_EQ(stopped.error().code(), StatusCode::kInvalidArgument);
  auto empty =
      Parse(200, R"({"type":"message","role":"assistant","content":[],"stop_reason":"end_turn"})");
  EXPECT_EQ(empty.error().code(), StatusCode::kUnavailable);
}

TEST_F(AnthropicParseTest, MalformedBodiesAreRetryable) {
  auto c = Parse(200, R"({"content":[{"type":"text",)");
  EXPECT_EQ(c.error().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetryable(c.error().code()));
  EXPECT_EQ(c.error().message(), "backend 'anthropic': HTTP 200 with a malformed JSON body");
  EXPECT_EQ(Parse(200, R"({"type":"message"})").error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Parse(200, R"([1,2])").error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Parse(200, R"({"content":[{"type":"text","text":5}]})").error().code(),
            StatusCode::kUnavailable);
}

TEST_F(AnthropicParseTest, MapsStatusCodes) {
  auto code = [&](int status, const std::string& body) {
    return Parse(status, body).error().code();
  };
  EXPECT_EQ(code(401, Error("authentication_error", "invalid x-api-key")),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(code(403, Error("permission_error", "no access")), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(404, Error("not_found_error", "model: claude-m")), StatusCode::kNotFound);
  EXPECT_EQ(code(408, "timeout"), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(code(413, Error("request_too_large", "too large")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(429, Error("rate_limit_error", "slow down")), StatusCode::kResourceExhausted);
  EXPECT_EQ(code(500, Error("api_error", "internal")), StatusCode::kUnavailable);
  EXPECT_EQ(code(502, "<html>bad gateway</html>"), StatusCode::kUnavailable);
  EXPECT_EQ(code(529, Error("overloaded_error", "Overloaded")), StatusCode::kUnavailable);
  EXPECT_EQ(code(400, Error("invalid_request_error", "prompt is too long")),
            StatusCode::kInvalidArgument);
}

TEST_F(AnthropicParseTest, ErrorMessagesVerbatim) {
  EXPECT_EQ(
      Parse(400, Error("invalid_request_error", "max_tokens: must be positive")).error().message(),
      "backend 'anthropic': HTTP 400: max_tokens: must be positive");
  EXPECT_EQ(Parse(404, Error("not_found_error", "model: claude-m")).error().message(),
            "backend 'anthropic': HTTP 404: model: claude-m (check the model name 'claude-m' and "
            "--base-url)");
  EXPECT_EQ(Parse(529, Error("overloaded_error", "Overloaded")).error().message(),
            "backend 'anthropic': HTTP 529: Overloaded");
  // A body that is not the API's error shape is quoted as is.
  EXPECT_EQ(Parse(503, "upstream connect error").error().message(),
            "backend 'anthropic': HTTP 503: upstream connect error");
  // Shortened to 300 characters.
  auto c = Parse(400, Error("invalid_request_error", std::string(1000, 'x')));
  EXPECT_EQ(c.error().message(), "backend 'anthropic': HTTP 400: " + std::string(300, 'x') + "...");
}

TEST_F(AnthropicParseTest, UnauthorizedNeverEchoesTheKey) {
  auto c =
      Parse(401, Error("authentication_error", "invalid x-api-key: sk-ant-parse-test-key-999"));
  EXPECT_EQ(c.error().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(c.error().message(),
            "backend 'anthropic': HTTP 401: invalid x-api-key: [redacted] (check "
            "ANTHROPIC_API_KEY or --api-key-env)");
}

TEST_F(AnthropicParseTest, ProxyKeyThatDoesNotLookLikeAKeyIsRedacted) {
  FakeEnv proxy_env{{{"PROXY_KEY", "plain-proxy-secret-7788"}}};
  auto proxy = f.Make("anthropic/m", proxy_env, "https://llm-proxy.example.com", "PROXY_KEY");
  ASSERT_TRUE(proxy.has_value()) << proxy.error().message();
  HttpResponse r;
  r.status = 403;
  r.body =
      R"({"type":"error","error":{"type":"permission_error","message":"key plain-proxy-secret-7788 may not use m"}})";
  auto c = AsHttp(*proxy).ParseResponse(r);
  EXPECT_EQ(c.error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(c.error().message(), "backend 'anthropic': HTTP 403: key [redacted] may not use m");
}

TEST_F(AnthropicParseTest, EmptyCreditBalanceStopsTheRun) {
  auto c = Parse(
      400,
      R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}})");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsFatalForRun(c.error().code()));
}

// The reply the API documents for tool use: text, then tool_use blocks.
TEST_F(AnthropicParseTest, ParsesToolUseBlocks) {
  auto c = Parse(200, R"({
    "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-m",
    "content": [
      {"type": "text", "text": "I'll check the weather in both cities."},
      {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
       "input": {"location": "San Francisco, CA", "unit": "celsius"}},
      {"type": "tool_use", "id": "toolu_01B19r91rw91mr928946mr0", "name": "get_weather",
       "input": {"location": "New York, NY"}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 472, "output_tokens": 89}})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "I'll check the weather in both cities.");
  EXPECT_EQ(c->finish_reason, "tool_use");
  EXPECT_EQ(*c->prompt_tokens, 472);
  EXPECT_EQ(*c->completion_tokens, 89);
  ASSERT_EQ(c->tool_calls.size(), 2u);
  EXPECT_EQ(c->tool_calls[0].id, "toolu_01A09q90qw90lq917835lq9");
  EXPECT_EQ(c->tool_calls[0].name, "get_weather");
  EXPECT_EQ(Json::parse(c->tool_calls[0].arguments),
            Json::parse(R"({"location": "San Francisco, CA", "unit": "celsius"})"));
  EXPECT_EQ(c->tool_calls[0].signature, "");
  EXPECT_EQ(c->tool_calls[1].id, "toolu_01B19r91rw91mr928946mr0");
  EXPECT_EQ(c->tool_calls[1].arguments, R"({"location":"New York, NY"})");
}

TEST_F(AnthropicParseTest, ToolUseWithoutTextIsAReply) {
  auto c = Parse(200, R"({"type": "message", "role": "assistant", "content": [
    {"type": "tool_use", "id": "toolu_9", "name": "list_dir", "input": {}}],
    "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "");
  ASSERT_EQ(c->tool_calls.size(), 1u);
  EXPECT_EQ(c->tool_calls[0].id, "toolu_9");
  EXPECT_EQ(c->tool_calls[0].arguments, "{}");
  auto nameless = Parse(200, R"({"type": "message", "content": [
    {"type": "tool_use", "id": "toolu_9", "input": {}}], "stop_reason": "tool_use"})");
  ASSERT_FALSE(nameless.has_value());
  EXPECT_EQ(nameless.error().message(),
            "backend 'anthropic': unexpected response: a tool_use block has no name");
}

// A reply's calls go back in the next request as the same tool_use blocks.
TEST_F(AnthropicParseTest, ParsedCallsRoundTripIntoTheNextRequest) {
  auto c = Parse(200, R"({"type": "message", "role": "assistant", "content": [
    {"type": "text", "text": "Checking."},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
     "input": {"location": "Paris", "days": [1, 2]}}], "stop_reason": "tool_use"})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  ModelCall next;
  next.messages = {{"user", "Weather?"},
                   {"assistant", c->text, c->tool_calls, "", ""},
                   {"tool", "Rain", {}, "toolu_01", "get_weather"}};
  Json body = Json::parse(AsHttp(b).BuildRequest(next)->body);
  EXPECT_EQ(body["messages"][1], Json::parse(R"({"role": "assistant", "content": [
    {"type": "text", "text": "Checking."},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
     "input": {"location": "Paris", "days": [1, 2]}}]})"));
  EXPECT_EQ(body["messages"][2], Json::parse(R"({"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Rain"}]})"));
}

}  // namespace
}  // namespace plumb
