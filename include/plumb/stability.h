// Stability statistics for multiple-choice evaluations run under several presentations
// (variants) of the same items: agreement across variants, whether the presentation moves the
// score, and whether a model prefers a display position regardless of content.
//
// Everything here is a pure function of its arguments (the permutation test is seeded), so the
// same inputs give the same numbers on every platform. Invalid shapes do not throw: each
// function documents the neutral value it returns instead ("no evidence": p = 1).
#ifndef PLUMB_STABILITY_H_
#define PLUMB_STABILITY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace plumb {

// Fleiss' kappa (Fleiss 1971) for `counts[i][j]`, the number of raters who put subject i in
// category j (here: the variants of an item that led to answer j). With N subjects, n raters
// per subject and p_j the share of all ratings in category j:
//   P_i = (sum_j counts[i][j]^2 - n) / (n (n - 1)),  P = mean P_i,  P_e = sum_j p_j^2,
//   kappa = (P - P_e) / (1 - P_e).
// 1 is perfect agreement, 0 agreement at chance level, negative less than chance.
// Returns nullopt when there are no subjects, when rows differ in length, a count is negative,
// subjects have different numbers of raters or fewer than two, or P_e == 1 (every rating in
// one category, so chance agreement is already perfect and kappa is 0 / 0).
std::optional<double> FleissKappa(const std::vector<std::vector<int64_t>>& counts);

// Pearson's chi-square goodness-of-fit test. `df` == 0 marks "no test" (p_value 1).
struct ChiSquareResult {
  double statistic = 0;
  int df = 0;
  double p_value = 1;
};

// Tests `observed` counts against expected shares of their total N: the statistic is
// sum (O - E)^2 / E with E = N * share, where `expected_share` is normalised to sum 1 first (so
// raw frequencies work as well as fractions). df = number of categories with a positive share,
// minus 1; p_value = ChiSquareSurvival(statistic, df).
// A category with share 0 is left out when nothing was observed in it; when something was, the
// expected distribution is refuted outright: p_value is 0 (the statistic sums the other
// categories only, so that it stays finite).
// N == 0 or df < 1 (and nothing impossible observed): statistic 0, p_value 1.
// Invalid input (sizes differ, a negative count, a negative or non-finite share, shares summing
// to 0) gives the "no test" result {0, 0, 1}.
ChiSquareResult ChiSquareGoodnessOfFit(const std::vector<int64_t>& observed,
                                       const std::vector<double>& expected_share);

// P(X >= x) for X chi-square distributed with `df` degrees of freedom: the regularized upper
// incomplete gamma function Q(df / 2, x / 2). Accurate to about 1e-12 relative. x <= 0 gives 1;
// df < 1 gives 1 (no test); NaN x gives NaN.
double ChiSquareSurvival(double x, int df);

// The outcome of VariantSpreadTest.
struct SpreadTest {
  double spread = 0;     // max over variants of the mean outcome, minus the min
  double p_value = 1;    // permutation p-value of the spread, H0: the variant does not matter
  int permutations = 0;  // permutations actually drawn (0 when no test was possible)
};

// Whether the presentation changes the score. `outcomes[i][v]` is the outcome of item i under
// variant v (e.g. 1 aligned, 0 not; any finite score works). The observed spread is the max
// over variants of the mean over items, minus the min. Under the null hypothesis the variant
// does not matter, so within an item the V outcomes are exchangeable: each permutation
// shuffles every item's row independently (Fisher-Yates driven by plumb::Rng seeded with
// `seed`) and recomputes the spread, and
//   p_value = (1 + #{permuted spread >= observed spread - 1e-12}) / (1 + permutations),
// which is never 0 and keeps the test valid (never anti-conservative) for any number of
// permutations.
// Deterministic for a given seed. No items, rows of different lengths or fewer than two
// variants: {0, 1, 0}. permutations <= 0 computes the spread with p_value 1.
SpreadTest VariantSpreadTest(const std::vector<std::vector<double>>& outcomes, int permutations,
                             uint64_t seed);

// VariantSpreadTest for a score that is not a mean of item outcomes (a rate pooled over
// samples, a difference of two rates, their harmonic mean): `cells[i][v]` are item i's counts
// under variant v (every cell of one width, e.g. successes and trials per set), and
// `score(sums)` is a variant's score from the element-wise sums of its cells. The spread is
// the max minus the min of the variants' scores; the permutations shuffle each item's cells
// across variants as VariantSpreadTest shuffles its outcomes (the same draws for the same
// seed), and a permutation under which some variant's score is undefined counts as reaching
// the observed spread (conservative). Invalid shapes, fewer than two variants or an undefined
// observed score: {0, 1, 0}.
using VariantScore = std::function<std::optional<double>(const std::vector<double>& sums)>;
SpreadTest CountsSpreadTest(const std::vector<std::vector<std::vector<double>>>& cells,
                            const VariantScore& score, int permutations, uint64_t seed);

// The share (0..1) of items whose outcome is identical (exact comparison) in every variant;
// an item with a single variant counts as consistent. 0 when there are no items.
double ConsistentShare(const std::vector<std::vector<double>>& outcomes);

// Whether a model picks a display position regardless of content.
struct PositionBias {
  std::vector<int64_t> chosen;         // answers choosing each display position
  std::vector<double> expected_share;  // normalised to sum 1 (empty when invalid)
  ChiSquareResult test;                // goodness of fit of `chosen` to `expected_share`
  // Share of all answers at the most chosen position minus that position's expected share, as
  // a fraction (0.75 = 75 points). Negative when even the most chosen position is picked less
  // often than expected. 0 when nothing was chosen or the input is invalid.
  double index = 0;
  int most_chosen = 0;  // the most chosen position (the first one on ties)
};

// Position bias of `chosen_counts[p]` (answers choosing display position p) against
// `expected_share[p]`, the share expected at p if the model chose by content: e.g. how often
// the aligned option was shown at p, or uniform. Invalid input (as for ChiSquareGoodnessOfFit)
// keeps `chosen` and leaves the rest at its defaults.
PositionBias PositionBiasOf(const std::vector<int64_t>& chosen_counts,
                            const std::vector<double>& expected_share);

}  // namespace plumb

#endif  // PLUMB_STABILITY_H_
