// google/<model>: the Gemini API's generateContent method.
#include <fmt/format.h>

#include <algorithm>

#include "backends/backends.h"
#include "plumb/log.h"

namespace plumb::backends {
namespace {

constexpr const char* kDefaultBaseUrl = "https://generativelanguage.googleapis.com";
constexpr const char* kDefaultKeyEnv = "GEMINI_API_KEY";
constexpr const char* kFallbackKeyEnv = "GOOGLE_API_KEY";
constexpr int kMaxLogprobs = 20;  // the API's limit

// Gemini answers a bad key with 400 INVALID_ARGUMENT rather than 401.
bool IsBadKeyError(const Json& body) {
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return false;
  const Json& e = body["error"];
  return e.value("status", "") == "INVALID_ARGUMENT" && e.contains("message") &&
         e["message"].is_string() &&
         e["message"].get<std::string>().find("API key not valid") != std::string::npos;
}

// A JSON Schema restricted to the OpenAPI subset that Gemini's function declarations accept
// (it rejects, e.g., additionalProperties and $schema).
Json GeminiSchema(const Json& schema) {
  if (!schema.is_object()) return schema;
  static const char* kKept[] = {"type",     "description", "enum",     "properties",
                                "required", "items",       "format",   "nullable",
                                "minimum",  "maximum",     "minItems", "maxItems"};
  Json out = Json::object();
  for (const char* k : kKept) {
    if (!schema.contains(k)) continue;
    const Json& v = schema[k];
    if (std::string_view(k) == "properties" && v.is_object()) {
      Json props = Json::object();
      for (const auto& [name, sub] : v.items()) props[name] = GeminiSchema(sub);
      out[k] = std::move(props);
    } else if (std::string_view(k) == "items") {
      out[k] = GeminiSchema(v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

class GeminiBackend final : public ApiBackend {
 public:
  GeminiBackend(const BackendContext& ctx, ApiEndpoint endpoint)
      : ApiBackend(ctx, std::move(endpoint)) {}

  std::string Id() const override { return "gemini-generate@1"; }
  std::string CacheIdentity() const override { return ApiCacheIdentity(); }

  Result<HttpRequest> BuildRequest(const ModelCall& call) const override {
    PLUMB_ASSIGN_OR_RETURN(SystemAndTurns split, SplitSystem(call.messages));
    Json contents = Json::array();
    for (const Message* m : split.turns) {
      if (m->role == "tool") {
        // A call's result: a functionResponse part; the results of one turn's calls share one
        // content, as the model's calls did.
        Json response = {{"name", m->name}, {"response", {{"result", m->content}}}};
        if (!m->tool_call_id.empty() && m->tool_call_id.rfind("call_", 0) != 0)
          response["id"] = m->tool_call_id;
        Json part = {{"functionResponse", std::move(response)}};
        if (!contents.empty() && contents.back()["role"] == "user" &&
            contents.back()["parts"].back().contains("functionResponse")) {
          contents.back()["parts"].push_back(std::move(part));
        } else {
          contents.push_back({{"role", "user"}, {"parts", Json::array({std::move(part)})}});
        }
        continue;
      }
      Json parts = Json::array();
      if (!m->content.empty() || m->tool_calls.empty()) parts.push_back({{"text", m->content}});
      for (const auto& tc : m->tool_calls) {
        Json args = Json::parse(tc.arguments, nullptr, false);
        if (!args.is_object()) args = {{"arguments", tc.arguments}};
        Json fc = {{"name", tc.name}, {"args", std::move(args)}};
        if (!tc.id.empty() && tc.id.rfind("call_", 0) != 0) fc["id"] = tc.id;
        Json part = {{"functionCall", std::move(fc)}};
        // Gemini's thinking models require the signature back in the part that carried it.
        if (!tc.signature.empty()) part["thoughtSignature"] = tc.signature;
        parts.push_back(std::move(part));
      }
      contents.push_back(
          {{"role", m->role == "user" ? "user" : "model"}, {"parts", std::move(parts)}});
    }
    Json body = {{"contents", std::move(contents)}};
    if (split.system) {
      body["systemInstruction"] = {{"parts", Json::array({{{"text", *split.system}}})}};
    }
    const GenerationParams& p = call.params;
    Json config = Json::object();
    if (p.temperature) config["temperature"] = *p.temperature;
    if (p.top_p) config["topP"] = *p.top_p;
    if (p.max_tokens) config["maxOutputTokens"] = *p.max_tokens;
    if (!p.stop.empty()) config["stopSequences"] = p.stop;
    if (p.seed) config["seed"] = *p.seed;
    if (p.top_logprobs) {
      config["responseLogprobs"] = true;
      config["logprobs"] = std::min(*p.top_logprobs, kMaxLogprobs);
    }
    // JSON mode only: Gemini's schema dialect is a subset of JSON Schema and rejects ours.
    if (p.json_schema) config["responseMimeType"] = "application/json";
    if (!config.empty()) body["generationConfig"] = std::move(config);
    if (!call.tools.empty()) {
      Json declarations = Json::array();
      for (const auto& t : call.tools) {
        Json d = {{"name", t.name}, {"description", t.description}};
        // A tool without arguments has no parameters (an empty object schema is rejected).
        if (!t.parameters.value("properties", Json::object()).empty())
          d["parameters"] = GeminiSchema(t.parameters);
        declarations.push_back(std::move(d));
      }
      body["tools"] = Json::array({{{"functionDeclarations", std::move(declarations)}}});
      body["toolConfig"] = {
          {"functionCallingConfig", {{"mode", call.tool_choice == "required" ? "ANY" : "AUTO"}}}};
    }
    HttpRequest r;
    r.url = fmt::format("{}/v1beta/models/{}:generateContent", base_url_, model_);
    r.headers.emplace_back("Content-Type", "application/json");
    // A header, not the ?key= parameter, so the key never appears in a URL.
    if (!api_key_.empty()) r.headers.emplace_back("x-goog-api-key", api_key_);
    r.body = DumpJson(body);
    r.timeout = timeout_;
    return r;
  }

  Result<Completion> ParseResponse(const HttpResponse& response) const override {
    Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    int code = response.status;
    if (code >= 200 && code < 300) {
      if (body.is_discarded()) {
        return Unavailable(
            fmt::format("backend 'google': HTTP {} with a malformed JSON body", code));
      }
      return ParseCandidate(body);
    }
    std::string detail = ApiErrorDetail(body.is_discarded() ? Json() : body, response.body);
    std::string msg = fmt::format("backend 'google': HTTP {}: {}", code, detail);
    // A bad key comes back as 400, not 401.
    Status status = HttpErrorStatus(code == 400 && IsBadKeyError(body) ? 401 : code, msg);
    // Billing or region problems (status FAILED_PRECONDITION) fail every later request too.
    if (status.code() == StatusCode::kInvalidArgument && body.is_object() &&
        body.value("error", Json::object()).value("status", "") == "FAILED_PRECONDITION") {
      return FailedPrecondition(msg + " (check the project's billing and region)");
    }
    return status;
  }

 private:
  Result<Completion> ParseCandidate(const Json& body) const {
    auto bad = [](const std::string& what) {
      return Unavailable("backend 'google': unexpected response: " + what);
    };
    if (!body.is_object()) return bad("the body is not a JSON object");
    if (!body.contains("candidates") || !body["candidates"].is_array() ||
        body["candidates"].empty()) {
      // A blocked prompt is this item's fault: retrying gives the same answer.
      if (body.contains("promptFeedback") && body["promptFeedback"].is_object()) {
        const Json& reason = body["promptFeedback"].value("blockReason", Json());
        if (reason.is_string()) {
          return InvalidArgument(
              fmt::format("backend 'google': prompt blocked ({})", reason.get<std::string>()));
        }
      }
      return bad("no 'candidates'");
    }
    const Json& cand = body["candidates"][0];
    if (!cand.is_object()) return bad("'candidates[0]' is not an object");
    Completion c;
    bool has_text = false;
    if (cand.contains("content") && cand["content"].is_object()) {
      for (const auto& part : cand["content"].value("parts", Json::array())) {
        if (part.is_object() && part.contains("functionCall") && part["functionCall"].is_object()) {
          const Json& fc = part["functionCall"];
          if (!fc.contains("name") || !fc["name"].is_string())
            return bad("a functionCall has no name");
          std::string id = fc.contains("id") && fc["id"].is_string()
                               ? fc["id"].get<std::string>()
                               : fmt::format("call_{}", c.tool_calls.size());
          std::string signature =
              part.contains("thoughtSignature") && part["thoughtSignature"].is_string()
                  ? part["thoughtSignature"].get<std::string>()
                  : "";
          c.tool_calls.push_back(ToolCall{id, fc["name"].get<std::string>(),
                                          DumpJson(fc.value("args", Json::object())), signature});
          has_text = true;  // a reply
          continue;
        }
        if (!part.is_object() || !part.contains("text")) continue;
        if (!part["text"].is_string()) return bad("a part's 'text' is not a string");
        if (part.value("thought", false)) continue;  // thought summaries are not the reply
        c.text += part["text"].get<std::string>();
        has_text = true;
      }
    }
    if (cand.contains("finishReason") && cand["finishReason"].is_string()) {
      c.finish_reason = cand["finishReason"].get<std::string>();
    }
    if (!has_text) {
      // A candidate a safety filter stopped has no content: the same prompt gets the same
      // outcome, so it is an error of the item (not retried, never an empty answer). Without
      // such a reason, a body without text is malformed and retried.
      static const char* kBlocked[] = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT",
                                       "SPII",   "LANGUAGE"};
      for (const char* r : kBlocked) {
        if (c.finish_reason == r)
          return InvalidArgument(
              fmt::format("backend 'google': the reply was blocked (finishReason {})", r));
      }
      return bad("candidates[0] has no text");
    }
    // logprobsResult.topCandidates[0].candidates: [{"token": "A", "logProbability": -0.1}, ...]
    if (cand.contains("logprobsResult") && cand["logprobsResult"].is_object()) {
      const Json& top = cand["logprobsResult"].value("topCandidates", Json());
      if (top.is_array() && !top.empty() && top[0].is_object()) {
        for (const auto& t : top[0].value("candidates", Json::array())) {
          if (t.is_object() && t.contains("token") && t["token"].is_string() &&
              t.contains("logProbability") && t["logProbability"].is_number()) {
            c.first_token_logprobs.emplace_back(t["token"].get<std::string>(),
                                                t["logProbability"].get<double>());
          }
        }
      }
    }
    if (body.contains("usageMetadata") && body["usageMetadata"].is_object()) {
      const Json& u = body["usageMetadata"];
      if (u.contains("promptTokenCount") && u["promptTokenCount"].is_number_integer()) {
        c.prompt_tokens = u["promptTokenCount"].get<int64_t>();
      }
      if (u.contains("candidatesTokenCount") && u["candidatesTokenCount"].is_number_integer()) {
        c.completion_tokens = u["candidatesTokenCount"].get<int64_t>();
      }
    }
    return c;
  }
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeGeminiBackend(const BackendContext& ctx) {
  const ApiDefaults api{"google",
                        "gemini-2.5-flash",
                        "GEMINI_BASE_URL",
                        kDefaultBaseUrl,
                        {kDefaultKeyEnv, kFallbackKeyEnv},
                        "generativelanguage.googleapis.com"};
  PLUMB_ASSIGN_OR_RETURN(ApiEndpoint e, ResolveApiEndpoint(ctx, api));
  return std::unique_ptr<Backend>(std::make_unique<GeminiBackend>(ctx, std::move(e)));
}

}  // namespace plumb::backends
