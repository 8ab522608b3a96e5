// The curl scheduler against a loopback server: concurrency limits, retries (429 with
// Retry-After, 5xx, timeouts, dropped connections), no retry on 4xx, cancellation.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "fake_server.h"
#include "plumb/http.h"

namespace plumb {
namespace {

using testing::FakeReply;
using testing::FakeRequest;
using testing::FakeServer;

struct Outcome {
  Status status;
  CallReport report;
  int response_status = 0;
};

// Submits `n` calls and waits for all outcomes. The interpretation accepts 2xx, maps 429 to
// kResourceExhausted, 5xx to kUnavailable and other codes to kInvalidArgument.
std::vector<Outcome> RunCalls(HttpScheduler& s, const std::string& url, int n,
                              std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Outcome> out(n);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    HttpRequest r;
    r.url = url;
    r.body = "{\"i\":" + std::to_string(i) + "}";
    r.timeout = timeout;
    auto last_status = std::make_shared<int>(0);
    s.Submit(
        r,
        [last_status](const HttpResponse& resp) {
          *last_status = resp.status;
          if (resp.status >= 200 && resp.status < 300) return Status();
          if (resp.status == 429) return Status(StatusCode::kResourceExhausted, "429");
          if (resp.status >= 500) return Unavailable("5xx");
          return InvalidArgument("HTTP " + std::to_string(resp.status));
        },
        [&, i, last_status](const Status& st, const CallReport& rep) {
          std::lock_guard<std::mutex> lock(mu);
          out[i] = Outcome{st, rep, *last_status};
          ++done;
          cv.notify_all();
        });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done == n; });
  return out;
}

SchedulerOptions Fast(int concurrency = 8) {
  SchedulerOptions o;
  o.max_concurrency_per_endpoint = concurrency;
  o.retry.max_retries = 3;
  o.retry.base_delay = std::chrono::milliseconds(10);
  o.jitter_seed = 1;
  return o;
}

TEST(CurlScheduler, RespectsPerEndpointConcurrencyAndReusesConnections) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.delay_ms = 30;
    return r;
  });
  auto s = MakeCurlScheduler(Fast(4));
  auto out = RunCalls(*s, server.base_url() + "/chat/completions", 40);
  for (const auto& o : out) {
    EXPECT_TRUE(o.status.ok()) << o.status.message();
    EXPECT_EQ(o.report.attempts, 1);
  }
  EXPECT_EQ(server.max_concurrent(), 4);
  EXPECT_EQ(server.request_count(), 40);
  EXPECT_LE(server.connections(), 8) << "keep-alive connections should be reused";
}

TEST(CurlScheduler, RetriesServerErrorsThenSucceeds) {
  FakeServer server([](const FakeRequest&, int index) {
    FakeReply r;
    if (index < 2) r.status = 500, r.body = "{}";
    return r;
  });
  auto s = MakeCurlScheduler(Fast(1));
  auto out = RunCalls(*s, server.base_url(), 1);
  EXPECT_TRUE(out[0].status.ok());
  EXPECT_EQ(out[0].report.attempts, 3);
}

TEST(CurlScheduler, HonoursRetryAfter) {
  FakeServer server([](const FakeRequest&, int index) {
    FakeReply r;
    if (index == 0) {
      r.status = 429;
      r.body = "{}";
      r.headers = {{"Retry-After", "1"}};
    }
    return r;
  });
  auto s = MakeCurlScheduler(Fast(1));
  auto out = RunCalls(*s, server.base_url(), 1);
  EXPECT_TRUE(out[0].status.ok());
  EXPECT_EQ(out[0].report.attempts, 2);
  // base delay is 10 ms, so only the header explains a wait of about a second.
  EXPECT_GE(out[0].report.total_ms, 950);
}

TEST(CurlScheduler, DoesNotRetryClientErrors) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.status = 400;
    r.body = "{}";
    return r;
  });
  auto s = MakeCurlScheduler(Fast(1));
  auto out = RunCalls(*s, server.base_url(), 1);
  EXPECT_EQ(out[0].status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out[0].report.attempts, 1);
  EXPECT_EQ(server.request_count(), 1);
}

TEST(CurlScheduler, RetriesTimeoutsAndDroppedConnections) {
  FakeServer server([](const FakeRequest& req, int index) {
    FakeReply r;
    bool first = index < 2;
    if (first && req.body == "{\"i\":0}") r.delay_ms = 1500;  // beyond the 300 ms timeout
    if (first && req.body == "{\"i\":1}") r.drop = true;
    return r;
  });
  auto s = MakeCurlScheduler(Fast(2));
  auto out = RunCalls(*s, server.base_url(), 2, std::chrono::milliseconds(300));
  for (const auto& o : out) {
    EXPECT_TRUE(o.status.ok()) << o.status.message();
    EXPECT_EQ(o.report.attempts, 2);
  }
}

TEST(CurlScheduler, GivesUpAfterMaxRetriesWithClearMessage) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.status = 503;
    r.body = "{}";
    return r;
  });
  auto s = MakeCurlScheduler(Fast(1));
  auto out = RunCalls(*s, server.base_url(), 1);
  EXPECT_EQ(out[0].status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(out[0].status.message(), "5xx (gave up after 4 attempts; see --max-retries)");
  EXPECT_EQ(server.request_count(), 4);
}

TEST(CurlScheduler, ConnectionRefusedIsUnavailable) {
  int port;
  {
    FakeServer server([](const FakeRequest&, int) { return FakeReply{}; });
    port = server.port();
  }
  SchedulerOptions o = Fast(1);
  o.retry.max_retries = 1;
  auto s = MakeCurlScheduler(o);
  auto out = RunCalls(*s, "http://127.0.0.1:" + std::to_string(port) + "/v1", 1);
  EXPECT_EQ(out[0].status.code(), StatusCode::kUnavailable);
  EXPECT_NE(out[0].status.message().find("connection error"), std::string::npos);
}

TEST(CurlScheduler, CancelAbandonsEverything) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.delay_ms = 2000;
    return r;
  });
  auto s = MakeCurlScheduler(Fast(2));
  std::mutex mu;
  std::condition_variable cv;
  int cancelled = 0;
  for (int i = 0; i < 6; ++i) {
    HttpRequest r;
    r.url = server.base_url();
    s->Submit(
        r, [](const HttpResponse&) { return Status(); },
        [&](const Status& st, const CallReport&) {
          std::lock_guard<std::mutex> lock(mu);
          if (st.code() == StatusCode::kCancelled) ++cancelled;
          cv.notify_all();
        });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  s->Cancel();
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_for(lock, std::chrono::seconds(5), [&] { return cancelled == 6; });
  EXPECT_EQ(cancelled, 6);
}

TEST(CurlScheduler, RequestsPerMinuteSpaceRequestsOut) {
  FakeServer server([](const FakeRequest&, int) { return FakeReply{}; });
  auto s = MakeCurlScheduler(Fast(8));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> totals;
  for (int i = 0; i < 12; ++i) {  // rpm 60: ten at once, then one a second
    HttpRequest r;
    r.url = server.base_url();
    r.rpm = 60;
    s->Submit(
        r, [](const HttpResponse&) { return Status(); },
        [&](const Status& st, const CallReport& rep) {
          EXPECT_TRUE(st.ok());
          std::lock_guard<std::mutex> lock(mu);
          totals.push_back(rep.total_ms);
          cv.notify_all();
        });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return totals.size() == 12; });
  std::sort(totals.begin(), totals.end());
  EXPECT_LT(totals[9], 900);
  EXPECT_GE(totals[10], 900);
  EXPECT_GE(totals[11], 1900);
}

TEST(CurlScheduler, PausesWhenTheServerSaysTheBudgetIsSpent) {
  FakeServer server([](const FakeRequest&, int index) {
    FakeReply r;
    if (index == 0)
      r.headers = {{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "1s"}};
    return r;
  });
  auto s = MakeCurlScheduler(Fast(1));
  auto out = RunCalls(*s, server.base_url(), 2);
  double later = std::max(out[0].report.total_ms, out[1].report.total_ms);
  EXPECT_GE(later, 950);
}

TEST(CurlScheduler, GivesUpWhenTheTotalWaitWouldExceedMaxWait) {
  FakeServer server([](const FakeRequest&, int) {
    FakeReply r;
    r.status = 429;
    r.body = "{}";
    r.headers = {{"Retry-After", "5"}};
    return r;
  });
  SchedulerOptions o = Fast(1);
  o.max_wait = std::chrono::milliseconds(1000);
  auto s = MakeCurlScheduler(o);
  auto out = RunCalls(*s, server.base_url(), 1);
  EXPECT_EQ(out[0].status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(out[0].status.message().find("gave up after waiting"), std::string::npos)
      << out[0].status.message();
  EXPECT_NE(out[0].status.message().find("last: 429"), std::string::npos)
      << out[0].status.message();
  EXPECT_LT(out[0].report.total_ms, 1000);
}

TEST(RetryAfter, ParsesSecondsAndDates) {
  EXPECT_DOUBLE_EQ(ParseRetryAfterSeconds("7"), 7);
  EXPECT_DOUBLE_EQ(ParseRetryAfterSeconds(" 2.5 "), 2.5);
  EXPECT_EQ(ParseRetryAfterSeconds("soon"), -1);
  EXPECT_EQ(ParseRetryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT"), 0);  // in the past
}

}  // namespace
}  // namespace plumb
