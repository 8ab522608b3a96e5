// Model backends: where completions come from (an HTTP API, a built-in baseline, stored outputs).
#ifndef PLUMB_BACKEND_H_
#define PLUMB_BACKEND_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "plumb/http.h"
#include "plumb/registry.h"
#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

// A source of completions. Implementations are thread-safe.
class Backend {
 public:
  // The outcome and how it was obtained (attempts, latency; in-process backends report one
  // attempt).
  using Done = std::function<void(Result<Completion> result, const CallReport& report)>;

  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // Protocol id and version recorded with every run, e.g. "openai-chat@1".
  virtual std::string Id() const = 0;

  // What identifies this backend's answers in the response cache (protocol, server, model); ""
  // when its answers are not worth caching (in-process baselines, stored outputs).
  virtual std::string CacheIdentity() const { return ""; }

  // Starts one call. `done` runs exactly once: possibly before Submit returns (in-process
  // backends) or later on another thread (HTTP). On failure it gets a Status whose code says
  // what happened (kUnauthenticated for a bad key, kResourceExhausted for rate limits after all
  // retries, kFailedPrecondition for an exhausted quota, ...). Must not block for long.
  virtual void Submit(ModelCall call, Done done) = 0;

  // Abandons work the backend itself holds (HTTP work is abandoned through the scheduler):
  // queued and running calls end with kCancelled. Called when a run stops early.
  virtual void Cancel() {}
};

// Everything a backend factory may need. The model spec "openai/gpt-4o-mini" has kind "openai"
// and model "gpt-4o-mini".
struct BackendContext {
  std::string spec;
  std::string kind;
  std::string model;
  std::string base_url;  // --base-url; "" means the backend's default or environment
  // More endpoints serving the same model (--base-url repeated, or a named model's endpoints):
  // requests go to the one with the fewest in flight; one that keeps failing is drained.
  std::vector<std::string> pool;
  std::string api_key_env;  // --api-key-env; "" means the backend's default variable
  std::chrono::milliseconds timeout = kDefaultRequestTimeout;
  // --backend-option KEY=VALUE settings; each backend rejects keys it does not know.
  std::map<std::string, std::string> options;
  // A separate concurrency lane for this backend's requests (judges use "judge").
  std::string lane;
  int lane_concurrency = 0;
  double rpm = 0;  // requests / tokens per minute for this backend's endpoint; 0: no limit
  double tpm = 0;
  HttpScheduler* scheduler = nullptr;  // not owned; required by HTTP backends
  // Reads an environment variable (nullptr when unset). Tests substitute their own.
  std::function<const char*(const char*)> getenv = nullptr;
};

// An HTTP protocol: two pure functions; the shared HttpScheduler does all I/O, concurrency and
// retries. BuildRequest and ParseResponse are public so they can be unit-tested as pure
// functions (request in, bytes out).
class HttpBackend : public Backend {
 public:
  // `scheduler` is not owned and must outlive this backend. Requests go to the concurrency
  // lane of their endpoint named in `ctx` (e.g. "judge"), with its concurrency and rate limits.
  explicit HttpBackend(const BackendContext& ctx);

  void Submit(ModelCall call, Done done) final;

  virtual Result<HttpRequest> BuildRequest(const ModelCall& call) const = 0;
  // Maps any response (2xx or not) to a Completion or an error Status: 429 ->
  // kResourceExhausted, 5xx -> kUnavailable, 401 -> kUnauthenticated, 403 -> kPermissionDenied,
  // 404 -> kNotFound, other 4xx -> kInvalidArgument, an unreadable 2xx body -> kUnavailable
  // (retried: proxies truncate bodies). Messages never contain the API key.
  virtual Result<Completion> ParseResponse(const HttpResponse& response) const = 0;
  // ParseResponse, with an exception a parser throws on a body shaped unlike the protocol's
  // turned into kUnavailable (a malformed body, retried like one): what the backend uses.
  Result<Completion> ReadResponse(const HttpResponse& response) const;

 protected:
  // The endpoints of a pool: base URLs, the first being the one BuildRequest uses (a request
  // to another endpoint is the same request with that prefix replaced).
  void SetEndpoints(std::vector<std::string> base_urls);

 private:
  struct Pool;
  // Sends `request` (to endpoint `k` of the pool) and, when the endpoint fails, to another.
  void Send(std::shared_ptr<HttpRequest> request, size_t k, std::vector<size_t> tried, Done done);

  std::shared_ptr<Pool> pool_;  // null: one endpoint
  HttpScheduler* scheduler_;
  std::string lane_;
  int lane_concurrency_;
  double rpm_;
  double tpm_;
};

using BackendRegistry = Registry<Backend, BackendContext>;

// Adds every built-in backend kind (openai, builtin, ...) to `registry`.
void RegisterBuiltinBackends(BackendRegistry& registry);

// Splits "kind/model" into `ctx.kind` and `ctx.model` and creates the backend.
// kInvalidArgument for a spec without '/', kNotFound for an unknown kind.
Result<std::unique_ptr<Backend>> CreateBackend(const BackendRegistry& registry, BackendContext ctx);

// kInvalidArgument naming the first key of ctx.options that is not in `known`.
Status CheckBackendOptions(const BackendContext& ctx, const std::vector<std::string>& known);

// A backend that answers from stored completions keyed by (item id, epoch, turn): how a run's
// replies are graded again without calling the model (plumb rescore). A missing key is an
// error for that item. `id` is recorded as the backend id.
std::unique_ptr<Backend> MakeStoredRepliesBackend(
    std::string id, std::map<std::tuple<std::string, int, int>, Completion> replies);

// True for failures that doom every later call too (bad key, no access, unknown model,
// exhausted quota): the runner stops the run instead of recording each item as an error.
bool IsFatalForRun(StatusCode code);

}  // namespace plumb

#endif  // PLUMB_BACKEND_H_
