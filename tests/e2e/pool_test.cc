// Endpoint pools: one model behind several servers (--base-url repeated, or endpoints: of a
// named model). Requests spread by calls in flight, a failing endpoint is drained and its calls
// go to the others, and each response records the endpoint that answered.
#include <gtest/gtest.h>

#include <map>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

std::map<std::string, int> AnsweredBy(const std::string& cwd) {
  auto store = OpenSqliteStoreReadOnly(cwd + "/results/plumb.db");
  EXPECT_TRUE(store.has_value());
  std::map<std::string, int> out;
  auto samples = (*store)->GetSamples(1);
  EXPECT_TRUE(samples.has_value());
  for (const auto& s : *samples) {
    EXPECT_EQ(s.status, "done") << s.item_id;
    for (const auto& r : s.responses) ++out[r.completion.endpoint];
  }
  return out;
}

FakeServer::Handler Slow(int ms) {
  return [ms](const FakeRequest&, int) {
    FakeReply r;
    r.delay_ms = ms;
    return r;
  };
}

TEST(Pool, RequestsSpreadOverTheEndpointsAndEachResponseNamesItsEndpoint) {
  FakeServer a(Slow(20)), b(Slow(20));
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "pl", 40);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                              a.base_url(), "--base-url", b.base_url(), "--concurrency", "4",
                              "--progress", "none", "--cache", "never"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(a.request_count() + b.request_count(), 40);
  EXPECT_GE(a.request_count(), 10);
  EXPECT_GE(b.request_count(), 10);
  auto by = AnsweredBy(tmp.path());
  EXPECT_EQ(by[a.base_url()], a.request_count());
  EXPECT_EQ(by[b.base_url()], b.request_count());
  // Each endpoint has its own concurrency limit.
  EXPECT_LE(a.max_concurrent(), 4);
  EXPECT_LE(b.max_concurrent(), 4);
  // A resume reaches the same pool.
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  Json settings = (*store)->GetRun(1)->settings;
  EXPECT_EQ(settings["base_urls"], (Json{a.base_url(), b.base_url()}));
}

TEST(Pool, AFailingEndpointIsDrainedAndItsCallsGoElsewhere) {
  FakeServer good(Slow(5));
  FakeServer bad([](const FakeRequest&, int) {
    FakeReply r;
    r.status = 503;
    r.body = R"({"error": {"message": "replica down"}})";
    return r;
  });
  TempDir tmp;
  // More items than the runner keeps in flight (64), so calls made after the drain show it.
  std::string manifest = WriteChoiceSuite(tmp, "dr", 200);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                              bad.base_url(), "--base-url", good.base_url(), "--concurrency", "2",
                              "--max-retries", "1", "--retry-base-ms", "5", "--progress", "none",
                              "--cache", "never", "-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;  // no sample lost to the bad replica
  auto by = AnsweredBy(tmp.path());
  EXPECT_EQ(by[good.base_url()], 200);
  EXPECT_EQ(by.count(bad.base_url()), 0u);
  // Drained after three failed calls: at most the first window's share (two attempts each)
  // and a probe went there, not half of the run.
  EXPECT_LE(bad.request_count(), 2 * 40);
  EXPECT_NE(r.err.find("drained"), std::string::npos) << r.err;
}

TEST(Pool, NamedModelEndpointsFromTheConfig) {
  FakeServer a(Slow(10)), b(Slow(10));
  TempDir tmp;
  tmp.Write("plumb.yaml", "models:\n  fleet:\n    spec: openai/m\n    endpoints: [" +
                              a.base_url() + ", " + b.base_url() + "]\n");
  std::string manifest = WriteChoiceSuite(tmp, "nm", 20);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "fleet", "--concurrency",
                              "2", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(a.request_count(), 0);
  EXPECT_GT(b.request_count(), 0);
  EXPECT_EQ(a.request_count() + b.request_count(), 20);
}

}  // namespace
}  // namespace plumb::testing
