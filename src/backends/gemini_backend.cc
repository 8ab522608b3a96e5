// google/<model>: the Gemini API's generateContent method.
#include <fmt/format.h>

#include <algorithm>

#include "backends/backends.h"
#include "plumb/batch.h"
#include "plumb/json.h"
#include "plumb/log.h"

namespace plumb::backends {
namespace {

constexpr const char* kDefaultBaseUrl = "https://generativelanguage.googleapis.com";
constexpr const char* kDefaultKeyEnv = "GEMINI_API_KEY";
constexpr const char* kFallbackKeyEnv = "GOOGLE_API_KEY";
constexpr int kMaxLogprobs = 20;                   // the API's limit
constexpr int64_t kInlineBatchBytes = 20'000'000;  // batch requests inline up to this

// Gemini answers a bad key with 400 INVALID_ARGUMENT rather than 401.
bool IsBadKeyError(const Json& body) {
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return false;
  const Json& e = body["error"];
  return StringField(e, "status") == "INVALID_ARGUMENT" && e.contains("message") &&
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

class GeminiBackend final : public ApiBackend, public BatchApi {
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
        body.contains("error") && body["error"].is_object() &&
        body["error"].value("status", Json()) == "FAILED_PRECONDITION") {
      return FailedPrecondition(msg + " (check the project's billing and region)");
    }
    return status;
  }

  // Batch mode: requests inline in the create call up to 20 MB, above that a JSONL file through
  // the Files API's resumable upload; the operation polled; results inline or in a file.
  std::string BatchProvider() const override { return "google"; }
  BatchLimits DefaultBatchLimits() const override { return {1'000'000, 2'000'000'000}; }

  Result<Json> BatchLine(const std::string& custom_id, const ModelCall& call) const override {
    PLUMB_ASSIGN_OR_RETURN(HttpRequest r, BuildRequest(call));
    return Json{{"request", Json::parse(r.body)}, {"metadata", {{"key", custom_id}}}};
  }

  Result<std::optional<HttpRequest>> SubmitStep(const std::vector<Json>& lines,
                                                const Json& info) const override {
    if (info.contains("id")) return std::optional<HttpRequest>();
    const std::string create =
        fmt::format("{}/v1beta/models/{}:batchGenerateContent", base_url_, model_);
    int64_t bytes = 0;
    for (const auto& l : lines) bytes += static_cast<int64_t>(DumpJson(l).size());
    if (bytes <= kInlineBatchBytes && !info.contains("upload_url")) {
      Json body = {
          {"batch",
           {{"display_name", "plumb"}, {"input_config", {{"requests", {{"requests", lines}}}}}}}};
      return std::optional<HttpRequest>(Request("POST", create, DumpJson(body)));
    }
    // The file: one {"key", "request"} per line.
    std::string data;
    for (const auto& l : lines)
      data += DumpJson(Json{{"key", l["metadata"]["key"]}, {"request", l["request"]}}) + "\n";
    if (!info.contains("upload_url")) {
      HttpRequest r = Request("POST", base_url_ + "/upload/v1beta/files",
                              DumpJson(Json{{"file", {{"display_name", "plumb-batch"}}}}));
      r.headers.emplace_back("X-Goog-Upload-Protocol", "resumable");
      r.headers.emplace_back("X-Goog-Upload-Command", "start");
      r.headers.emplace_back("X-Goog-Upload-Header-Content-Length", std::to_string(data.size()));
      r.headers.emplace_back("X-Goog-Upload-Header-Content-Type", "application/jsonl");
      return std::optional<HttpRequest>(std::move(r));
    }
    if (!info.contains("input_file")) {
      HttpRequest r = Request("POST", info["upload_url"].get<std::string>(), std::move(data));
      r.headers[0].second = "application/jsonl";
      r.headers.emplace_back("X-Goog-Upload-Command", "upload, finalize");
      r.headers.emplace_back("X-Goog-Upload-Offset", "0");
      return std::optional<HttpRequest>(std::move(r));
    }
    Json body = {
        {"batch",
         {{"display_name", "plumb"}, {"input_config", {{"file_name", info["input_file"]}}}}}};
    return std::optional<HttpRequest>(Request("POST", create, DumpJson(body)));
  }

  Status ReadSubmitStep(const HttpResponse& response, Json& info) const override {
    Json body = Json::parse(response.body, nullptr, false);
    if (info.contains("upload_url") && !info.contains("input_file")) {
      if (!body.is_object() || !body.contains("file") || !body["file"].is_object() ||
          !body["file"].contains("name"))
        return Unavailable("backend 'google': the upload's reply has no file name");
      info["input_file"] = body["file"]["name"];
      return Status();
    }
    auto url = response.headers.find("x-goog-upload-url");
    if (url != response.headers.end() && !info.contains("upload_url")) {
      info["upload_url"] = url->second;
      return Status();
    }
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string())
      return Unavailable("backend 'google': the batch reply has no 'name'");
    info["id"] = body["name"];  // "batches/..."
    return Status();
  }

  HttpRequest StatusRequest(const Json& info) const override {
    return Request("GET", base_url_ + "/v1beta/" + StringField(info, "id"), "");
  }

  Result<BatchProgress> ReadStatus(const HttpResponse& response, Json& info) const override {
    Json op = Json::parse(response.body, nullptr, false);
    if (!op.is_object()) return Unavailable("backend 'google': the batch status is not an object");
    // An operation {name, metadata: <batch>, done, response|error}, or the batch itself.
    const Json& batch = op.contains("metadata") && op["metadata"].is_object() ? op["metadata"] : op;
    BatchProgress p;
    p.state = StringField(batch, "state");
    static const std::vector<std::string> kEnded = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"};
    for (const auto& e : kEnded)
      if (p.state.size() >= e.size() &&
          p.state.compare(p.state.size() - e.size(), e.size(), e) == 0)
        p.ended = true;
    if (BoolField(op, "done", false)) p.ended = true;
    if (op.contains("error") && op["error"].is_object()) {
      p.failed = true;
      p.message = StringField(op["error"], "message", "failed");
    } else if (p.state.find("FAILED") != std::string::npos) {
      p.failed = true;
      p.message = "state " + p.state;
    }
    const Json& stats = batch.value("batchStats", Json::object());
    if (stats.is_object()) {
      auto number = [&](const char* k) -> int64_t {
        if (!stats.contains(k)) return 0;
        const Json& v = stats[k];  // int64 values come as strings in JSON
        if (v.is_number_integer()) return v.get<int64_t>();
        if (v.is_string()) return std::strtoll(v.get<std::string>().c_str(), nullptr, 10);
        return 0;
      };
      p.total = number("requestCount");
      p.succeeded = number("successfulRequestCount");
      p.failed_requests = number("failedRequestCount");
    }
    const Json& out = op.contains("response") && op["response"].is_object()     ? op["response"]
                      : batch.contains("output") && batch["output"].is_object() ? batch["output"]
                                                                                : Json();
    if (out.is_object() && out.contains("responsesFile") && out["responsesFile"].is_string())
      info["responses_file"] = out["responsesFile"];
    return p;
  }

  std::vector<HttpRequest> ResultRequests(const Json& info) const override {
    if (!info.contains("responses_file")) return {};  // inline, in the status
    return {Request("GET",
                    fmt::format("{}/download/v1beta/{}:download?alt=media", base_url_,
                                info["responses_file"].get<std::string>()),
                    "")};
  }

  Result<std::vector<BatchLineResult>> ReadResults(const std::string& body,
                                                   const Json& info) const override {
    std::vector<Json> entries;
    if (info.contains("responses_file")) {
      PLUMB_ASSIGN_OR_RETURN(entries, ParseJsonLines(body, "backend 'google': batch results"));
    } else {
      Json op = Json::parse(body, nullptr, false);
      if (!op.is_object()) return Unavailable("backend 'google': the batch status is unreadable");
      const Json& batch =
          op.contains("metadata") && op["metadata"].is_object() ? op["metadata"] : op;
      const Json& out = op.contains("response") && op["response"].is_object() ? op["response"]
                        : batch.contains("output")                            ? batch["output"]
                                                                              : Json::object();
      Json list = out.is_object() ? out.value("inlinedResponses", Json::array()) : Json::array();
      if (list.is_object()) list = list.value("inlinedResponses", Json::array());
      if (list.is_array()) entries.assign(list.begin(), list.end());
    }
    std::vector<BatchLineResult> results;
    for (const auto& e : entries) {
      BatchLineResult r;
      r.custom_id = e.contains("key") && e["key"].is_string() ? e["key"].get<std::string>()
                    : e.contains("metadata") && e["metadata"].is_object()
                        ? StringField(e["metadata"], "key")
                        : "";
      if (e.contains("response") && e["response"].is_object()) {
        ReadBatchReply(200, e["response"], r);
      } else {
        const Json& err = e.value("error", e.value("status", Json::object()));
        std::string message = err.is_object() ? StringField(err, "message", "failed") : "failed";
        r.kind = BatchLineResult::Kind::kError;
        r.error =
            InvalidArgument(fmt::format("backend 'google': in the batch: {}", Redact(message)));
      }
      results.push_back(std::move(r));
    }
    return results;
  }

  HttpRequest CancelRequest(const Json& info) const override {
    return Request("POST", base_url_ + "/v1beta/" + StringField(info, "id") + ":cancel", "");
  }

  Status BatchHttpError(const HttpResponse& response, const std::string& what) const override {
    return BatchStepError(response, what);
  }

 private:
  HttpRequest Request(const std::string& method, const std::string& url, std::string body) const {
    HttpRequest r;
    r.method = method;
    r.url = url;
    r.headers.emplace_back("Content-Type", "application/json");
    if (!api_key_.empty()) r.headers.emplace_back("x-goog-api-key", api_key_);
    r.body = std::move(body);
    r.timeout = std::max(timeout_, std::chrono::milliseconds(600'000));
    return r;
  }

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
        if (BoolField(part, "thought", false)) continue;  // thought summaries are not the reply
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
