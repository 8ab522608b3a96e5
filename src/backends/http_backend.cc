// HttpBackend::Submit: a protocol's request goes through the shared scheduler and its response
// through the protocol's parser, once per attempt.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>

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

void ApiBackend::ReadBatchReply(int status, const Json& body, BatchLineResult& out) const {
  HttpResponse inner;
  inner.status = status;
  inner.body = DumpJson(body);
  Result<Completion> c = ReadResponse(inner);
  if (c) {
    out.completion = std::move(*c);
  } else {
    out.kind = BatchLineResult::Kind::kError;
    out.error = c.error();
  }
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
  for (std::string url : ctx.pool) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      return InvalidArgument(fmt::format(
          "backend '{}': base URL '{}' must start with http:// or https:// (see --base-url)",
          api.kind, Redact(url)));
    }
    if (url != e.base_url && std::find(e.pool.begin(), e.pool.end(), url) == e.pool.end())
      e.pool.push_back(std::move(url));
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

// The endpoints of a pool and their health. Hand-written: a few counters per endpoint under a
// mutex; nothing a library would add.
struct HttpBackend::Pool {
  using Clock = std::chrono::steady_clock;
  struct Endpoint {
    std::string base;
    int inflight = 0;
    int failures = 0;  // consecutive failed calls
    Clock::time_point drained_until{};
    std::chrono::seconds drain{0};
  };
  std::mutex mu;
  std::vector<Endpoint> endpoints;
  size_t next = 0;

  // The endpoint with the fewest calls in flight among the healthy ones not in `tried`; a
  // drained endpoint whose time is up takes one probe. All drained: the one drained longest ago.
  std::optional<size_t> Pick(const std::vector<size_t>& tried, bool allow_drained) {
    std::lock_guard<std::mutex> lock(mu);
    auto now = Clock::now();
    std::optional<size_t> best;
    for (size_t n = 0; n < endpoints.size(); ++n) {
      size_t k = (next + n) % endpoints.size();
      if (std::find(tried.begin(), tried.end(), k) != tried.end()) continue;
      const Endpoint& e = endpoints[k];
      if (e.drained_until > now) continue;
      if (!best || e.inflight < endpoints[*best].inflight) best = k;
    }
    if (!best && allow_drained) {
      for (size_t k = 0; k < endpoints.size(); ++k) {
        if (std::find(tried.begin(), tried.end(), k) != tried.end()) continue;
        if (!best || endpoints[k].drained_until < endpoints[*best].drained_until) best = k;
      }
    }
    if (best) {
      ++endpoints[*best].inflight;
      next = *best + 1;
      // A probe of a drained endpoint: the next call waits for its outcome.
      if (endpoints[*best].drained_until <= now && endpoints[*best].failures >= kDrainAfter)
        endpoints[*best].drained_until = now + endpoints[*best].drain;
    }
    return best;
  }

  void Finished(size_t k, bool endpoint_failed) {
    std::lock_guard<std::mutex> lock(mu);
    Endpoint& e = endpoints[k];
    --e.inflight;
    if (!endpoint_failed) {
      if (e.failures >= kDrainAfter) LogInfo("endpoint {} answers again", Redact(e.base));
      e.failures = 0;
      e.drain = std::chrono::seconds(0);
      e.drained_until = {};
      return;
    }
    if (++e.failures < kDrainAfter) return;
    e.drain = std::min(std::chrono::seconds(300),
                       e.drain.count() == 0 ? std::chrono::seconds(30) : e.drain * 2);
    e.drained_until = Clock::now() + e.drain;
    LogWarning("endpoint {} drained for {} s after {} failed calls (probed again then)",
               Redact(e.base), e.drain.count(), e.failures);
  }

  static constexpr int kDrainAfter = 3;
};

HttpBackend::HttpBackend(const BackendContext& ctx)
    : scheduler_(ctx.scheduler),
      lane_(ctx.lane),
      lane_concurrency_(ctx.lane_concurrency),
      rpm_(ctx.rpm),
      tpm_(ctx.tpm) {}

Result<Completion> HttpBackend::ReadResponse(const HttpResponse& response) const {
  try {
    return ParseResponse(response);
  } catch (const std::exception& e) {
    // A parser that trips over a body shaped unlike the protocol's: a malformed body, retried
    // like one, never a crash.
    return Unavailable(
        fmt::format("backend '{}': unreadable response: {}", Id(), QuoteInput(e.what(), 200)));
  }
}

void HttpBackend::SetEndpoints(std::vector<std::string> base_urls) {
  if (base_urls.size() < 2) return;
  pool_ = std::make_shared<Pool>();
  for (auto& b : base_urls) pool_->endpoints.push_back(Pool::Endpoint{std::move(b)});
}

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
  auto shared = std::make_shared<HttpRequest>(std::move(request).value());
  if (!pool_) return Send(std::move(shared), 0, {}, std::move(done));
  std::optional<size_t> k = pool_->Pick({}, /*allow_drained=*/true);
  Send(std::move(shared), *k, {}, std::move(done));
}

void HttpBackend::Send(std::shared_ptr<HttpRequest> request, size_t k, std::vector<size_t> tried,
                       Done done) {
  HttpRequest r = *request;
  std::string base;
  if (pool_) {
    base = pool_->endpoints[k].base;
    const std::string& first = pool_->endpoints[0].base;
    if (k != 0 && r.url.rfind(first, 0) == 0) r.url = base + r.url.substr(first.size());
  }
  // Filled by the attempt that succeeds; read by the completion callback. Both run on the
  // scheduler's thread, one after the other.
  auto parsed = std::make_shared<std::optional<Completion>>();
  scheduler_->Submit(
      std::move(r),
      [this, parsed](const HttpResponse& response) -> Status {
        Result<Completion> c = ReadResponse(response);
        if (!c) return c.error();
        *parsed = std::move(c).value();
        return Status();
      },
      [this, parsed, request, k, tried, base, done = std::move(done)](
          const Status& status, const CallReport& report) mutable {
        if (pool_) {
          // Server errors, timeouts and dropped connections are the endpoint's; try another.
          bool endpoint_failed = status.code() == StatusCode::kUnavailable ||
                                 status.code() == StatusCode::kDeadlineExceeded;
          pool_->Finished(k, endpoint_failed);
          if (endpoint_failed) {
            tried.push_back(k);
            if (std::optional<size_t> other = pool_->Pick(tried, /*allow_drained=*/false)) {
              LogInfo("{} (endpoint {}); sending to {}", status.message(), Redact(base),
                      Redact(pool_->endpoints[*other].base));
              return Send(std::move(request), *other, std::move(tried), std::move(done));
            }
          }
        }
        if (!status.ok()) {
          done(status, report);
          return;
        }
        Completion c = std::move(**parsed);
        c.attempts = report.attempts;
        c.latency_ms = report.latency_ms;
        c.endpoint = base;
        done(std::move(c), report);
      });
}

}  // namespace plumb
