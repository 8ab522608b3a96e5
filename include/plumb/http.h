// HTTP types and the scheduler contract. The scheduler (src/net) is the only code that does
// network I/O; HTTP backends build requests and parse responses and nothing else.
#ifndef PLUMB_HTTP_H_
#define PLUMB_HTTP_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "plumb/status.h"

namespace plumb {

// Default limits; each has a CLI flag.
inline constexpr std::chrono::milliseconds kDefaultRequestTimeout{120'000};
inline constexpr int kDefaultMaxRetries = 6;
inline constexpr std::chrono::milliseconds kDefaultRetryBase{1'000};
inline constexpr std::chrono::milliseconds kMaxRetryDelay{60'000};
inline constexpr int kDefaultConcurrency = 32;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  // Header values may hold secrets: they are never logged or stored.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Requests with the same endpoint share one concurrency limit (e.g. "http://host:port").
  // Empty: derived from the URL's scheme, host and port.
  std::string endpoint;
  // A separate concurrency lane on that endpoint (e.g. "judge"), with its own limit.
  std::string lane;
  int max_concurrency = 0;  // the lane's limit; 0: the scheduler's default
  // Rate limits of the endpoint (lane), per minute; 0: none. The first request sets them.
  double rpm = 0;
  double tpm = 0;
  double estimated_tokens = 0;  // prompt and reply, for the tokens-per-minute budget
  std::chrono::milliseconds timeout = kDefaultRequestTimeout;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  double elapsed_ms = 0;
};

// How the scheduler retries. Retryable outcomes are transport failures and attempts whose
// interpretation returns a retryable code (IsRetryable); the delay before retry r (1-based) is
// uniform in [0, min(base * 2^(r-1), kMaxRetryDelay)] ("full jitter"), or the server's
// Retry-After when it gives one.
struct RetryPolicy {
  int max_retries = kDefaultMaxRetries;
  std::chrono::milliseconds base_delay = kDefaultRetryBase;
};

// What the scheduler reports with the final outcome of a call.
struct CallReport {
  int attempts = 0;
  double latency_ms = 0;  // of the final attempt
  double total_ms = 0;    // from submission to the final outcome, including waits
};

struct SchedulerStats {
  int64_t queued = 0;         // waiting for a free slot
  int64_t in_flight = 0;      // on the wire
  int64_t waiting_retry = 0;  // sleeping before a retry
  int64_t rate_limited = 0;   // held back by rate limits (budgets or server-announced pauses)
  int64_t retries = 0;        // retries started so far
};

inline constexpr std::chrono::seconds kDefaultMaxWait{600};

struct SchedulerOptions {
  int max_concurrency_per_endpoint = kDefaultConcurrency;
  RetryPolicy retry;
  uint64_t jitter_seed = 0;  // 0: seeded from the clock
  // A call that has waited this long in total (queues, rate limits, backoff) fails with
  // kDeadlineExceeded instead of waiting on.
  std::chrono::milliseconds max_wait = kDefaultMaxWait;
};

// Runs HTTP calls concurrently on one event-loop thread. Per endpoint (and lane) it keeps at
// most max_concurrency calls in flight, halving that on 429 and recovering on success, honours
// requests- and tokens-per-minute budgets and the pauses servers announce in their rate-limit
// headers.
// Thread-safe: Submit and Cancel may be called from any thread.
class HttpScheduler {
 public:
  // Decides what an HTTP response means: OK finishes the call; a retryable code retries it (when
  // retries remain); any other code finishes it with that error. Runs on the event-loop thread,
  // once per attempt that produced an HTTP response.
  using Interpret = std::function<Status(const HttpResponse&)>;
  // Receives the final outcome exactly once, on the event-loop thread (or inside Submit after
  // Cancel). Must not block.
  using Done = std::function<void(const Status&, const CallReport&)>;

  virtual ~HttpScheduler() = default;
  HttpScheduler() = default;
  HttpScheduler(const HttpScheduler&) = delete;
  HttpScheduler& operator=(const HttpScheduler&) = delete;

  virtual void Submit(HttpRequest request, Interpret interpret, Done done) = 0;
  // Abandons every queued, waiting and in-flight call: each gets kCancelled. Later submissions
  // are cancelled at once.
  virtual void Cancel() = 0;
  virtual SchedulerStats Stats() const = 0;
};

// The libcurl-multi scheduler (HTTP/2 where offered, keep-alive connection reuse).
std::unique_ptr<HttpScheduler> MakeCurlScheduler(const SchedulerOptions& options);

// Parses a Retry-After header value (delta-seconds or HTTP date). Returns -1 when unusable.
double ParseRetryAfterSeconds(const std::string& value);

}  // namespace plumb

#endif  // PLUMB_HTTP_H_
