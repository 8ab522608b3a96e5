// Confidence intervals against hand-computed values.
#include "plumb/stats.h"

#include <gtest/gtest.h>

namespace plumb {
namespace {

TEST(Wilson, MatchesTextbookValues) {
  // k=5, n=10: 0.5 +/- ... -> [0.2366, 0.7634] (Wilson 1927; Newcombe 1998 table).
  Interval a = WilsonInterval(5, 10);
  EXPECT_NEAR(a.low, 0.2366, 1e-4);
  EXPECT_NEAR(a.high, 0.7634, 1e-4);
  // k=0, n=10: [0, 0.2775].
  Interval b = WilsonInterval(0, 10);
  EXPECT_NEAR(b.low, 0.0, 1e-12);
  EXPECT_NEAR(b.high, 0.2775, 1e-4);
  // k=81, n=263: [0.2553, 0.3662] (Newcombe 1998, example).
  Interval c = WilsonInterval(81, 263);
  EXPECT_NEAR(c.low, 0.2553, 1e-4);
  EXPECT_NEAR(c.high, 0.3662, 1e-4);
}

TEST(ProportionMetric, UsesWilsonForSingleSamples) {
  std::vector<Cluster> c(10, Cluster{0, 1});
  for (int i = 0; i < 5; ++i) c[i].k = 1;
  Metric m = ProportionMetric("aligned_rate", "", c);
  EXPECT_EQ(m.ci_method, "wilson");
  EXPECT_DOUBLE_EQ(*m.value, 50.0);
  EXPECT_NEAR(*m.ci_low, 23.66, 0.01);
  EXPECT_EQ(m.n, 10);
  EXPECT_EQ(*m.k, 5);
}

TEST(ProportionMetric, ClustersRepeatedSamplesByItem) {
  // 20 items x 5 epochs; each item is either always right or always wrong, so the effective
  // sample size is 20, not 100: the clustered interval must be wider than Wilson on 100.
  std::vector<Cluster> c;
  for (int i = 0; i < 20; ++i) c.push_back(Cluster{i < 10 ? 5 : 0, 5});
  Metric m = ProportionMetric("aligned_rate", "", c, 7);
  EXPECT_EQ(m.ci_method, "bootstrap");
  EXPECT_DOUBLE_EQ(*m.value, 50.0);
  Interval naive = WilsonInterval(50, 100);
  EXPECT_LT(*m.ci_low, 100 * naive.low - 5);
  EXPECT_GT(*m.ci_high, 100 * naive.high + 5);
  Metric again = ProportionMetric("aligned_rate", "", c, 7);
  EXPECT_EQ(*m.ci_low, *again.ci_low);  // seeded
}

TEST(ProportionMetric, EmptyHasNoValue) {
  Metric m = ProportionMetric("x", "", {});
  EXPECT_FALSE(m.value.has_value());
  EXPECT_EQ(m.n, 0);
}

}  // namespace
}  // namespace plumb
