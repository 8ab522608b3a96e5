// Per-endpoint rate limiting: token buckets for requests and tokens per minute, concurrency that
// halves on 429 and creeps back up on success, and pauses announced by the server's
// x-ratelimit-* / anthropic-ratelimit-* headers.
#ifndef PLUMB_NET_RATE_LIMITER_H_
#define PLUMB_NET_RATE_LIMITER_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace plumb::net {

using Clock = std::chrono::steady_clock;

class RateLimiter {
 public:
  // `max_concurrency` requests in flight at most; rpm/tpm 0 = unlimited.
  void Configure(int max_concurrency, double rpm, double tpm);

  // The concurrency allowed now (adaptive, between 1 and max_concurrency).
  int concurrency() const { return current_; }

  // When a request estimated at `tokens` may start (now or later).
  Clock::time_point NextStart(Clock::time_point now, double tokens);
  // Takes the request's share from the buckets.
  void OnStart(Clock::time_point now, double tokens);
  // After a response: `rate_limited` for a 429; `headers` (lower-case) may announce the
  // remaining budget and its reset.
  void OnResponse(Clock::time_point now, bool rate_limited,
                  const std::map<std::string, std::string>& headers);

  // "30s", "1m5.2s", "250ms", "6m0s" (OpenAI's reset format), plain seconds, or an RFC 3339 time
  // (Anthropic's): seconds from now, or nullopt when unreadable.
  static std::optional<double> ParseReset(const std::string& value);

 private:
  struct Bucket {
    double per_second = 0;  // 0: unlimited
    double capacity = 0;
    double level = 0;
    Clock::time_point refilled;
    void Refill(Clock::time_point now);
    // Seconds until `amount` is available (0 when it is).
    double Wait(double amount) const;
  };

  int max_ = 1;
  int current_ = 1;
  int successes_ = 0;
  Bucket requests_, tokens_;
  Clock::time_point paused_until_{};
};

}  // namespace plumb::net

#endif  // PLUMB_NET_RATE_LIMITER_H_
