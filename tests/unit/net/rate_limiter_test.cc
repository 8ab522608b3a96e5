// The per-endpoint rate limiter: buckets, adaptive concurrency, announced pauses.
#include "net/rate_limiter.h"

#include <gtest/gtest.h>

namespace plumb::net {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

TEST(RateLimiter, ParsesResetFormats) {
  EXPECT_DOUBLE_EQ(*RateLimiter::ParseReset("1s"), 1);
  EXPECT_DOUBLE_EQ(*RateLimiter::ParseReset("6m0s"), 360);
  EXPECT_DOUBLE_EQ(*RateLimiter::ParseReset("20ms"), 0.02);
  EXPECT_DOUBLE_EQ(*RateLimiter::ParseReset("1m30.5s"), 90.5);
  EXPECT_DOUBLE_EQ(*RateLimiter::ParseReset("7"), 7);
  EXPECT_FALSE(RateLimiter::ParseReset("soon").has_value());
  EXPECT_DOUBLE_EQ(*RateLimiter::ParseReset("2020-01-01T00:00:00Z"), 0);  // in the past
  EXPECT_GT(*RateLimiter::ParseReset("2999-01-01T00:00:00Z"), 1e9);
}

TEST(RateLimiter, RequestsPerMinuteAllowBurstsThenSpaceRequests) {
  RateLimiter l;
  l.Configure(100, /*rpm=*/60, /*tpm=*/0);  // one per second, bursts of ten
  Clock::time_point now = Clock::now();
  for (int i = 0; i < 10; ++i) {
    EXPECT_LE(Seconds(l.NextStart(now, 0) - now), 0.01) << i;
    l.OnStart(now, 0);
  }
  EXPECT_NEAR(Seconds(l.NextStart(now, 0) - now), 1.0, 0.05);
}

TEST(RateLimiter, TokensPerMinuteBudget) {
  RateLimiter l;
  l.Configure(100, 0, /*tpm=*/6000);  // 100 tokens a second, bursts of 1000
  Clock::time_point now = Clock::now();
  l.OnStart(now, 900);
  EXPECT_NEAR(Seconds(l.NextStart(now, 300) - now), 2.0, 0.05);  // needs 200 more
}

TEST(RateLimiter, ConcurrencyHalvesOn429AndRecovers) {
  RateLimiter l;
  l.Configure(16, 0, 0);
  Clock::time_point now = Clock::now();
  l.OnResponse(now, true, {});
  EXPECT_EQ(l.concurrency(), 8);
  l.OnResponse(now, true, {});
  EXPECT_EQ(l.concurrency(), 4);
  for (int i = 0; i < 4; ++i) l.OnResponse(now, false, {});
  EXPECT_EQ(l.concurrency(), 5);
  for (int i = 0; i < 200; ++i) l.OnResponse(now, false, {});
  EXPECT_EQ(l.concurrency(), 16);
}

TEST(RateLimiter, HonoursAnnouncedPauses) {
  RateLimiter l;
  l.Configure(8, 0, 0);
  Clock::time_point now = Clock::now();
  l.OnResponse(now, false,
               {{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "2s"}});
  EXPECT_NEAR(Seconds(l.NextStart(now, 0) - now), 2.0, 0.01);
  RateLimiter a;
  a.Configure(8, 0, 0);
  a.OnResponse(
      now, false,
      {{"anthropic-ratelimit-tokens-remaining", "5"}, {"anthropic-ratelimit-tokens-reset", "30s"}});
  EXPECT_LE(Seconds(a.NextStart(now, 0) - now), 0.0);  // budget left: no pause
}

}  // namespace
}  // namespace plumb::net
