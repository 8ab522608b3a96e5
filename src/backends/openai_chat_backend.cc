// openai/<model>: the OpenAI chat-completions protocol, also spoken by vLLM, llama.cpp server,
// Ollama and LM Studio.
#include <fmt/format.h>

#include "backends/backends.h"
#include "plumb/batch.h"
#include "plumb/json.h"
#include "plumb/log.h"

namespace plumb::backends {
namespace {

constexpr const char* kDefaultBaseUrl = "https://api.openai.com/v1";
constexpr const char* kDefaultKeyEnv = "OPENAI_API_KEY";

bool IsQuotaError(const Json& body) {
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return false;
  const Json& e = body["error"];
  auto is = [&](const char* key) {
    return e.contains(key) && e[key].is_string() &&
           e[key].get<std::string>() == "insufficient_quota";
  };
  return is("code") || is("type");
}

// The request parameter the model refuses ({"error": {"code": "unsupported_parameter" or
// "unsupported_value", "param": ...}}), or "" for any other error. Every later request would be
// refused the same way.
std::string RefusedParameter(const Json& body) {
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return "";
  const Json& e = body["error"];
  std::string code =
      e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
  if (code != "unsupported_parameter" && code != "unsupported_value") return "";
  return e.contains("param") && e["param"].is_string() ? e["param"].get<std::string>() : "?";
}

class OpenAiChatBackend final : public ApiBackend, public BatchApi {
 public:
  OpenAiChatBackend(const BackendContext& ctx, ApiEndpoint endpoint)
      : ApiBackend(ctx, std::move(endpoint)),
        official_(base_url_.find("api.openai.com") != std::string::npos) {}

  std::string Id() const override { return "openai-chat@1"; }
  std::string CacheIdentity() const override { return ApiCacheIdentity(); }

  Result<HttpRequest> BuildRequest(const ModelCall& call) const override {
    Json messages = MessagesToJson(call.messages);
    // The documented message shapes only: a tool result is {role, tool_call_id, content} and a
    // call {id, type, function}; what plumb keeps beside them (the tool's name, a signature
    // another provider gave) stays out.
    for (auto& m : messages) {
      if (m["role"] == "tool") m.erase("name");
      if (m.contains("tool_calls"))
        for (auto& tc : m["tool_calls"]) tc.erase("signature");
    }
    Json body = {{"model", model_}, {"messages", std::move(messages)}};
    const GenerationParams& p = call.params;
    if (p.temperature) body["temperature"] = *p.temperature;
    if (p.top_p) body["top_p"] = *p.top_p;
    // OpenAI deprecated max_tokens and its reasoning models (o-series, GPT-5) reject it; local
    // servers (vLLM, llama.cpp, Ollama, LM Studio) know max_tokens, not always the new name.
    if (p.max_tokens) body[official_ ? "max_completion_tokens" : "max_tokens"] = *p.max_tokens;
    if (p.seed) body["seed"] = *p.seed;
    if (!p.stop.empty()) body["stop"] = p.stop;
    if (p.top_logprobs) {
      body["logprobs"] = true;
      body["top_logprobs"] = *p.top_logprobs;
    }
    // Structured output where the API is known to have it (OpenAI itself); other servers only
    // when the grader insists, since some reject the field.
    if (p.json_schema && (official_ || p.require_json_schema)) {
      body["response_format"] = {
          {"type", "json_schema"},
          {"json_schema", {{"name", "judgment"}, {"schema", *p.json_schema}}}};
    }
    if (!call.tools.empty()) {
      Json tools = Json::array();
      for (const auto& t : call.tools) {
        tools.push_back(
            {{"type", "function"},
             {"function",
              {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}}}});
      }
      body["tools"] = std::move(tools);
      body["tool_choice"] = call.tool_choice.empty() ? "auto" : call.tool_choice;
    }
    HttpRequest r;
    r.url = base_url_ + "/chat/completions";
    r.headers.emplace_back("Content-Type", "application/json");
    if (!api_key_.empty()) r.headers.emplace_back("Authorization", "Bearer " + api_key_);
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
            fmt::format("backend 'openai': HTTP {} with a malformed JSON body", code));
      }
      return ParseChoice(body);
    }
    std::string detail = ApiErrorDetail(body.is_discarded() ? Json() : body, response.body);
    if (code == 429 && IsQuotaError(body)) {
      return FailedPrecondition(fmt::format(
          "backend 'openai': quota exhausted (insufficient_quota): {} (check the plan and "
          "billing of the account behind {})",
          detail, key_env_));
    }
    std::string msg = fmt::format("backend 'openai': HTTP {}: {}", code, detail);
    if (code == 400) {
      if (std::string param = RefusedParameter(body); !param.empty()) {
        return FailedPrecondition(
            fmt::format("{} (model '{}' refuses the parameter '{}'; change it with the matching "
                        "flag, e.g. --temperature or "
                        "--max-tokens, or in the suite's generation settings)",
                        msg, model_, param));
      }
    }
    return HttpErrorStatus(code, msg);
  }

  // The Batch API: a JSONL file uploaded to /files (purpose batch), a batch on
  // /v1/chat/completions with a 24h window, polled; the output and error files downloaded.
  std::string BatchProvider() const override { return "openai"; }
  BatchLimits DefaultBatchLimits() const override { return {50'000, 200'000'000}; }

  Result<Json> BatchLine(const std::string& custom_id, const ModelCall& call) const override {
    PLUMB_ASSIGN_OR_RETURN(HttpRequest r, BuildRequest(call));
    return Json{{"custom_id", custom_id},
                {"method", "POST"},
                {"url", "/v1/chat/completions"},
                {"body", Json::parse(r.body)}};
  }

  Result<std::optional<HttpRequest>> SubmitStep(const std::vector<Json>& lines,
                                                const Json& info) const override {
    if (info.contains("id")) return std::optional<HttpRequest>();
    if (!info.contains("input_file_id")) {
      std::string data;
      for (const auto& l : lines) data += DumpJson(l) + "\n";
      auto [body, type] = MultipartBody({{"purpose", "batch"}}, "file", "plumb-batch.jsonl",
                                        "application/jsonl", data);
      HttpRequest r = Request("POST", "/files", std::move(body));
      r.headers[0].second = type;
      return std::optional<HttpRequest>(std::move(r));
    }
    Json create = {{"input_file_id", info["input_file_id"]},
                   {"endpoint", "/v1/chat/completions"},
                   {"completion_window", "24h"},
                   {"metadata", {{"created_by", "plumb"}}}};
    return std::optional<HttpRequest>(Request("POST", "/batches", DumpJson(create)));
  }

  Status ReadSubmitStep(const HttpResponse& response, Json& info) const override {
    Json body = Json::parse(response.body, nullptr, false);
    if (!body.is_object() || !body.contains("id") || !body["id"].is_string())
      return Unavailable("backend 'openai': the batch API's reply has no 'id'");
    if (!info.contains("input_file_id")) {
      info["input_file_id"] = body["id"];
    } else {
      info["id"] = body["id"];
    }
    return Status();
  }

  HttpRequest StatusRequest(const Json& info) const override {
    return Request("GET", "/batches/" + StringField(info, "id"), "");
  }

  Result<BatchProgress> ReadStatus(const HttpResponse& response, Json& info) const override {
    Json b = Json::parse(response.body, nullptr, false);
    if (!b.is_object() || !b.contains("status") || !b["status"].is_string())
      return Unavailable("backend 'openai': the batch has no 'status'");
    BatchProgress p;
    p.state = b["status"].get<std::string>();
    p.ended = p.state == "completed" || p.state == "failed" || p.state == "expired" ||
              p.state == "cancelled";
    p.failed = p.state == "failed";
    if (p.failed && b.contains("errors") && b["errors"].is_object()) {
      for (const auto& e : b["errors"].value("data", Json::array()))
        if (e.is_object()) p.message += (p.message.empty() ? "" : "; ") + StringField(e, "message");
    }
    const Json& counts = b.value("request_counts", Json::object());
    if (counts.is_object()) {
      p.total = IntField(counts, "total");
      p.succeeded = IntField(counts, "completed");
      p.failed_requests = IntField(counts, "failed");
    }
    for (const char* f : {"output_file_id", "error_file_id"}) {
      if (b.contains(f) && b[f].is_string()) info[f] = b[f];
    }
    return p;
  }

  std::vector<HttpRequest> ResultRequests(const Json& info) const override {
    std::vector<HttpRequest> out;
    for (const char* f : {"output_file_id", "error_file_id"}) {
      if (info.contains(f) && info[f].is_string())
        out.push_back(Request("GET", "/files/" + info[f].get<std::string>() + "/content", ""));
    }
    return out;
  }

  // Output and error files: {"custom_id", "response": {"status_code", "body"}, "error"}.
  Result<std::vector<BatchLineResult>> ReadResults(const std::string& body,
                                                   const Json&) const override {
    PLUMB_ASSIGN_OR_RETURN(auto lines, ParseJsonLines(body, "backend 'openai': batch results"));
    std::vector<BatchLineResult> out;
    for (const auto& l : lines) {
      BatchLineResult r;
      r.custom_id = StringField(l, "custom_id");
      const Json& error = l.value("error", Json());
      const Json& response = l.value("response", Json());
      if (error.is_object()) {
        std::string code = StringField(error, "code");
        if (code == "batch_expired") {
          r.kind = BatchLineResult::Kind::kExpired;
        } else if (code == "batch_cancelled") {
          r.kind = BatchLineResult::Kind::kCancelled;
        } else {
          r.kind = BatchLineResult::Kind::kError;
          r.error = InvalidArgument(fmt::format("backend 'openai': in the batch: {}{}",
                                                code.empty() ? "" : code + ": ",
                                                Redact(StringField(error, "message", "failed"))));
        }
      } else if (response.is_object()) {
        ReadBatchReply(response.value("status_code", 0), response.value("body", Json::object()), r);
      } else {
        r.kind = BatchLineResult::Kind::kError;
        r.error = Unavailable("backend 'openai': a batch result line has no response or error");
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  HttpRequest CancelRequest(const Json& info) const override {
    return Request("POST", "/batches/" + StringField(info, "id") + "/cancel", "");
  }

  Status BatchHttpError(const HttpResponse& response, const std::string& what) const override {
    return BatchStepError(response, what);
  }

 private:
  HttpRequest Request(const std::string& method, const std::string& path, std::string body) const {
    HttpRequest r;
    r.method = method;
    r.url = base_url_ + path;
    r.headers.emplace_back("Content-Type", "application/json");
    if (!api_key_.empty()) r.headers.emplace_back("Authorization", "Bearer " + api_key_);
    r.body = std::move(body);
    r.timeout = std::max(timeout_, std::chrono::milliseconds(600'000));  // files can be large
    return r;
  }

  Result<Completion> ParseChoice(const Json& body) const {
    auto bad = [](const std::string& what) {
      return Unavailable("backend 'openai': unexpected response: " + what);
    };
    if (!body.is_object()) return bad("the body is not a JSON object");
    if (body.contains("error") && !body["error"].is_null()) {
      return Unavailable("backend 'openai': error in a 2xx response: " + ApiErrorDetail(body, ""));
    }
    if (!body.contains("choices") || !body["choices"].is_array() || body["choices"].empty()) {
      return bad("no 'choices'");
    }
    const Json& choice = body["choices"][0];
    if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object()) {
      return bad("'choices[0].message' is missing");
    }
    const Json& message = choice["message"];
    Completion c;
    // tool_calls: [{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}]
    if (message.contains("tool_calls") && !message["tool_calls"].is_null()) {
      if (!message["tool_calls"].is_array()) return bad("'tool_calls' is not a list");
      for (const auto& tc : message["tool_calls"]) {
        if (!tc.is_object() || !tc.contains("function") || !tc["function"].is_object() ||
            !tc["function"].contains("name") || !tc["function"]["name"].is_string()) {
          return bad("a tool call has no function name");
        }
      }
      c.tool_calls = ToolCallsFromJson(message["tool_calls"]);
      for (size_t i = 0; i < c.tool_calls.size(); ++i) {
        if (c.tool_calls[i].id.empty()) c.tool_calls[i].id = fmt::format("call_{}", i);
      }
    }
    if (message.contains("content") && message["content"].is_string()) {
      c.text = message["content"].get<std::string>();
    } else if (message.contains("content") && !message["content"].is_null()) {
      return bad("'choices[0].message.content' is not a string");
    } else if (!c.tool_calls.empty()) {
      // Calls without text: a complete reply.
    } else if (message.contains("refusal") && message["refusal"].is_string()) {
      // A declined request in structured-output mode: the refusal is the model's answer.
      c.text = message["refusal"].get<std::string>();
    } else if (choice.value("finish_reason", Json()) == "content_filter") {
      // The provider's filter stopped the reply: the same prompt gets the same outcome, so it
      // is an error of the item (not retried), never an empty answer.
      return InvalidArgument(
          "backend 'openai': the reply was blocked (finish_reason content_filter, no content)");
    } else {
      // No text at all is not an empty answer: proxies and overloaded servers send such
      // bodies, so the attempt is retried like any malformed body.
      return bad("'choices[0].message' has no content (null or missing)");
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      c.finish_reason = choice["finish_reason"].get<std::string>();
    }
    // choices[0].logprobs.content[0].top_logprobs: [{"token": " 85", "logprob": -0.1}, ...]
    if (choice.contains("logprobs") && choice["logprobs"].is_object()) {
      const Json& content = choice["logprobs"].value("content", Json());
      if (content.is_array() && !content.empty() && content[0].is_object()) {
        for (const auto& t : content[0].value("top_logprobs", Json::array())) {
          if (t.is_object() && t.contains("token") && t["token"].is_string() &&
              t.contains("logprob") && t["logprob"].is_number()) {
            c.first_token_logprobs.emplace_back(t["token"].get<std::string>(),
                                                t["logprob"].get<double>());
          }
        }
      }
    }
    if (body.contains("usage") && body["usage"].is_object()) {
      const Json& u = body["usage"];
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) {
        c.prompt_tokens = u["prompt_tokens"].get<int64_t>();
      }
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) {
        c.completion_tokens = u["completion_tokens"].get<int64_t>();
      }
    }
    return c;
  }

  bool official_;
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeOpenAiChatBackend(const BackendContext& ctx) {
  const ApiDefaults api{"openai",        "gpt-4o-mini",    "OPENAI_BASE_URL",
                        kDefaultBaseUrl, {kDefaultKeyEnv}, "api.openai.com"};
  PLUMB_ASSIGN_OR_RETURN(ApiEndpoint e, ResolveApiEndpoint(ctx, api));
  return std::unique_ptr<Backend>(std::make_unique<OpenAiChatBackend>(ctx, std::move(e)));
}

}  // namespace plumb::backends
