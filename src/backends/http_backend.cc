// HttpBackend::Submit: a protocol's request goes through the shared scheduler and its response
// through the protocol's parser, once per attempt.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>

#include "backends/backends.h"
#include "plumb/backend.h"
#include "plumb/hash.h"
#include "plumb/log.h"
#include "plumb/text.h"

namespace plumb {

namespace backends {

Status ApiBackend::HttpErrorStatus(int code, const std::string& msg) const {
  switch (code) {
    case 401:
      return Status(StatusCode::kUnauthenticated,
                    msg + fmt::format(" (check {} or --api-key-env)", key_env_));
    case 403:
      return Status(StatusCode::kPermissionDenied, msg);
    case 404:
      return NotFound(msg + fmt::format(" (check the model name '{}' and --base-url)", model_));
    case 408:
      return Status(StatusCode::kDeadlineExceeded, msg);
    case 429:
      return Status(StatusCode::kResourceExhausted, msg);
    default:
      break;
  }
  if (code >= 500) return Unavailable(msg);
  return InvalidArgument(msg);
}

Result<ApiBackend::SystemAndTurns> ApiBackend::SplitSystem(
    const std::vector<Message>& messages) const {
  SystemAndTurns out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == "system") {
      out.system = out.system ? *out.system + "\n\n" + m.content : m.content;
    } else if (m.role == "user" || m.role == "assistant" || m.role == "tool") {
      out.turns.push_back(&m);
    } else {
      return InvalidArgument(
          fmt::format("backend '{}': message {} has unknown role '{}'", kind_, i, m.role));
    }
  }
  return out;
}

Status ApiBackend::BatchStepError(const HttpResponse& response, const std::string& what) const {
  Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string detail = ApiErrorDetail(body.is_discarded() ? Json() : body, response.body);
  Status s = HttpErrorStatus(response.status, fmt::format("backend '{}': {}: HTTP {}: {}", kind_,
                                                          what, response.status, detail));
  // A batch the API no longer knows (404) is that batch's failure, not a wrong model.
  if (response.status == 404)
    return NotFound(fmt::format("backend '{}': {}: HTTP 404: {}", kind_, what, detail));
  return s;
}

Result<std::vector<Json>> ParseJsonLines(const std::string& body, const std::string& what) {
  std::vector<Json> out;
  size_t start = 0, line = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    ++line;
    std::string_view text(body.data() + start, end - start);
    start = end + 1;
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
    if (text.empty()) continue;
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return Unavailable(fmt::format("{}: line {} is not a JSON object", what, line));
    out.push_back(std::move(j));
  }
  return out;
}

std::pair<std::string, std::string> MultipartBody(
    const std::vector<std::pair<std::string, std::string>>& fields, const std::string& file_field,
    const std::string& filename, const std::string& content_type, const std::string& data) {
  // A boundary that cannot occur in the data: derived from the data's own hash.
  std::string boundary = "plumb-" + Sha256Hex(data).substr(0, 32);
  std::string body;
  for (const auto& [name, value] : fields) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
            value + "\r\n";
  }
  body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + file_field +
          "\"; filename=\"" + filename + "\"\r\nContent-Type: " + content_type + "\r\n\r\n";
  body += data;
  body += "\r\n--" + boundary + "--\r\n";
  return {body, "multipart/form-data; boundary=" + boundary};
}

std::string ApiErrorDetail(const Json& body, const std::string& raw) {
  std::string msg;
  if (body.is_object() && body.contains("error")) {
    const Json& e = body["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      msg = e["message"].get<std::string>();
    } else if (e.is_string()) {
      msg = e.get<std::string>();
    }
  }
  if (msg.empty()) msg = raw;
  if (msg.size() > 300) msg = msg.substr(0, 300) + "...";
  return Redact(msg);
}

Result<ApiEndpoint> ResolveApiEndpoint(const BackendContext& ctx, const ApiDefaults& api) {
  if (ctx.scheduler == nullptr)
    return Internal(fmt::format("backend '{}' needs the HTTP scheduler", api.kind));
  PLUMB_RETURN_IF_ERROR(CheckBackendOptions(ctx, {}));
  if (ctx.model.empty()) {
    return InvalidArgument(
        fmt::format("model spec '{0}/': the model name is missing (e.g. {0}/{1})", api.kind,
                    api.example_model));
  }
  ApiEndpoint e;
  e.kind = api.kind;
  e.base_url = ctx.base_url;
  if (e.base_url.empty()) {
    const char* env = ctx.getenv(api.base_url_env);
    e.base_url = env && *env ? env : api.default_base_url;
  }
  while (!e.base_url.empty() && e.base_url.back() == '/') e.base_url.pop_back();
  if (e.base_url.rfind("http://", 0) != 0 && e.base_url.rfind("https://", 0) != 0) {
    return InvalidArgument(fmt::format(
        "backend '{}': base URL '{}' must start with http:// or https:// (see --base-url)",
        api.kind, Redact(e.base_url)));
  }
  std::vector<std::string> envs;
  if (ctx.api_key_env.empty()) {
    envs.assign(api.key_envs.begin(), api.key_envs.end());
  } else {
    envs = {ctx.api_key_env};
  }
  e.key_env = envs.front();
  for (const auto& name : envs) {
    const char* key = ctx.getenv(name.c_str());
    if (key && *key) {
      e.api_key = key;
      e.key_env = name;
      break;
    }
  }
  bool official = e.base_url.find(api.official_host) != std::string::npos;
  if (e.api_key.empty() && (official || !ctx.api_key_env.empty())) {
    std::string which = envs.size() > 1
                            ? fmt::format("{} is not set (or {}; export one", envs.front(),
                                          fmt::join(envs.begin() + 1, envs.end(), ", or "))
                            : fmt::format("{} is not set (export it", envs.front());
    return Status(StatusCode::kUnauthenticated,
                  fmt::format("backend '{}': {}, or name another variable with --api-key-env)",
                              api.kind, which));
  }
  RegisterSecret(e.api_key);
  return e;
}

}  // namespace backends

HttpBackend::HttpBackend(const BackendContext& ctx)
    : scheduler_(ctx.scheduler),
      lane_(ctx.lane),
      lane_concurrency_(ctx.lane_concurrency),
      rpm_(ctx.rpm),
      tpm_(ctx.tpm) {}

void HttpBackend::Submit(ModelCall call, Done done) {
  Result<HttpRequest> request = BuildRequest(call);
  if (!request) {
    done(request.error(), CallReport{0, 0, 0});
    return;
  }
  request->lane = lane_;
  request->max_concurrency = lane_concurrency_;
  request->rpm = rpm_;
  request->tpm = tpm_;
  // About four characters per token, plus the longest reply allowed.
  double chars = 0;
  for (const auto& m : call.messages) chars += static_cast<double>(m.content.size());
  request->estimated_tokens = chars / 4 + call.params.max_tokens.value_or(500);
  // Filled by the attempt that succeeds; read by the completion callback. Both run on the
  // scheduler's thread, one after the other.
  auto parsed = std::make_shared<std::optional<Completion>>();
  scheduler_->Submit(
      std::move(request).value(),
      [this, parsed](const HttpResponse& response) -> Status {
        auto parse = [&]() -> Result<Completion> {
          try {
            return ParseResponse(response);
          } catch (const std::exception& e) {
            // A parser that trips over a body shaped unlike the protocol's: a malformed body,
            // retried like one, never a crash.
            return Unavailable(fmt::format("backend '{}': unreadable response: {}", Id(),
                                           QuoteInput(e.what(), 200)));
          }
        };
        Result<Completion> c = parse();
        if (!c) return c.error();
        *parsed = std::move(c).value();
        return Status();
      },
      [parsed, done = std::move(done)](const Status& status, const CallReport& report) {
        if (!status.ok()) {
          done(status, report);
          return;
        }
        Completion c = std::move(**parsed);
        c.attempts = report.attempts;
        c.latency_ms = report.latency_ms;
        done(std::move(c), report);
      });
}

}  // namespace plumb
