// google/<model>: request building and response mapping as pure functions.
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

constexpr const char* kKey = "AIzaSyTestKey0123456789abcdefghijklmno";

TEST(GeminiBackend, BuildsGenerateContentRequest) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"GEMINI_API_KEY", kKey}});
  auto b = f.Make("google/gemini-2.5-flash", env);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ((*b)->Id(), "gemini-generate@1");
  EXPECT_EQ((*b)->CacheIdentity(),
            "gemini-generate@1|https://generativelanguage.googleapis.com|gemini-2.5-flash");
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
  call.params.stop = {"\n\n"};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(
      req->url,
      "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
  EXPECT_EQ(req->url.find(kKey), std::string::npos) << "the key is never in the URL";
  EXPECT_EQ(Header(*req, "x-goog-api-key"), kKey);
  EXPECT_EQ(Header(*req, "Content-Type"), "application/json");
  EXPECT_EQ(Header(*req, "Authorization"), "<absent>");
  Json body = Json::parse(req->body);
  EXPECT_FALSE(body.contains("model"));
  EXPECT_EQ(body["systemInstruction"],
            (Json{{"parts", Json::array({{{"text", "Be safe.\n\nAnswer with one letter."}}})}}));
  ASSERT_EQ(body["contents"].size(), 3u);
  EXPECT_EQ(body["contents"][0],
            (Json{{"role", "user"}, {"parts", Json::array({{{"text", "Hi"}}})}}));
  EXPECT_EQ(body["contents"][1],
            (Json{{"role", "model"}, {"parts", Json::array({{{"text", "Hello."}}})}}));
  EXPECT_EQ(body["contents"][2],
            (Json{{"role", "user"}, {"parts", Json::array({{{"text", "A or B?"}}})}}));
  const Json& g = body["generationConfig"];
  EXPECT_EQ(g["temperature"], 0.0);
  EXPECT_EQ(g["topP"], 0.9);
  EXPECT_EQ(g["maxOutputTokens"], 120);
  EXPECT_EQ(g["stopSequences"], Json::array({"\n\n"}));
  EXPECT_EQ(g["seed"], 7);
  EXPECT_FALSE(g.contains("responseLogprobs"));
  EXPECT_FALSE(g.contains("responseMimeType"));
}

TEST(GeminiBackend, LogprobsAndJsonMode) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"GEMINI_API_KEY", kKey}});
  auto b = f.Make("google/gemini-2.0-flash", env);
  ModelCall call;
  call.messages = {{"user", "Score it"}};
  call.params.top_logprobs = 5;
  call.params.json_schema = Json{{"type", "object"}, {"additionalProperties", false}};
  call.params.require_json_schema = true;
  Json g = Json::parse(AsHttp(*b).BuildRequest(call)->body)["generationConfig"];
  EXPECT_EQ(g["responseLogprobs"], true);
  EXPECT_EQ(g["logprobs"], 5);
  EXPECT_EQ(g["responseMimeType"], "application/json");
  // The schema itself is never sent: Gemini's dialect differs.
  EXPECT_FALSE(g.contains("responseSchema"));
  EXPECT_FALSE(g.contains("responseJsonSchema"));
  // Capped at the API's limit.
  call.params.top_logprobs = 50;
  g = Json::parse(AsHttp(*b).BuildRequest(call)->body)["generationConfig"];
  EXPECT_EQ(g["logprobs"], 20);
}

TEST(GeminiBackend, OmitsUnsetParams) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("google/gemma", env, "http://127.0.0.1:8080/");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ModelCall call;
  call.messages = {{"user", "Hi"}};
  auto req = AsHttp(*b).BuildRequest(call);
  EXPECT_EQ(req->url, "http://127.0.0.1:8080/v1beta/models/gemma:generateContent");
  EXPECT_EQ(Header(*req, "x-goog-api-key"), "<absent>") << "no key, no header";
  Json body = Json::parse(req->body);
  EXPECT_FALSE(body.contains("systemInstruction"));
  EXPECT_FALSE(body.contains("generationConfig"));
}

TEST(GeminiBackend, RejectsUnknownRoles) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("google/m", env, "http://127.0.0.1:8080");
  ModelCall call;
  call.messages = {{"model", "Hi"}};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_FALSE(req.has_value());
  EXPECT_EQ(req.error().message(), "backend 'google': message 0 has unknown role 'model'");
}

TEST(GeminiBackend, BaseUrlFromEnvironment) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"GEMINI_BASE_URL", "http://127.0.0.1:8000"}});
  auto b = f.Make("google/m", env);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(AsHttp(*b).BuildRequest(ModelCall{})->url,
            "http://127.0.0.1:8000/v1beta/models/m:generateContent");
  EXPECT_EQ(f.Make("google/m", env, "ftp://x").error().message(),
            "backend 'google': base URL 'ftp://x' must start with http:// or https:// (see "
            "--base-url)");
}

TEST(GeminiBackend, KeyVariablesInOrder) {
  Fixture f;
  FakeEnv google_only(
      std::map<std::string, std::string>{{"GOOGLE_API_KEY", "AIzaGoogleOnly0123456789abcdefgh"}});
  auto b = f.Make("google/m", google_only);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(Header(*AsHttp(*b).BuildRequest(ModelCall{}), "x-goog-api-key"),
            "AIzaGoogleOnly0123456789abcdefgh");
  FakeEnv both(std::map<std::string, std::string>{{"GEMINI_API_KEY", "gemini-first-key"},
                                                  {"GOOGLE_API_KEY", "google-second-key"},
                                                  {"MY_KEY", "named-key-wins"}});
  auto gemini = f.Make("google/m", both);
  EXPECT_EQ(Header(*AsHttp(*gemini).BuildRequest(ModelCall{}), "x-goog-api-key"),
            "gemini-first-key");
  auto named = f.Make("google/m", both, "", "MY_KEY");
  EXPECT_EQ(Header(*AsHttp(*named).BuildRequest(ModelCall{}), "x-goog-api-key"), "named-key-wins");
}

TEST(GeminiBackend, MissingKeyForOfficialApiIsAClearError) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("google/gemini-2.5-flash", env);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(b.error().message(),
            "backend 'google': GEMINI_API_KEY is not set (or GOOGLE_API_KEY; export one, or name "
            "another variable with --api-key-env)");
  // A named variable is not replaced by the defaults.
  FakeEnv defaults(std::map<std::string, std::string>{{"GEMINI_API_KEY", kKey}});
  auto named = f.Make("google/m", defaults, "", "MY_KEY");
  ASSERT_FALSE(named.has_value());
  EXPECT_EQ(named.error().message(),
            "backend 'google': MY_KEY is not set (export it, or name another variable with "
            "--api-key-env)");
}

TEST(GeminiBackend, RejectsUnknownOptions) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"GEMINI_API_KEY", kKey}});
  auto b = f.Make("google/m", env, "", "", {{"safety", "off"}});
  EXPECT_EQ(b.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.error().message(),
            "backend 'google': unknown --backend-option 'safety' (known: none)");
}

TEST(GeminiBackend, SendsToolsAndToolTurnsInTheDocumentedShape) {
  Fixture f;
  FakeEnv env({});
  auto b = f.Make("google/m", env, "http://127.0.0.1:8080");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ModelCall call;
  call.messages = {{"system", "You are an ops agent."}, {"user", "Check the alert."}};
  Message first{"assistant", "", {}, "", ""};
  // Ids plumb assigned (call_N) are not the API's and are not sent.
  first.tool_calls = {ToolCall{"call_0", "read_file", R"({"path":"/ops/alert.txt"})", "sig-A"},
                      ToolCall{"call_1", "list_dir", R"({"path": "/ops"})", ""}};
  call.messages.push_back(first);
  call.messages.push_back(Message{"tool", "Power is out.", {}, "call_0", "read_file"});
  call.messages.push_back(Message{"tool", "alert.txt\nrunbook.md", {}, "call_1", "list_dir"});
  Message second{"assistant", "Paging on-call.", {}, "", ""};
  second.tool_calls = {ToolCall{"fc-7", "page", "{}", ""}};  // an id the API gave
  call.messages.push_back(second);
  call.messages.push_back(Message{"tool", "ok", {}, "fc-7", "page"});
  call.tools = {ToolSpec{"read_file", "Read a file.",
                         Json{{"type", "object"},
                              {"properties", {{"path", {{"type", "string"}}}}},
                              {"required", {"path"}},
                              {"additionalProperties", false}}},
                ToolSpec{"page", "Page the on-call engineer.",
                         Json{{"type", "object"}, {"properties", Json::object()}}}};
  auto req = AsHttp(*b).BuildRequest(call);
  ASSERT_TRUE(req.has_value()) << req.error().message();
  Json body = Json::parse(req->body);
  // The schema in the subset Gemini accepts (no additionalProperties); no parameters for a
  // tool without arguments.
  EXPECT_EQ(body["tools"], Json::parse(R"([{"functionDeclarations": [
    {"name": "read_file", "description": "Read a file.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                    "required": ["path"]}},
    {"name": "page", "description": "Page the on-call engineer."}]}])"));
  EXPECT_EQ(body["toolConfig"], Json::parse(R"({"functionCallingConfig": {"mode": "AUTO"}})"));
  ASSERT_EQ(body["contents"].size(), 5u);
  EXPECT_EQ(body["contents"][0],
            (Json{{"role", "user"}, {"parts", Json::array({{{"text", "Check the alert."}}})}}));
  EXPECT_EQ(body["contents"][1], Json::parse(R"({"role": "model", "parts": [
    {"functionCall": {"name": "read_file", "args": {"path": "/ops/alert.txt"}},
     "thoughtSignature": "sig-A"},
    {"functionCall": {"name": "list_dir", "args": {"path": "/ops"}}}]})"));
  EXPECT_EQ(body["contents"][2], Json::parse(R"({"role": "user", "parts": [
    {"functionResponse": {"name": "read_file", "response": {"result": "Power is out."}}},
    {"functionResponse": {"name": "list_dir",
                          "response": {"result": "alert.txt\nrunbook.md"}}}]})"));
  EXPECT_EQ(body["contents"][3], Json::parse(R"({"role": "model", "parts": [
    {"text": "Paging on-call."},
    {"functionCall": {"name": "page", "args": {}, "id": "fc-7"}}]})"));
  EXPECT_EQ(body["contents"][4], Json::parse(R"({"role": "user", "parts": [
    {"functionResponse": {"name": "page", "response": {"result": "ok"}, "id": "fc-7"}}]})"));
  call.tool_choice = "required";
  EXPECT_EQ(Json::parse(AsHttp(*b).BuildRequest(call)->body)["toolConfig"],
            Json::parse(R"({"functionCallingConfig": {"mode": "ANY"}})"));
  call.tools.clear();
  body = Json::parse(AsHttp(*b).BuildRequest(call)->body);
  EXPECT_FALSE(body.contains("tools"));
  EXPECT_FALSE(body.contains("toolConfig"));
}

class GeminiParseTest : public ::testing::Test {
 protected:
  Fixture f;
  FakeEnv env{{{"GEMINI_API_KEY", "AIzaParseTestKey999xxxxxxxxxxxxxxxxxxxx"}}};
  std::unique_ptr<Backend> b;
  void SetUp() override { b = std::move(f.Make("google/gemini-m", env)).value(); }
  Result<Completion> Parse(int status, const std::string& body) {
    HttpResponse r;
    r.status = status;
    r.body = body;
    return AsHttp(b).ParseResponse(r);
  }
  static std::string Error(int code, const std::string& message, const std::string& status) {
    return Json{{"error", {{"code", code}, {"message", message}, {"status", status}}}}.dump();
  }
};

TEST_F(GeminiParseTest, ErrorsShapedUnlikeTheProtocolAreErrorsNotCrashes) {
  // Found by the response fuzzer: "error" as a string, and fields of other types.
  for (const char* body :
       {R"({"error": "invalid request"})", R"({"error": {"status": 7, "message": ["x"]}})",
        R"({"error": {"status": "FAILED_PRECONDITION", "message": 3}})"}) {
    auto c = Parse(400, body);
    ASSERT_FALSE(c.has_value()) << body;
    EXPECT_EQ(c.error().code(), std::string(body).find("FAILED_PRECONDITION") != std::string::npos
                                    ? StatusCode::kFailedPrecondition
                                    : StatusCode::kInvalidArgument)
        << body;
  }
}

TEST_F(GeminiParseTest, ParsesCandidateAndUsage) {
  auto c = Parse(200, R"({
    "candidates": [{
      "content": {"parts": [{"text": "Answer: "}, {"text": "B"}], "role": "model"},
      "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 4, "totalTokenCount": 16},
    "modelVersion": "gemini-m", "responseId": "abc"})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "Answer: B");
  EXPECT_EQ(c->finish_reason, "STOP");
  EXPECT_EQ(*c->prompt_tokens, 12);
  EXPECT_EQ(*c->completion_tokens, 4);
  EXPECT_TRUE(c->first_token_logprobs.empty());
}

TEST_F(GeminiParseTest, ReadsFirstTokenLogprobs) {
  auto c = Parse(200, R"({
    "candidates": [{
      "content": {"parts": [{"text": "85"}], "role": "model"},
      "finishReason": "STOP", "avgLogprobs": -0.05,
      "logprobsResult": {
        "topCandidates": [
          {"candidates": [{"token": "85", "tokenId": 5600, "logProbability": -0.1},
                          {"token": "90", "tokenId": 2744, "logProbability": -2.4}]},
          {"candidates": [{"token": "!", "tokenId": 1, "logProbability": -9.0}]}],
        "chosenCandidates": [{"token": "85", "tokenId": 5600, "logProbability": -0.1}]}}],
    "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 1}})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  ASSERT_EQ(c->first_token_logprobs.size(), 2u);
  EXPECT_EQ(c->first_token_logprobs[0].first, "85");
  EXPECT_DOUBLE_EQ(c->first_token_logprobs[0].second, -0.1);
  EXPECT_EQ(c->first_token_logprobs[1].first, "90");
  EXPECT_DOUBLE_EQ(c->first_token_logprobs[1].second, -2.4);
}

// issue 11: no text is an error, never an empty answer.
TEST_F(GeminiParseTest, Issue11SafetyStopWithoutContentIsAnItemError) {
  auto c = Parse(200, R"({"candidates":[{"finishReason":"SAFETY","index":0,
    "safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}],
    "usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}})");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.error().message().find("SAFETY"), std::string::npos);
  auto none = Parse(200, R"({"candidates":[{"finishReason":"STOP","index":0}]})");
  EXPECT_EQ(none.error().code(), StatusCode::kUnavailable);
}

TEST_F(GeminiParseTest, BlockedPromptIsAnItemError) {
  auto c = Parse(200, R"({"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[
    {"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH"}]},
    "usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}})");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsRetryable(c.error().code()));
  EXPECT_FALSE(IsFatalForRun(c.error().code()));
  EXPECT_EQ(c.error().message(), "backend 'google': prompt blocked (SAFETY)");
  EXPECT_EQ(Parse(200, R"({"candidates":[],"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}})")
                .error()
                .message(),
            "backend 'google': prompt blocked (PROHIBITED_CONTENT)");
}

TEST_F(GeminiParseTest, MalformedBodiesAreRetryable) {
  auto c = Parse(200, R"({"candidates":[{"content":)");
  EXPECT_EQ(c.error().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetryable(c.error().code()));
  EXPECT_EQ(c.error().message(), "backend 'google': HTTP 200 with a malformed JSON body");
  // No candidates and no block reason: not this item's fault.
  EXPECT_EQ(Parse(200, R"({"usageMetadata":{}})").error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Parse(200, R"({"candidates":[{"content":{"parts":[{"text":1}]}}]})").error().code(),
            StatusCode::kUnavailable);
}

TEST_F(GeminiParseTest, MapsStatusCodes) {
  auto code = [&](int status, const std::string& body) {
    return Parse(status, body).error().code();
  };
  EXPECT_EQ(code(400, Error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      code(401, Error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")),
      StatusCode::kUnauthenticated);
  EXPECT_EQ(code(403, Error(403, "Permission denied.", "PERMISSION_DENIED")),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(code(404, Error(404, "models/gemini-m is not found", "NOT_FOUND")),
            StatusCode::kNotFound);
  EXPECT_EQ(code(408, ""), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(code(429, Error(429, "Resource has been exhausted", "RESOURCE_EXHAUSTED")),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(code(500, Error(500, "An internal error has occurred.", "INTERNAL")),
            StatusCode::kUnavailable);
  EXPECT_EQ(code(503, Error(503, "The model is overloaded.", "UNAVAILABLE")),
            StatusCode::kUnavailable);
  EXPECT_EQ(code(504, "gateway timeout"), StatusCode::kUnavailable);
}

TEST_F(GeminiParseTest, ErrorMessagesVerbatim) {
  EXPECT_EQ(
      Parse(404, Error(404, "models/gemini-m is not found for API version v1beta", "NOT_FOUND"))
          .error()
          .message(),
      "backend 'google': HTTP 404: models/gemini-m is not found for API version v1beta (check "
      "the model name 'gemini-m' and --base-url)");
  EXPECT_EQ(Parse(429, Error(429, "Resource has been exhausted (e.g. check quota).",
                             "RESOURCE_EXHAUSTED"))
                .error()
                .message(),
            "backend 'google': HTTP 429: Resource has been exhausted (e.g. check quota).");
}

TEST_F(GeminiParseTest, InvalidKeyIsUnauthenticatedAndNeverEchoed) {
  auto c =
      Parse(400, Error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"));
  EXPECT_EQ(c.error().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(IsFatalForRun(c.error().code()));
  EXPECT_EQ(c.error().message(),
            "backend 'google': HTTP 400: API key not valid. Please pass a valid API key. (check "
            "GEMINI_API_KEY or --api-key-env)");
  auto echoed = Parse(403, Error(403, "Key AIzaParseTestKey999xxxxxxxxxxxxxxxxxxxx is suspended",
                                 "PERMISSION_DENIED"));
  EXPECT_EQ(echoed.error().message(), "backend 'google': HTTP 403: Key [redacted] is suspended");
}

TEST_F(GeminiParseTest, UnauthenticatedNamesTheVariableUsed) {
  FakeEnv google_env{{{"GOOGLE_API_KEY", "plain-google-secret-31337"}}};
  auto g = f.Make("google/m", google_env);
  ASSERT_TRUE(g.has_value()) << g.error().message();
  HttpResponse r;
  r.status = 401;
  r.body = Error(401, "bad key plain-google-secret-31337", "UNAUTHENTICATED");
  EXPECT_EQ(
      AsHttp(*g).ParseResponse(r).error().message(),
      "backend 'google': HTTP 401: bad key [redacted] (check GOOGLE_API_KEY or --api-key-env)");
}

// A thinking model's parallel calls, as documented: the signature on the first call's part.
TEST_F(GeminiParseTest, ParsesFunctionCallsAndThoughtSignature) {
  auto c = Parse(200, R"({
    "candidates": [{
      "content": {
        "parts": [
          {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
           "thoughtSignature": "CiwBVKhc7nXl2Q=="},
          {"functionCall": {"name": "get_weather", "args": {"location": "London"}}}],
        "role": "model"},
      "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 24, "totalTokenCount": 94},
    "modelVersion": "gemini-m"})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "");
  EXPECT_EQ(c->finish_reason, "STOP");
  EXPECT_EQ(*c->prompt_tokens, 70);
  EXPECT_EQ(*c->completion_tokens, 24);
  ASSERT_EQ(c->tool_calls.size(), 2u);
  EXPECT_EQ(c->tool_calls[0].id, "call_0");
  EXPECT_EQ(c->tool_calls[0].name, "get_weather");
  EXPECT_EQ(c->tool_calls[0].arguments, R"({"location":"Paris"})");
  EXPECT_EQ(c->tool_calls[0].signature, "CiwBVKhc7nXl2Q==");
  EXPECT_EQ(c->tool_calls[1].id, "call_1");
  EXPECT_EQ(c->tool_calls[1].arguments, R"({"location":"London"})");
  EXPECT_EQ(c->tool_calls[1].signature, "");
}

TEST_F(GeminiParseTest, FunctionCallsWithTextThoughtsAndIds) {
  auto c = Parse(200, R"({"candidates": [{"content": {"role": "model", "parts": [
    {"text": "Planning the call.", "thought": true},
    {"text": "Reading it now."},
    {"functionCall": {"id": "fc-abc", "name": "read_file", "args": {"path": "/a"}}},
    {"functionCall": {"name": "list_dir"}}]}, "finishReason": "STOP"}]})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->text, "Reading it now.");
  ASSERT_EQ(c->tool_calls.size(), 2u);
  EXPECT_EQ(c->tool_calls[0].id, "fc-abc");
  EXPECT_EQ(c->tool_calls[0].arguments, R"({"path":"/a"})");
  EXPECT_EQ(c->tool_calls[1].id, "call_1");
  EXPECT_EQ(c->tool_calls[1].arguments, "{}");  // no args: no arguments
  auto nameless = Parse(200, R"({"candidates": [{"content": {"parts": [
    {"functionCall": {"args": {}}}]}, "finishReason": "STOP"}]})");
  ASSERT_FALSE(nameless.has_value());
  EXPECT_EQ(nameless.error().message(),
            "backend 'google': unexpected response: a functionCall has no name");
}

// The signature goes back in the same part as its functionCall in the next request.
TEST_F(GeminiParseTest, ThoughtSignatureRoundTripsIntoTheNextRequest) {
  auto c = Parse(200, R"({"candidates": [{"content": {"role": "model", "parts": [
    {"text": "Checking both."},
    {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
     "thoughtSignature": "CiwBVKhc7nXl2Q=="},
    {"functionCall": {"name": "get_weather", "args": {"location": "London"}}}]},
    "finishReason": "STOP"}]})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  ModelCall next;
  next.messages = {{"user", "Weather?"}, {"assistant", c->text, c->tool_calls, "", ""}};
  for (const auto& tc : c->tool_calls)
    next.messages.push_back(Message{"tool", "Rain", {}, tc.id, tc.name});
  Json body = Json::parse(AsHttp(b).BuildRequest(next)->body);
  ASSERT_EQ(body["contents"].size(), 3u);
  EXPECT_EQ(body["contents"][1], Json::parse(R"({"role": "model", "parts": [
    {"text": "Checking both."},
    {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
     "thoughtSignature": "CiwBVKhc7nXl2Q=="},
    {"functionCall": {"name": "get_weather", "args": {"location": "London"}}}]})"));
  EXPECT_EQ(body["contents"][2], Json::parse(R"({"role": "user", "parts": [
    {"functionResponse": {"name": "get_weather", "response": {"result": "Rain"}}},
    {"functionResponse": {"name": "get_weather", "response": {"result": "Rain"}}}]})"));
}

}  // namespace
}  // namespace plumb
