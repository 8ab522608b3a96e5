// Factories of the built-in backend kinds; register.cc lists them in the registry.
#ifndef PLUMB_BACKENDS_BACKENDS_H_
#define PLUMB_BACKENDS_BACKENDS_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/batch.h"

namespace plumb::backends {

// How a hosted chat API is reached, as its factory resolves it from the context.
struct ApiEndpoint {
  std::string kind;      // "openai", for messages
  std::string base_url;  // without a trailing '/'
  std::vector<std::string> pool;  // more endpoints of the same model (see BackendContext::pool)
  std::string api_key;   // "" when none is set and none is needed (a local server)
  std::string key_env;   // the variable the key came from (or should have)
};

// What a hosted API's backend kind needs to resolve its endpoint.
struct ApiDefaults {
  const char* kind;                   // "openai"
  const char* example_model;          // "gpt-4o-mini", for the missing-model message
  const char* base_url_env;           // "OPENAI_BASE_URL"
  const char* default_base_url;       // "https://api.openai.com/v1"
  std::vector<const char*> key_envs;  // tried in order unless --api-key-env names one
  const char* official_host;          // a key is required when the base URL is this host
};

// A hosted chat API's backend: what every such protocol keeps of its context and endpoint.
// Subclasses build requests and parse responses.
class ApiBackend : public HttpBackend {
 protected:
  ApiBackend(const BackendContext& ctx, ApiEndpoint endpoint)
      : HttpBackend(ctx),
        kind_(std::move(endpoint.kind)),
        model_(ctx.model),
        base_url_(std::move(endpoint.base_url)),
        api_key_(std::move(endpoint.api_key)),
        key_env_(std::move(endpoint.key_env)),
        timeout_(ctx.timeout) {
    if (!endpoint.pool.empty()) {
      std::vector<std::string> all = {base_url_};
      all.insert(all.end(), endpoint.pool.begin(), endpoint.pool.end());
      SetEndpoints(std::move(all));
    }
  }

  // Id() | base URL | model: the same model behind another server is another cache identity.
  std::string ApiCacheIdentity() const { return Id() + "|" + base_url_ + "|" + model_; }

  // The status of a failed HTTP exchange, `msg` naming it: 401 (with a hint at the key), 403,
  // 404 (with a hint at the model and URL), 408, 429 and 5xx by their meaning, anything else
  // kInvalidArgument (this request's fault). Protocols check their own special cases first.
  Status HttpErrorStatus(int code, const std::string& msg) const;

  // For APIs that take the system prompt apart: the system messages joined by a blank line
  // (nullopt when there are none) and the user and assistant turns in order; an unknown role is
  // an error naming the message.
  struct SystemAndTurns {
    std::optional<std::string> system;
    std::vector<const Message*> turns;
  };
  Result<SystemAndTurns> SplitSystem(const std::vector<Message>& messages) const;

  // Batch mode: the error of a batch step's non-2xx reply ("backend 'openai': creating the
  // batch: HTTP 400: ..."), by HttpErrorStatus.
  Status BatchStepError(const HttpResponse& response, const std::string& what) const;
  // A batch result line's reply (HTTP status and body), read as the synchronous reply it
  // stands for: a completion, or the error that reply means.
  void ReadBatchReply(int status, const Json& body, BatchLineResult& out) const;

  std::string kind_;
  std::string model_;
  std::string base_url_;
  std::string api_key_;
  std::string key_env_;
  std::chrono::milliseconds timeout_;
};

// The lines of a JSON Lines body, each parsed (blank lines skipped); an unreadable line is an
// error naming its number.
Result<std::vector<Json>> ParseJsonLines(const std::string& body, const std::string& what);

// A multipart/form-data body of text fields and one file, and its Content-Type header value.
std::pair<std::string, std::string> MultipartBody(
    const std::vector<std::pair<std::string, std::string>>& fields, const std::string& file_field,
    const std::string& filename, const std::string& content_type, const std::string& data);

// The API's own explanation of an error from its JSON body ({"error": {"message": ...}} or
// {"error": "..."}), else the raw body; at most 300 characters, secrets redacted.
std::string ApiErrorDetail(const Json& body, const std::string& raw);

// Checks the shared parts of an API backend's context (scheduler, no --backend-option, a model
// name) and resolves the base URL (--base-url, else base_url_env, else the default; http(s)
// only) and the key (--api-key-env's variable, else key_envs in order), registered for
// redaction. kUnauthenticated when the key is missing but needed: for the official host, and
// whenever --api-key-env names a variable.
Result<ApiEndpoint> ResolveApiEndpoint(const BackendContext& ctx, const ApiDefaults& api);

Result<std::unique_ptr<Backend>> MakeOpenAiChatBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeAnthropicBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeGeminiBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeBuiltinBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeReplayBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeExecBackend(const BackendContext& ctx);

}  // namespace plumb::backends

#endif  // PLUMB_BACKENDS_BACKENDS_H_
