// Stability statistics against published and hand-computed values.
#include "plumb/stability.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace plumb {
namespace {

TEST(StabilityFleissKappa, MatchesFleiss1971WorkedExample) {
  // The worked example of the Wikipedia article "Fleiss' kappa": 10 subjects, 14 raters, 5
  // categories. p_j = (0.143, 0.200, 0.279, 0.150, 0.229), P = 172/455 = 0.378,
  // P_e = 417/1960 = 0.213, kappa = 4211/20059 = 0.20993 (published: 0.210).
  std::vector<std::vector<int64_t>> counts = {
      {0, 0, 0, 0, 14}, {0, 2, 6, 4, 2}, {0, 0, 3, 5, 6}, {0, 3, 9, 2, 0}, {2, 2, 8, 1, 1},
      {7, 7, 0, 0, 0},  {3, 2, 6, 3, 0}, {2, 5, 3, 2, 2}, {6, 5, 2, 1, 0}, {0, 2, 2, 3, 7},
  };
  std::optional<double> kappa = FleissKappa(counts);
  ASSERT_TRUE(kappa.has_value());
  EXPECT_NEAR(*kappa, 0.210, 5e-4);
  EXPECT_NEAR(*kappa, 4211.0 / 20059.0, 1e-12);
}

TEST(StabilityFleissKappa, SmallHandExample) {
  // Two raters: two subjects agree, one splits. P = (1 + 1 + 0) / 3 = 2/3, p = (1/2, 1/2),
  // P_e = 1/2, kappa = (2/3 - 1/2) / (1/2) = 1/3.
  EXPECT_NEAR(*FleissKappa({{2, 0}, {0, 2}, {1, 1}}), 1.0 / 3.0, 1e-12);
  // Every subject split evenly: agreement below chance. P = 0, P_e = 1/2, kappa = -1.
  EXPECT_NEAR(*FleissKappa({{1, 1}, {1, 1}}), -1.0, 1e-12);
}

TEST(StabilityFleissKappa, PerfectAgreementIsOne) {
  std::optional<double> kappa = FleissKappa({{3, 0, 0}, {0, 3, 0}, {0, 0, 3}, {3, 0, 0}});
  ASSERT_TRUE(kappa.has_value());
  EXPECT_DOUBLE_EQ(*kappa, 1.0);
}

TEST(StabilityFleissKappa, UndefinedCasesAreNullopt) {
  EXPECT_FALSE(FleissKappa({}).has_value());
  EXPECT_FALSE(FleissKappa({{}, {}}).has_value());
  EXPECT_FALSE(FleissKappa({{3}, {3}}).has_value());         // one category: P_e == 1
  EXPECT_FALSE(FleissKappa({{3, 0}, {3, 0}}).has_value());   // one category used: P_e == 1
  EXPECT_FALSE(FleissKappa({{2, 0}, {1, 2}}).has_value());   // 2 raters, then 3
  EXPECT_FALSE(FleissKappa({{1, 0}, {0, 1}}).has_value());   // one rater each
  EXPECT_FALSE(FleissKappa({{2, 0}, {2}}).has_value());      // ragged rows
  EXPECT_FALSE(FleissKappa({{3, -1}, {1, 1}}).has_value());  // negative count
}

TEST(StabilityChiSquareSurvival, MatchesCriticalValues) {
  // The 5% critical values of chi-square tables (Q computed with mpmath to 15 digits).
  EXPECT_NEAR(ChiSquareSurvival(3.841459, 1), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(5.991465, 2), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(11.0705, 5), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(3.841459, 1), 0.0499999946531958, 1e-12);
  EXPECT_NEAR(ChiSquareSurvival(11.0705, 5), 0.0499999554280437, 1e-12);
  EXPECT_NEAR(ChiSquareSurvival(2, 3), 0.5724067044708800, 1e-12);
  // Both branches (series below x/2 = a + 1, continued fraction above) and a far tail.
  EXPECT_NEAR(ChiSquareSurvival(100, 80), 0.064570368921133, 1e-12);
  EXPECT_NEAR(ChiSquareSurvival(50, 80), 0.996556431270573, 1e-12);
  EXPECT_NEAR(ChiSquareSurvival(300, 3) / 9.94875834632771e-65, 1.0, 1e-10);
}

TEST(StabilityChiSquareSurvival, MatchesClosedForms) {
  // df = 1: Q = erfc(sqrt(x / 2)). df = 2k: Q = e^(-x/2) sum_{i<k} (x/2)^i / i!.
  for (double x : {0.01, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0}) {
    double want = std::erfc(std::sqrt(x / 2));
    EXPECT_NEAR(ChiSquareSurvival(x, 1), want, 1e-13 + 1e-10 * want) << "x=" << x;
    for (int k : {1, 2, 5, 15}) {
      double term = 1, sum = 0;
      for (int i = 0; i < k; ++i) {
        sum += term;
        term *= (x / 2) / (i + 1);
      }
      want = std::exp(-x / 2) * sum;
      EXPECT_NEAR(ChiSquareSurvival(x, 2 * k), want, 1e-13 + 1e-10 * want)
          << "x=" << x << " df=" << 2 * k;
    }
  }
}

TEST(StabilityChiSquareSurvival, EdgeCases) {
  EXPECT_EQ(ChiSquareSurvival(0, 1), 1.0);
  EXPECT_EQ(ChiSquareSurvival(0, 4), 1.0);
  EXPECT_EQ(ChiSquareSurvival(-3, 4), 1.0);
  EXPECT_EQ(ChiSquareSurvival(5, 0), 1.0);
  EXPECT_EQ(ChiSquareSurvival(std::numeric_limits<double>::infinity(), 3), 0.0);
  EXPECT_TRUE(std::isnan(ChiSquareSurvival(std::nan(""), 3)));
}

TEST(StabilityChiSquareGoodnessOfFit, DieRollsAgainstUniform) {
  // N = 200, E = 200/6 each. sum O^2 = 900 + 196 + 1156 + 2025 + 3249 + 400 = 7926, so
  // sum (O - E)^2 / E = sum O^2 / E - N = 7926 * 6 / 200 - 200 = 237.78 - 200 = 37.78 exactly;
  // df = 5, p = Q(2.5, 18.89) = 4.17732547526517e-7 (mpmath).
  ChiSquareResult r = ChiSquareGoodnessOfFit({30, 14, 34, 45, 57, 20}, std::vector<double>(6, 1));
  EXPECT_NEAR(r.statistic, 37.78, 1e-10);
  EXPECT_EQ(r.df, 5);
  EXPECT_NEAR(r.p_value / 4.17732547526517e-7, 1.0, 1e-9);
}

TEST(StabilityChiSquareGoodnessOfFit, NormalisesShares) {
  // Shares 1:1:2 -> (1/4, 1/4, 1/2) of N = 60: E = (15, 15, 30), statistic = 25/15 + 25/15 + 0
  // = 10/3, df = 2, p = e^(-10/6).
  ChiSquareResult r = ChiSquareGoodnessOfFit({10, 20, 30}, {1, 1, 2});
  EXPECT_NEAR(r.statistic, 10.0 / 3.0, 1e-12);
  EXPECT_EQ(r.df, 2);
  EXPECT_NEAR(r.p_value, std::exp(-10.0 / 6.0), 1e-12);
}

TEST(StabilityChiSquareGoodnessOfFit, ZeroSharesAndEmptyInput) {
  // An unobserved category with share 0 is skipped: a perfect fit over the two others.
  ChiSquareResult skipped = ChiSquareGoodnessOfFit({5, 5, 0}, {0.5, 0.5, 0});
  EXPECT_EQ(skipped.statistic, 0.0);
  EXPECT_EQ(skipped.df, 1);
  EXPECT_EQ(skipped.p_value, 1.0);
  // Something observed where nothing was expected refutes the distribution.
  ChiSquareResult impossible = ChiSquareGoodnessOfFit({5, 5, 1}, {0.5, 0.5, 0});
  EXPECT_EQ(impossible.p_value, 0.0);
  EXPECT_EQ(impossible.df, 1);
  // N = 0 and a single category: no test.
  ChiSquareResult empty = ChiSquareGoodnessOfFit({0, 0}, {1, 1});
  EXPECT_EQ(empty.statistic, 0.0);
  EXPECT_EQ(empty.p_value, 1.0);
  ChiSquareResult single = ChiSquareGoodnessOfFit({7}, {1});
  EXPECT_EQ(single.df, 0);
  EXPECT_EQ(single.p_value, 1.0);
  // Invalid input: the "no test" result.
  EXPECT_EQ(ChiSquareGoodnessOfFit({1, 2}, {1, 1, 1}).df, 0);
  EXPECT_EQ(ChiSquareGoodnessOfFit({1, 2}, {0, 0}).df, 0);
  EXPECT_EQ(ChiSquareGoodnessOfFit({1, 2}, {1, -1}).df, 0);
  EXPECT_EQ(ChiSquareGoodnessOfFit({1, -2}, {1, 1}).df, 0);
}

TEST(StabilityVariantSpreadTest, IdenticalColumnsGiveNoSpread) {
  std::vector<std::vector<double>> outcomes;
  for (int i = 0; i < 20; ++i) outcomes.push_back(std::vector<double>(3, i % 3 == 0 ? 1 : 0));
  SpreadTest t = VariantSpreadTest(outcomes, 500, 7);
  EXPECT_EQ(t.spread, 0.0);
  EXPECT_EQ(t.p_value, 1.0);
  EXPECT_EQ(t.permutations, 500);
}

TEST(StabilityVariantSpreadTest, OneDivergentVariantIsSignificant) {
  // Variant 0 always aligned, variants 1 and 2 never, over 40 items: spread 1. A permutation
  // reaches spread 1 only if all 40 ones land in one column (probability 3 * 3^-40), so none
  // of 999 does and p = 1 / 1000.
  std::vector<std::vector<double>> outcomes(40, {1, 0, 0});
  SpreadTest t = VariantSpreadTest(outcomes, 999, 1);
  EXPECT_DOUBLE_EQ(t.spread, 1.0);
  EXPECT_LT(t.p_value, 0.01);
  EXPECT_DOUBLE_EQ(t.p_value, 1.0 / 1000);
}

TEST(StabilityVariantSpreadTest, ShufflesEachItemIndependently) {
  // Two items that both favour variant 0: spread 1. Shuffled independently, the rows line up
  // (spread 1) half of the time and cancel (spread 0) otherwise, so p is about 1/2. Shuffling
  // whole columns together would always keep spread 1 and give p = 1.
  SpreadTest t = VariantSpreadTest({{1, 0}, {1, 0}}, 20000, 3);
  EXPECT_DOUBLE_EQ(t.spread, 1.0);
  EXPECT_NEAR(t.p_value, 0.5, 0.02);
  // Graded outcomes: means (0.5, 0.25), spread 0.25.
  EXPECT_DOUBLE_EQ(VariantSpreadTest({{0.5, 0.25}, {0.5, 0.25}}, 0, 3).spread, 0.25);
}

TEST(StabilityVariantSpreadTest, DeterministicForASeed) {
  std::vector<std::vector<double>> outcomes;
  for (int i = 0; i < 30; ++i) {
    outcomes.push_back({static_cast<double>(i % 2), static_cast<double>(i % 3 == 0),
                        static_cast<double>(i % 5 < 2), static_cast<double>(i % 7 < 3)});
  }
  SpreadTest a = VariantSpreadTest(outcomes, 2000, 42);
  SpreadTest b = VariantSpreadTest(outcomes, 2000, 42);
  SpreadTest c = VariantSpreadTest(outcomes, 2000, 43);
  EXPECT_EQ(a.spread, b.spread);
  EXPECT_EQ(a.p_value, b.p_value);
  EXPECT_EQ(a.spread, c.spread);
  EXPECT_NE(a.p_value, c.p_value);  // another seed draws other permutations
  EXPECT_GT(a.p_value, 0.0);
  EXPECT_LT(a.p_value, 1.0);
}

TEST(StabilityCountsSpreadTest, ScoresADifferenceOfPooledRates) {
  // Cells (bio hits, bio trials, control hits, control trials) of two pairs under two variants;
  // the score is the bio rate minus the control rate, in points. Variant 0: bio 2/2, control
  // 0/2 -> 100; variant 1: bio 1/2, control 1/2 -> 0; spread 100.
  auto effect = [](const std::vector<double>& s) -> std::optional<double> {
    if (s[1] == 0 || s[3] == 0) return std::nullopt;
    return 100 * s[0] / s[1] - 100 * s[2] / s[3];
  };
  std::vector<std::vector<std::vector<double>>> cells = {
      {{1, 1, 0, 1}, {1, 1, 1, 1}},
      {{1, 1, 0, 1}, {0, 1, 0, 1}},
  };
  SpreadTest t = CountsSpreadTest(cells, effect, 20000, 5);
  EXPECT_DOUBLE_EQ(t.spread, 100.0);
  // Four equally likely permutations (each pair swapped or not): spread 100 when neither or
  // both are swapped, 0 otherwise, so p is about 1/2.
  EXPECT_NEAR(t.p_value, 0.5, 0.02);
  // Pooled over trials, not averaged over items: item 0 has 3 trials under variant 0, so
  // variant 0 scores (2 + 1) / (3 + 1) = 75 and variant 1 (1 + 0) / 2 = 50: spread 25 (the mean
  // of the items' rates would give (2/3 + 1) / 2 - 1/2 = 33.3).
  auto rate = [](const std::vector<double>& s) -> std::optional<double> {
    if (s[1] == 0) return std::nullopt;
    return 100 * s[0] / s[1];
  };
  SpreadTest pooled = CountsSpreadTest({{{2, 3}, {1, 1}}, {{1, 1}, {0, 1}}}, rate, 0, 1);
  EXPECT_DOUBLE_EQ(pooled.spread, 25.0);
  // An undefined observed score, mismatched widths, one variant: no test.
  EXPECT_EQ(CountsSpreadTest({{{0, 0}, {1, 1}}}, rate, 100, 1).p_value, 1.0);
  EXPECT_EQ(CountsSpreadTest({{{0, 1}, {1}}}, rate, 100, 1).permutations, 0);
  EXPECT_EQ(CountsSpreadTest({{{0, 1}}}, rate, 100, 1).permutations, 0);
}

TEST(StabilityCountsSpreadTest, MatchesVariantSpreadTestOnMeans) {
  std::vector<std::vector<double>> outcomes;
  std::vector<std::vector<std::vector<double>>> cells;
  for (int i = 0; i < 30; ++i) {
    outcomes.push_back({static_cast<double>(i % 2), static_cast<double>(i % 3 == 0), 1});
    cells.push_back({{outcomes.back()[0], 1}, {outcomes.back()[1], 1}, {1, 1}});
  }
  auto rate = [](const std::vector<double>& s) -> std::optional<double> { return s[0] / s[1]; };
  SpreadTest a = VariantSpreadTest(outcomes, 999, 11);
  SpreadTest b = CountsSpreadTest(cells, rate, 999, 11);
  EXPECT_NEAR(a.spread, b.spread, 1e-12);
  EXPECT_DOUBLE_EQ(a.p_value, b.p_value);
}

TEST(StabilityVariantSpreadTest, InvalidShapesAreNoTest) {
  for (const auto& outcomes :
       std::vector<std::vector<std::vector<double>>>{{}, {{1}, {0}}, {{1, 0}, {1}}}) {
    SpreadTest t = VariantSpreadTest(outcomes, 100, 1);
    EXPECT_EQ(t.spread, 0.0);
    EXPECT_EQ(t.p_value, 1.0);
    EXPECT_EQ(t.permutations, 0);
  }
}

TEST(StabilityConsistentShare, CountsItemsWithOneOutcome) {
  // Items 0, 1 and 3 are the same in every variant; item 2 is not: 3 of 4.
  EXPECT_DOUBLE_EQ(ConsistentShare({{1, 1, 1}, {0, 0, 0}, {1, 0, 1}, {0.5, 0.5, 0.5}}), 0.75);
  EXPECT_DOUBLE_EQ(ConsistentShare({{1, 0}, {0, 1}}), 0.0);
  EXPECT_DOUBLE_EQ(ConsistentShare({}), 0.0);
}

TEST(StabilityPositionBias, ConstantResponder) {
  // Always position 0 of 4 with uniform expectation: index = 1 - 1/4 = 0.75. E = 25 each,
  // statistic = 75^2/25 + 3 * 25 = 225 + 75 = 300, df = 3, p = 9.9e-65.
  PositionBias b = PositionBiasOf({100, 0, 0, 0}, {1, 1, 1, 1});
  EXPECT_DOUBLE_EQ(b.index, 0.75);
  EXPECT_EQ(b.most_chosen, 0);
  EXPECT_NEAR(b.test.statistic, 300, 1e-9);
  EXPECT_EQ(b.test.df, 3);
  EXPECT_LT(b.test.p_value, 1e-6);
  EXPECT_EQ(b.chosen, (std::vector<int64_t>{100, 0, 0, 0}));
  EXPECT_EQ(b.expected_share, (std::vector<double>{0.25, 0.25, 0.25, 0.25}));
}

TEST(StabilityPositionBias, ContentDrivenAndSkewedExpectations) {
  // Choices as expected: no bias.
  PositionBias fair = PositionBiasOf({25, 25, 25, 25}, {0.25, 0.25, 0.25, 0.25});
  EXPECT_DOUBLE_EQ(fair.index, 0.0);
  EXPECT_EQ(fair.test.p_value, 1.0);
  // The aligned option was shown at position 2 most often: choosing it there is content, and
  // the most chosen position is picked less often than expected (index 0.6 - 0.7 = -0.1).
  PositionBias skewed = PositionBiasOf({10, 20, 60, 10}, {0.1, 0.1, 0.7, 0.1});
  EXPECT_EQ(skewed.most_chosen, 2);
  EXPECT_NEAR(skewed.index, -0.1, 1e-12);
  // Position 1 favoured by 0.3 beyond its expected 0.2.
  PositionBias late = PositionBiasOf({20, 50, 30}, {0.4, 0.2, 0.4});
  EXPECT_EQ(late.most_chosen, 1);
  EXPECT_NEAR(late.index, 0.3, 1e-12);
  // Nothing chosen, or shares that do not match the positions.
  EXPECT_EQ(PositionBiasOf({0, 0}, {1, 1}).index, 0.0);
  PositionBias invalid = PositionBiasOf({3, 1}, {1, 1, 1});
  EXPECT_EQ(invalid.test.df, 0);
  EXPECT_TRUE(invalid.expected_share.empty());
  EXPECT_EQ(invalid.chosen, (std::vector<int64_t>{3, 1}));
}

}  // namespace
}  // namespace plumb
