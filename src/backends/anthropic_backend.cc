// anthropic/<model>: the Anthropic Messages API.
#include <fmt/format.h>

#include "backends/backends.h"
#include "plumb/batch.h"
#include "plumb/json.h"
#include "plumb/log.h"

namespace plumb::backends {
namespace {

constexpr const char* kDefaultBaseUrl = "https://api.anthropic.com";
constexpr const char* kDefaultKeyEnv = "ANTHROPIC_API_KEY";
constexpr const char* kApiVersion = "2023-06-01";
// The API requires max_tokens; this applies when the caller sets none.
constexpr int kDefaultMaxTokens = 1024;

class AnthropicBackend final : public ApiBackend, public BatchApi {
 public:
  AnthropicBackend(const BackendContext& ctx, ApiEndpoint endpoint)
      : ApiBackend(ctx, std::move(endpoint)) {}

  std::string Id() const override { return "anthropic-messages@1"; }
  std::string CacheIdentity() const override { return ApiCacheIdentity(); }

  Result<HttpRequest> BuildRequest(const ModelCall& call) const override {
    // System messages become the top-level "system" string; the API has no system role.
    PLUMB_ASSIGN_OR_RETURN(SystemAndTurns split, SplitSystem(call.messages));
    Json messages = Json::array();
    for (const Message* m : split.turns) {
      if (m->role == "tool") {
        // Results go back as tool_result blocks of a user message; the results of one
        // assistant turn's calls share that message, as the API requires.
        Json block = {
            {"type", "tool_result"}, {"tool_use_id", m->tool_call_id}, {"content", m->content}};
        if (!messages.empty() && messages.back()["role"] == "user" &&
            messages.back()["content"].is_array() &&
            StringField(messages.back()["content"].back(), "type") == "tool_result") {
          messages.back()["content"].push_back(std::move(block));
        } else {
          messages.push_back({{"role", "user"}, {"content", Json::array({std::move(block)})}});
        }
      } else if (!m->tool_calls.empty()) {
        Json content = Json::array();
        if (!m->content.empty()) content.push_back({{"type", "text"}, {"text", m->content}});
        for (const auto& tc : m->tool_calls) {
          // The API's input is an object; arguments that did not parse are sent as text.
          Json input = Json::parse(tc.arguments, nullptr, false);
          if (!input.is_object()) input = {{"arguments", tc.arguments}};
          content.push_back(
              {{"type", "tool_use"}, {"id", tc.id}, {"name", tc.name}, {"input", input}});
        }
        messages.push_back({{"role", m->role}, {"content", std::move(content)}});
      } else {
        messages.push_back({{"role", m->role}, {"content", m->content}});
      }
    }
    const GenerationParams& p = call.params;
    Json body = {{"model", model_},
                 {"max_tokens", p.max_tokens ? *p.max_tokens : kDefaultMaxTokens}};
    if (split.system) body["system"] = *split.system;
    body["messages"] = std::move(messages);
    if (p.temperature) body["temperature"] = *p.temperature;
    if (p.top_p) body["top_p"] = *p.top_p;
    if (!p.stop.empty()) body["stop_sequences"] = p.stop;
    // No seed, logprobs or structured output in this API: judges fall back to parsing text.
    if (!call.tools.empty()) {
      Json tools = Json::array();
      for (const auto& t : call.tools) {
        tools.push_back(
            {{"name", t.name}, {"description", t.description}, {"input_schema", t.parameters}});
      }
      body["tools"] = std::move(tools);
      body["tool_choice"] = {{"type", call.tool_choice == "required" ? "any" : "auto"}};
    }
    HttpRequest r;
    r.url = base_url_ + "/v1/messages";
    if (!api_key_.empty()) r.headers.emplace_back("x-api-key", api_key_);
    r.headers.emplace_back("anthropic-version", kApiVersion);
    r.headers.emplace_back("content-type", "application/json");
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
            fmt::format("backend 'anthropic': HTTP {} with a malformed JSON body", code));
      }
      return ParseMessage(body);
    }
    std::string detail = ApiErrorDetail(body.is_discarded() ? Json() : body, response.body);
    std::string msg = fmt::format("backend 'anthropic': HTTP {}: {}", code, detail);
    // An empty prepaid balance fails every later request too: stop the run, as for a quota.
    if (code == 400 && detail.find("credit balance") != std::string::npos) {
      return FailedPrecondition(msg + " (add credits to the account, then plumb resume)");
    }
    return HttpErrorStatus(code, msg);  // 529 (overloaded) is a 5xx: retried
  }

  // Message Batches: the requests in the create call; polled; the results file streamed.
  std::string BatchProvider() const override { return "anthropic"; }
  BatchLimits DefaultBatchLimits() const override { return {100'000, 256'000'000}; }

  Result<Json> BatchLine(const std::string& custom_id, const ModelCall& call) const override {
    PLUMB_ASSIGN_OR_RETURN(HttpRequest r, BuildRequest(call));
    return Json{{"custom_id", custom_id}, {"params", Json::parse(r.body)}};
  }

  Result<std::optional<HttpRequest>> SubmitStep(const std::vector<Json>& lines,
                                                const Json& info) const override {
    if (info.contains("id")) return std::optional<HttpRequest>();
    Json body = {{"requests", lines}};
    return std::optional<HttpRequest>(
        Request("POST", base_url_ + "/v1/messages/batches", DumpJson(body)));
  }

  Status ReadSubmitStep(const HttpResponse& response, Json& info) const override {
    Json body = Json::parse(response.body, nullptr, false);
    if (!body.is_object() || !body.contains("id") || !body["id"].is_string())
      return Unavailable("backend 'anthropic': the batch API's reply has no 'id'");
    info["id"] = body["id"];
    return Status();
  }

  HttpRequest StatusRequest(const Json& info) const override {
    return Request("GET", base_url_ + "/v1/messages/batches/" + StringField(info, "id"), "");
  }

  Result<BatchProgress> ReadStatus(const HttpResponse& response, Json& info) const override {
    Json b = Json::parse(response.body, nullptr, false);
    if (!b.is_object() || !b.contains("processing_status") || !b["processing_status"].is_string())
      return Unavailable("backend 'anthropic': the batch has no 'processing_status'");
    BatchProgress p;
    p.state = b["processing_status"].get<std::string>();
    p.ended = p.state == "ended";
    const Json& c = b.value("request_counts", Json::object());
    if (c.is_object()) {
      p.succeeded = IntField(c, "succeeded");
      p.failed_requests = IntField(c, "errored") + IntField(c, "canceled") + IntField(c, "expired");
      p.total = p.succeeded + p.failed_requests + IntField(c, "processing");
    }
    if (b.contains("results_url") && b["results_url"].is_string())
      info["results_url"] = b["results_url"];
    return p;
  }

  std::vector<HttpRequest> ResultRequests(const Json& info) const override {
    if (!info.contains("results_url")) return {};
    return {Request("GET", info["results_url"].get<std::string>(), "")};
  }

  // {"custom_id", "result": {"type": succeeded|errored|canceled|expired, "message"|"error"}}
  Result<std::vector<BatchLineResult>> ReadResults(const std::string& body,
                                                   const Json& info) const override {
    std::vector<BatchLineResult> out;
    if (!info.contains("results_url")) return out;  // ended without results
    PLUMB_ASSIGN_OR_RETURN(auto lines, ParseJsonLines(body, "backend 'anthropic': batch results"));
    for (const auto& l : lines) {
      BatchLineResult r;
      r.custom_id = StringField(l, "custom_id");
      const Json& result = l.value("result", Json::object());
      std::string type = result.is_object() ? StringField(result, "type") : "";
      if (type == "succeeded") {
        ReadBatchReply(200, result.value("message", Json::object()), r);
      } else if (type == "canceled") {
        r.kind = BatchLineResult::Kind::kCancelled;
      } else if (type == "expired") {
        r.kind = BatchLineResult::Kind::kExpired;
      } else {
        // errored: {"error": {"type": "error", "error": {"type", "message"}}}
        const Json& e = result.is_object() ? result.value("error", Json::object()) : Json();
        const Json& inner = e.is_object() && e.contains("error") ? e["error"] : e;
        std::string kind = inner.is_object() ? StringField(inner, "type") : "";
        std::string message = inner.is_object() ? StringField(inner, "message") : "";
        r.kind = BatchLineResult::Kind::kError;
        r.error =
            (kind == "api_error" || kind == "overloaded_error")
                ? Unavailable(fmt::format("backend 'anthropic': in the batch: {}: {}", kind,
                                          Redact(message)))
                : InvalidArgument(fmt::format("backend 'anthropic': in the batch: {}: {}",
                                              kind.empty() ? "errored" : kind, Redact(message)));
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  HttpRequest CancelRequest(const Json& info) const override {
    return Request("POST",
                   base_url_ + "/v1/messages/batches/" + StringField(info, "id") + "/cancel", "");
  }

  Status BatchHttpError(const HttpResponse& response, const std::string& what) const override {
    return BatchStepError(response, what);
  }

 private:
  HttpRequest Request(const std::string& method, const std::string& url, std::string body) const {
    HttpRequest r;
    r.method = method;
    r.url = url;
    if (!api_key_.empty()) r.headers.emplace_back("x-api-key", api_key_);
    r.headers.emplace_back("anthropic-version", kApiVersion);
    r.headers.emplace_back("content-type", "application/json");
    r.body = std::move(body);
    r.timeout = std::max(timeout_, std::chrono::milliseconds(600'000));
    return r;
  }

  Result<Completion> ParseMessage(const Json& body) const {
    auto bad = [](const std::string& what) {
      return Unavailable("backend 'anthropic': unexpected response: " + what);
    };
    if (!body.is_object()) return bad("the body is not a JSON object");
    if (body.contains("type") && body["type"] == "error") {
      return Unavailable("backend 'anthropic': error in a 2xx response: " +
                         ApiErrorDetail(body, ""));
    }
    if (!body.contains("content") || !body["content"].is_array()) return bad("no 'content'");
    Completion c;
    // "text" blocks are the reply and "tool_use" blocks its calls; "thinking" blocks are
    // neither.
    bool has_text = false;
    for (const auto& block : body["content"]) {
      if (!block.is_object()) continue;
      std::string type = StringField(block, "type");
      if (type == "tool_use") {
        if (!block.contains("name") || !block["name"].is_string())
          return bad("a tool_use block has no name");
        c.tool_calls.push_back(ToolCall{StringField(block, "id"), block["name"].get<std::string>(),
                                        DumpJson(block.value("input", Json::object()))});
        continue;
      }
      if (type != "text") continue;
      if (!block.contains("text") || !block["text"].is_string()) {
        return bad("a text block's 'text' is not a string");
      }
      c.text += block["text"].get<std::string>();
      has_text = true;
    }
    has_text = has_text || !c.tool_calls.empty();
    if (body.contains("stop_reason") && body["stop_reason"].is_string()) {
      c.finish_reason = body["stop_reason"].get<std::string>();
    }
    if (!has_text) {
      // A reply the API's own classifier stopped is this prompt's outcome: an error of the item,
      // not retried. Anything else without text is a malformed body, retried.
      if (c.finish_reason == "refusal")
        return InvalidArgument("backend 'anthropic': the reply was stopped (stop_reason refusal)");
      return bad("no text block in 'content'");
    }
    if (body.contains("usage") && body["usage"].is_object()) {
      const Json& u = body["usage"];
      // input_tokens excludes cached tokens; the prompt's size is the sum of all three.
      if (u.contains("input_tokens") && u["input_tokens"].is_number_integer()) {
        int64_t prompt = u["input_tokens"].get<int64_t>();
        for (const char* key : {"cache_read_input_tokens", "cache_creation_input_tokens"}) {
          if (u.contains(key) && u[key].is_number_integer()) prompt += u[key].get<int64_t>();
        }
        c.prompt_tokens = prompt;
      }
      if (u.contains("output_tokens") && u["output_tokens"].is_number_integer()) {
        c.completion_tokens = u["output_tokens"].get<int64_t>();
      }
    }
    return c;
  }
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeAnthropicBackend(const BackendContext& ctx) {
  const ApiDefaults api{"anthropic",     "claude-sonnet-4-5", "ANTHROPIC_BASE_URL",
                        kDefaultBaseUrl, {kDefaultKeyEnv},    "api.anthropic.com"};
  PLUMB_ASSIGN_OR_RETURN(ApiEndpoint e, ResolveApiEndpoint(ctx, api));
  return std::unique_ptr<Backend>(std::make_unique<AnthropicBackend>(ctx, std::move(e)));
}

}  // namespace plumb::backends
