// Token buckets, adaptive concurrency (AIMD) and server-announced pauses.
#include "net/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <ctime>

namespace plumb::net {

void RateLimiter::Bucket::Refill(Clock::time_point now) {
  if (per_second <= 0) return;
  double elapsed = std::chrono::duration<double>(now - refilled).count();
  level = std::min(capacity, level + elapsed * per_second);
  refilled = now;
}

double RateLimiter::Bucket::Wait(double amount) const {
  if (per_second <= 0) return 0;
  amount = std::min(amount, capacity);  // a request larger than the burst waits for a full bucket
  return level >= amount ? 0 : (amount - level) / per_second;
}

void RateLimiter::Configure(int max_concurrency, double rpm, double tpm) {
  max_ = current_ = std::max(1, max_concurrency);
  auto init = [](Bucket& b, double per_minute) {
    b.per_second = per_minute / 60;
    // Bursts of up to ten seconds' worth: a minute's worth at once trips servers that enforce
    // their limit over shorter windows.
    b.capacity = std::max(1.0, per_minute / 6);
    b.level = b.capacity;
    b.refilled = Clock::now();
  };
  init(requests_, rpm);
  init(tokens_, tpm);
}

Clock::time_point RateLimiter::NextStart(Clock::time_point now, double tokens) {
  requests_.Refill(now);
  tokens_.Refill(now);
  double wait = std::max(requests_.Wait(1), tokens_.Wait(tokens));
  auto when = now + std::chrono::microseconds(static_cast<int64_t>(wait * 1e6));
  return std::max(when, paused_until_);
}

void RateLimiter::OnStart(Clock::time_point now, double tokens) {
  requests_.Refill(now);
  tokens_.Refill(now);
  if (requests_.per_second > 0) requests_.level -= 1;
  if (tokens_.per_second > 0) tokens_.level -= std::min(tokens, tokens_.capacity);
}

void RateLimiter::OnResponse(Clock::time_point now, bool rate_limited,
                             const std::map<std::string, std::string>& headers) {
  if (rate_limited) {
    current_ = std::max(1, current_ / 2);
    successes_ = 0;
  } else if (++successes_ >= current_ && current_ < max_) {
    ++current_;
    successes_ = 0;
  }
  // A budget announced as exhausted pauses the endpoint until its reset.
  static const char* kPairs[][2] = {
      {"x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
      {"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
      {"anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"},
      {"anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"},
  };
  for (const auto& [remaining, reset] : kPairs) {
    auto r = headers.find(remaining);
    auto t = headers.find(reset);
    if (r == headers.end() || t == headers.end()) continue;
    if (r->second != "0") continue;
    if (auto seconds = ParseReset(t->second)) {
      paused_until_ = std::max(
          paused_until_, now + std::chrono::microseconds(static_cast<int64_t>(*seconds * 1e6)));
    }
  }
}

std::optional<double> RateLimiter::ParseReset(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (value.find('T') != std::string::npos && value.find('-') != std::string::npos) {  // RFC 3339
    std::tm tm{};
    if (std::sscanf(value.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double diff = std::difftime(timegm(&tm), std::time(nullptr));
    return std::max(0.0, diff);
  }
  // Go-style durations: sequences of <number><unit> with units h, m, s, ms.
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < value.size()) {
    size_t start = i;
    while (i < value.size() &&
           (std::isdigit(static_cast<unsigned char>(value[i])) || value[i] == '.'))
      ++i;
    if (start == i) return std::nullopt;
    double n = std::stod(value.substr(start, i - start));
    std::string unit;
    while (i < value.size() && std::isalpha(static_cast<unsigned char>(value[i])))
      unit += value[i++];
    if (unit == "h")
      total += n * 3600;
    else if (unit == "m")
      total += n * 60;
    else if (unit == "s" || unit.empty())
      total += n;
    else if (unit == "ms")
      total += n / 1000;
    else
      return std::nullopt;
    any = true;
  }
  return any ? std::optional<double>(total) : std::nullopt;
}

}  // namespace plumb::net
