// The gate's decisions, Holm's correction across checks, the policy file and the CI formats.
#include <gtest/gtest.h>

#include "plumb/compare.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

// A comparison of metric `name` whose bootstrap distribution of the difference is `draws`.
MetricComparison WithDraws(const std::string& name, std::vector<double> draws) {
  MetricComparison m;
  m.name = name;
  m.a.name = m.b.name = name;
  std::sort(draws.begin(), draws.end());
  m.paired.shared = 100;
  m.paired.diff = draws[draws.size() / 2];
  m.paired.ci = Interval{draws.front(), draws.back()};
  m.paired.test = "paired-bootstrap";
  m.paired.draws = std::move(draws);
  return m;
}

// 999 draws far below -2 and `above` draws at 0: P(regression) = (1 + above) / (1 + 999 + above),
// e.g. 31/1030.
std::vector<double> MostlyBelow(int above) {
  std::vector<double> d(999, -10.0);
  for (int i = 0; i < above; ++i) d.push_back(0);
  return d;
}

RunComparison Comparison(std::vector<MetricComparison> metrics) {
  RunComparison c;
  c.a.id = 1;
  c.b.id = 2;
  c.b.suite_id = "demo";
  c.b.primary_metric = "aligned_rate";
  c.b.higher_is_better = true;
  c.metrics = std::move(metrics);
  return c;
}

TEST(Gate, HolmTurnsTwoBorderlineRegressionsIntoInconclusive) {
  // Each check alone: p = 31/1030 = 0.030 < 0.05, a regression. Holm over two: 0.060.
  RunComparison c = Comparison(
      {WithDraws("aligned_rate", MostlyBelow(30)), WithDraws("other_rate", MostlyBelow(30))});
  GatePolicy policy;
  policy.metrics = {GateMetricPolicy{},
                    GateMetricPolicy{"other_rate", "", "", true, 2, "gate.yaml:5", ""}};
  auto holm = EvaluateGate({c}, policy);
  ASSERT_TRUE(holm.has_value()) << holm.error().message();
  ASSERT_EQ(holm->checks.size(), 2u);
  EXPECT_NEAR(holm->checks[0].p_regression, 31.0 / 1030, 1e-12);
  EXPECT_NEAR(holm->checks[0].p_regression_adjusted, 62.0 / 1030, 1e-12);
  EXPECT_EQ(holm->checks[0].verdict, "inconclusive");
  EXPECT_EQ(holm->verdict, "inconclusive");
  EXPECT_EQ(holm->exit_code, 0);  // inconclusive passes unless the policy says otherwise
  policy.inconclusive_fails = true;
  EXPECT_EQ(EvaluateGate({c}, policy)->exit_code, 4);
  policy.holm = false;
  auto plain = EvaluateGate({c}, policy);
  EXPECT_EQ(plain->checks[0].verdict, "regression");
  EXPECT_EQ(plain->verdict, "regression");
  EXPECT_EQ(plain->exit_code, 1);
}

TEST(Gate, PassNeedsNonInferiorityAndLowerIsBetterFlipsTheTests) {
  // Every draw within +/- 1 point: surely no worse than 2 points either way.
  std::vector<double> near_zero;
  for (int i = 0; i < 1000; ++i) near_zero.push_back(-1 + 2.0 * i / 999);
  GatePolicy policy;
  auto r = EvaluateGate({Comparison({WithDraws("aligned_rate", near_zero)})}, policy);
  EXPECT_EQ(r->checks[0].verdict, "pass");
  EXPECT_EQ(r->exit_code, 0);
  // Lower is better: draws around +10 (the rate went up) are a regression.
  std::vector<double> up(1000, 10.0);
  RunComparison c = Comparison({WithDraws("error_rate", up)});
  policy.metrics = {GateMetricPolicy{"error_rate", "", "", false, 2, "gate.yaml:3", ""}};
  r = EvaluateGate({c}, policy);
  EXPECT_EQ(r->checks[0].verdict, "regression");
  // The same draws for a higher-is-better metric are an improvement: a pass.
  policy.metrics[0].higher_is_better = true;
  EXPECT_EQ(EvaluateGate({c}, policy)->checks[0].verdict, "pass");
}

TEST(Gate, BadPoliciesNameTheEntry) {
  RunComparison c = Comparison({WithDraws("aligned_rate", MostlyBelow(0))});
  GatePolicy policy;
  policy.metrics = {GateMetricPolicy{"p_scor", "", "", true, 2, "gate.yaml:4", ""}};
  auto r = EvaluateGate({c}, policy);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find(
                "gate.yaml:4: runs 1 and 2 of suite 'demo' do not both report metric 'p_scor'"),
            std::string::npos)
      << r.error().message();
  policy.metrics = {GateMetricPolicy{"aligned_rate", "", "", true, 2, "x", ""},
                    GateMetricPolicy{"other", "", "", std::nullopt, 2, "gate.yaml:9", ""}};
  c.metrics.push_back(WithDraws("other", MostlyBelow(0)));
  r = EvaluateGate({c}, policy);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("gate.yaml:9: metric 'other' needs 'direction: higher'"),
            std::string::npos);
  // An entry for another suite is skipped.
  policy.metrics[1].suite = "elsewhere";
  EXPECT_TRUE(EvaluateGate({c}, policy).has_value());
}

TEST(GatePolicy, LoadsStrictlyWithLines) {
  TempDir tmp;
  auto ok = LoadGatePolicy(
      tmp.Write("gate.yaml",
                "alpha: 0.01\ncorrection: none\ninconclusive: fail\nmetrics:\n"
                "  - name: primary\n    margin: 1.5\n"
                "  - name: error_rate\n    direction: lower\n    margin: 0\n    suite: demo\n"));
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_DOUBLE_EQ(ok->alpha, 0.01);
  EXPECT_FALSE(ok->holm);
  EXPECT_TRUE(ok->inconclusive_fails);
  ASSERT_EQ(ok->metrics.size(), 2u);
  EXPECT_DOUBLE_EQ(ok->metrics[0].margin, 1.5);
  EXPECT_EQ(ok->metrics[1].higher_is_better, false);
  EXPECT_EQ(ok->metrics[1].suite, "demo");
  EXPECT_EQ(ok->metrics[1].where, tmp.path() + "/gate.yaml:7");

  std::string bad = tmp.Write("bad.yaml", "metrics:\n  - name: primary\n    margn: 2\n");
  auto e = LoadGatePolicy(bad);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.error().message().find(bad + ":3"), std::string::npos) << e.error().message();
  EXPECT_NE(e.error().message().find("metrics[0].margn"), std::string::npos) << e.error().message();
  e = LoadGatePolicy(tmp.Write("alpha.yaml", "alpha: 2\n"));
  EXPECT_NE(e.error().message().find("alpha"), std::string::npos);
  e = LoadGatePolicy(tmp.Write("dir.yaml", "metrics:\n  - name: x\n    direction: up\n"));
  EXPECT_NE(e.error().message().find("direction"), std::string::npos);
  EXPECT_EQ(LoadGatePolicy(tmp.path() + "/missing.yaml").error().code(), StatusCode::kNotFound);
}

TEST(Gate, JunitAndMarkdownEscapeAndCount) {
  RunComparison c = Comparison({WithDraws("aligned_rate", MostlyBelow(0))});
  c.b.suite_id = "a<b>&\"c\"";
  c.metrics[0].category = "x|y";
  GatePolicy policy;
  policy.metrics[0].category = "x|y";
  auto r = EvaluateGate({c}, policy);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  std::string junit = *FormatGate(*r, "junit");
  EXPECT_NE(junit.find("tests=\"1\" failures=\"1\" skipped=\"0\""), std::string::npos) << junit;
  EXPECT_NE(junit.find("classname=\"plumb.a&lt;b&gt;&amp;&quot;c&quot;\""), std::string::npos)
      << junit;
  EXPECT_NE(junit.find("<failure type=\"regression\""), std::string::npos);
  EXPECT_EQ(junit.find("a<b>"), std::string::npos);
  std::string md = *FormatGate(*r, "md");
  EXPECT_NE(md.find("## plumb gate: REGRESSION"), std::string::npos);
  EXPECT_NE(md.find("aligned_rate [x\\|y]"), std::string::npos) << md;
  Json j = Json::parse(*FormatGate(*r, "json"));
  EXPECT_EQ(j["verdict"], "regression");
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["checks"][0]["verdict"], "regression");
}

}  // namespace
}  // namespace plumb
