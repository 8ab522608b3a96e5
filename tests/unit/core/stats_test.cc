// Confidence intervals against hand-computed values.
#include "plumb/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <tuple>

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
  std::vector<Cluster> c(10, Cluster{0, 1, ""});
  for (int i = 0; i < 5; ++i) c[i].k = 1;
  Metric m = ProportionMetric("aligned_rate", "", c, MetricOptions{});
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
  for (int i = 0; i < 20; ++i) c.push_back(Cluster{i < 10 ? 5 : 0, 5, std::to_string(i)});
  Metric m = ProportionMetric("aligned_rate", "", c, MetricOptions{7});
  EXPECT_EQ(m.ci_method, "bootstrap");
  EXPECT_DOUBLE_EQ(*m.value, 50.0);
  Interval naive = WilsonInterval(50, 100);
  EXPECT_LT(*m.ci_low, 100 * naive.low - 5);
  EXPECT_GT(*m.ci_high, 100 * naive.high + 5);
  Metric again = ProportionMetric("aligned_rate", "", c, MetricOptions{7});
  EXPECT_EQ(*m.ci_low, *again.ci_low);  // seeded
}

TEST(ProportionMetric, EmptyHasNoValue) {
  Metric m = ProportionMetric("x", "", {}, MetricOptions{});
  EXPECT_FALSE(m.value.has_value());
  EXPECT_EQ(m.n, 0);
}

// Clusters with one binary trial each, keyed "i0", "i1", ...
std::vector<Cluster> Binary(const std::vector<int>& successes) {
  std::vector<Cluster> c;
  for (size_t i = 0; i < successes.size(); ++i)
    c.push_back(Cluster{successes[i], 1, "i" + std::to_string(i)});
  return c;
}

TEST(ProportionMetric, KeepsItsModel) {
  Metric m = ProportionMetric("x", "", Binary({1, 0, 1, 1}), MetricOptions{});
  ASSERT_TRUE(m.model);
  EXPECT_EQ(m.model->keys, (std::vector<std::string>{"i0", "i1", "i2", "i3"}));
  EXPECT_DOUBLE_EQ(*m.model->statistic({1, 1, 1, 1}), 75.0);
  EXPECT_DOUBLE_EQ(*m.model->statistic({0, 2, 1, 0}), 100.0 / 3);
}

TEST(ProportionMetric, NoResamplesMeansNoBootstrapInterval) {
  std::vector<Cluster> c = {{1, 2, "a"}, {2, 2, "b"}, {0, 2, "c"}};
  Metric m = ProportionMetric("x", "", c, MetricOptions{1, 0});
  EXPECT_DOUBLE_EQ(*m.value, 50.0);
  EXPECT_EQ(m.ci_method, "none");
  EXPECT_FALSE(m.ci_low.has_value());
}

TEST(McNemar, ExactTextbookValues) {
  // b=0, c=5: 2 * (1/2)^5 = 0.0625.
  EXPECT_DOUBLE_EQ(McNemarExactTwoSided(0, 5), 0.0625);
  // b=2, c=8: 2 * P(X >= 8 | 10, 1/2) = 2 * 56/1024 = 0.109375.
  EXPECT_NEAR(McNemarExactTwoSided(2, 8), 0.109375, 1e-12);
  EXPECT_NEAR(McNemarExactTwoSided(8, 2), 0.109375, 1e-12);
  EXPECT_DOUBLE_EQ(McNemarExactTwoSided(4, 4), 1.0);
  EXPECT_DOUBLE_EQ(McNemarExactTwoSided(0, 0), 1.0);
  // One-sided: P(X >= 8 | 10) = 56/1024.
  EXPECT_NEAR(McNemarExactGreater(8, 2), 56.0 / 1024, 1e-12);
  EXPECT_NEAR(McNemarExactGreater(2, 8), 1 - 11.0 / 1024, 1e-12);  // 1 - P(X <= 1)
  EXPECT_NEAR(McNemarExactGreater(0, 3), 1.0, 1e-12);
  // Large n stays finite: b=600, c=400 -> two-sided about 2.6e-10 (normal approx z=6.29).
  double p = McNemarExactTwoSided(600, 400);
  EXPECT_GT(p, 1e-11);
  EXPECT_LT(p, 1e-9);
}

// The restricted maximum likelihood estimate of P(only A succeeds) given the difference, found
// numerically (golden section on the profile log-likelihood), independent of TangoZ's closed form.
double RestrictedMle(int64_t b, int64_t c, int64_t n, double delta) {
  auto loglik = [&](double p) {
    double s = 0;
    if (c) s += c * std::log(p + delta);
    if (b) s += b * std::log(p);
    if (n - b - c) s += (n - b - c) * std::log(1 - 2 * p - delta);
    return s;
  };
  double lo = std::max(0.0, -delta) + 1e-13, hi = (1 - delta) / 2 - 1e-13,
         g = (std::sqrt(5.0) - 1) / 2;
  for (int i = 0; i < 300; ++i) {
    double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    (loglik(x1) < loglik(x2) ? lo : hi) = loglik(x1) < loglik(x2) ? x1 : x2;
  }
  return (lo + hi) / 2;
}

TEST(Tango, ScoreStatisticMatchesItsDefinition) {
  // At no difference it is McNemar's z = (c - b) / sqrt(b + c).
  EXPECT_NEAR(TangoZ(3, 9, 100, 0), 6 / std::sqrt(12.0), 1e-12);
  for (auto [b, c, n, delta] : std::vector<std::tuple<int, int, int, double>>{
           {3, 0, 40, -0.02}, {10, 4, 100, 0.05}, {5, 9, 200, -0.03}, {30, 20, 350, 0.02}}) {
    double p = RestrictedMle(b, c, n, delta);
    double z = (c - b - n * delta) / std::sqrt(n * (2 * p + delta * (1 - delta)));
    EXPECT_NEAR(TangoZ(b, c, n, delta), z, 1e-6) << b << " " << c << " " << n << " " << delta;
  }
}

TEST(Tango, IntervalInvertsTheScoreTest) {
  // 21 pairs, 1 where only A succeeded and 7 where only B did (Fagerland et al. 2014's airway
  // example): B - A = 6/21 = 0.286; Tango's interval is [0.026, 0.517].
  Interval ci = TangoInterval(1, 7, 21);
  EXPECT_NEAR(ci.low, 0.0260, 5e-4);
  EXPECT_NEAR(ci.high, 0.5172, 5e-4);
  EXPECT_NEAR(TangoZ(1, 7, 21, ci.low), kZ95, 1e-6);
  EXPECT_NEAR(TangoZ(1, 7, 21, ci.high), -kZ95, 1e-6);
  // No discordant pairs: an interval around 0 that shrinks with n.
  Interval none = TangoInterval(0, 0, 400);
  EXPECT_LT(none.low, 0);
  EXPECT_GT(none.high, 0);
  EXPECT_LT(none.high, 0.01);
}

TEST(Holm, AdjustsStepDown) {
  std::vector<double> adj = HolmAdjust({0.01, 0.04, 0.03});
  EXPECT_NEAR(adj[0], 0.03, 1e-12);
  EXPECT_NEAR(adj[1], 0.06, 1e-12);
  EXPECT_NEAR(adj[2], 0.06, 1e-12);
  // Monotone and capped at 1.
  adj = HolmAdjust({0.5, 0.001, 0.9, 0.02});
  EXPECT_NEAR(adj[1], 0.004, 1e-12);
  EXPECT_NEAR(adj[3], 0.06, 1e-12);
  EXPECT_NEAR(adj[0], 1.0, 1e-12);
  EXPECT_NEAR(adj[2], 1.0, 1e-12);
  EXPECT_TRUE(HolmAdjust({}).empty());
}

TEST(Reducers, UnbiasedPassAtK) {
  // n=5, c=2: pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10; pass^2 = C(2,2)/C(5,2) = 1/10.
  EXPECT_NEAR(PassAtK(5, 2, 1), 0.4, 1e-12);
  EXPECT_NEAR(PassAtK(5, 2, 2), 0.7, 1e-12);
  EXPECT_NEAR(PassAtK(5, 2, 4), 1.0, 1e-12);  // n - c < k: some success is certain
  EXPECT_NEAR(PassHatK(5, 2, 2), 0.1, 1e-12);
  EXPECT_NEAR(PassHatK(5, 2, 3), 0.0, 1e-12);
  EXPECT_NEAR(PassHatK(5, 5, 5), 1.0, 1e-12);
}

TEST(Reducers, MetricsForEveryK) {
  // Three items with 3 samples: 3/3, 1/3, 0/3.
  std::vector<Cluster> c = {{3, 3, "a"}, {1, 3, "b"}, {0, 3, "c"}};
  Metric m = ProportionMetric("aligned_rate", "", c, MetricOptions{});
  std::map<std::string, double> by;
  for (const auto& r : ReducerMetrics(m, MetricOptions{})) by[r.name] = *r.value;
  ASSERT_EQ(by.size(), 7u);  // majority + pass@1..3 + pass^1..3
  EXPECT_NEAR(by["aligned_rate@majority"], 100.0 / 3, 1e-9);
  EXPECT_NEAR(by["aligned_rate@pass@1"], 100.0 * (1 + 1.0 / 3) / 3, 1e-9);
  EXPECT_NEAR(by["aligned_rate@pass@2"], 100.0 * (1 + (1 - 1.0 / 3)) / 3, 1e-9);
  EXPECT_NEAR(by["aligned_rate@pass@3"], 100.0 * 2 / 3, 1e-9);
  EXPECT_NEAR(by["aligned_rate@pass^3"], 100.0 / 3, 1e-9);
  // One sample per item: nothing to reduce.
  EXPECT_TRUE(
      ReducerMetrics(ProportionMetric("x", "", Binary({1, 0}), MetricOptions{}), MetricOptions{})
          .empty());
}

TEST(ComparePaired, BinaryUsesExactMcNemarOnSharedItems) {
  // 20 shared items: A right on 0-14, B right on 0-9 and 15-16: A-only successes 5 (10-14),
  // B-only 2 (15, 16). B also has an item A lacks.
  std::vector<int> a(20, 0), b(21, 0);
  for (int i = 0; i < 15; ++i) a[i] = 1;
  for (int i = 0; i < 10; ++i) b[i] = 1;
  b[15] = b[16] = b[20] = 1;
  Metric ma = ProportionMetric("x", "", Binary(a), MetricOptions{});
  Metric mb = ProportionMetric("x", "", Binary(b), MetricOptions{});
  PairedComparison c = ComparePaired(*ma.model, *mb.model, MetricOptions{3, 2000});
  EXPECT_EQ(c.shared, 20);
  EXPECT_EQ(c.only_b, 1);
  EXPECT_EQ(c.test, "mcnemar-exact");
  EXPECT_EQ(c.a_only_successes, 5);
  EXPECT_EQ(c.b_only_successes, 2);
  EXPECT_DOUBLE_EQ(*c.a, 75.0);
  EXPECT_DOUBLE_EQ(*c.b, 60.0);  // on the shared 20 only
  EXPECT_DOUBLE_EQ(*c.diff, -15.0);
  // Two-sided exact: 2 * P(X >= 5 | 7) = 2 * 29/128.
  EXPECT_NEAR(*c.p_value, 2 * 29.0 / 128, 1e-12);
  EXPECT_NEAR(PBelow(c, 0), 29.0 / 128, 1e-12);
  ASSERT_TRUE(c.ci);
  EXPECT_LT(c.ci->low, -15.0);
  EXPECT_GT(c.ci->high, -15.0);
}

TEST(ComparePaired, PairingRemovesSharedVariation) {
  // Item difficulty varies widely but B is A plus 5 points on every item: the paired interval is
  // a point, the unpaired intervals are wide.
  std::vector<std::string> keys;
  std::vector<double> base;
  for (int i = 0; i < 100; ++i)
    keys.push_back("q" + std::to_string(i)), base.push_back(i % 10 * 10.0);
  auto mean = [](std::vector<double> v) {
    return [v](const std::vector<int>& counts) -> std::optional<double> {
      double s = 0, n = 0;
      for (size_t i = 0; i < v.size(); ++i) s += counts[i] * v[i], n += counts[i];
      if (n == 0) return std::nullopt;
      return s / n;
    };
  };
  std::vector<double> shifted = base;
  for (double& x : shifted) x += 5;
  Metric a = BootstrapMetric("score", "", keys, mean(base), MetricOptions{});
  Metric b = BootstrapMetric("score", "", keys, mean(shifted), MetricOptions{});
  EXPECT_GT(*a.ci_high - *a.ci_low, 5.0);
  PairedComparison c = ComparePaired(*a.model, *b.model, MetricOptions{});
  EXPECT_EQ(c.test, "paired-bootstrap");
  EXPECT_DOUBLE_EQ(*c.diff, 5.0);
  EXPECT_NEAR(c.ci->low, 5.0, 1e-9);
  EXPECT_NEAR(c.ci->high, 5.0, 1e-9);
  EXPECT_LT(*c.p_value, 0.001);
  // Non-inferiority at margin 2: surely above -2, not below it.
  EXPECT_LT(PAbove(c, -2), 0.001);
  EXPECT_GT(PBelow(c, -2), 0.999);
}

TEST(ComparePaired, NothingSharedIsNothingCompared) {
  Metric a = ProportionMetric("x", "", {{1, 1, "a"}}, MetricOptions{});
  Metric b = ProportionMetric("x", "", {{1, 1, "b"}}, MetricOptions{});
  PairedComparison c = ComparePaired(*a.model, *b.model, MetricOptions{});
  EXPECT_EQ(c.shared, 0);
  EXPECT_EQ(c.test, "none");
  EXPECT_FALSE(c.diff.has_value());
  EXPECT_DOUBLE_EQ(PBelow(c, 0), 1.0);
}

}  // namespace
}  // namespace plumb

namespace plumb {
namespace {

// issue 12: the reducers' shared pass over the draws gives exactly BootstrapMetric's figures.
TEST(Stats, Issue12BatchedReducersEqualOneBootstrapEach) {
  std::vector<Cluster> clusters;
  for (int i = 0; i < 57; ++i)
    clusters.push_back(Cluster{i % 6, 5 + i % 3, "item" + std::to_string(i)});
  MetricOptions options{42, 500};
  Metric p = ProportionMetric("aligned_rate", "", clusters, options);
  std::vector<Metric> reducers = ReducerMetrics(p, options);
  ASSERT_FALSE(reducers.empty());
  for (const Metric& r : reducers) {
    std::string suffix = r.details["reducer"].get<std::string>();
    std::vector<std::string> keys;
    std::vector<double> values;
    int k = suffix == "majority" ? 1 : std::stoi(suffix.substr(5));
    for (const auto& c : clusters) {
      if (c.n < k) continue;
      keys.push_back(c.key);
      values.push_back(suffix == "majority"            ? (2 * c.k > c.n    ? 1.0
                                                          : 2 * c.k == c.n ? 0.5
                                                                           : 0.0)
                       : suffix.rfind("pass@", 0) == 0 ? PassAtK(c.n, c.k, k)
                                                       : PassHatK(c.n, c.k, k));
    }
    Metric one = BootstrapMetric(
        r.name, "", keys,
        [values](const std::vector<int>& counts) -> std::optional<double> {
          double sum = 0, n = 0;
          for (size_t i = 0; i < values.size(); ++i) sum += counts[i] * values[i], n += counts[i];
          if (n == 0) return std::nullopt;
          return 100 * sum / n;
        },
        options);
    EXPECT_EQ(r.value, one.value) << r.name;
    EXPECT_EQ(r.ci_low, one.ci_low) << r.name;
    EXPECT_EQ(r.ci_high, one.ci_high) << r.name;
    EXPECT_EQ(r.ci_method, one.ci_method) << r.name;
  }
  // 1,000 epochs report 16 values of k, not 1,000.
  EXPECT_EQ(ReducerKs(1000),
            (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 50, 100, 200, 500, 1000}));
  EXPECT_EQ(ReducerKs(3), (std::vector<int64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace plumb
