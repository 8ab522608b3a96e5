// Fleiss' kappa, chi-square tests and the variant permutation test behind stability analysis.
#include "plumb/stability.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "plumb/hash.h"

namespace plumb {
namespace {

// The expected shares normalised to sum 1, or empty when they cannot describe a distribution
// over `size` categories.
std::vector<double> NormalisedShares(const std::vector<double>& shares, size_t size) {
  if (shares.size() != size) return {};
  double total = 0;
  for (double s : shares) {
    if (!std::isfinite(s) || s < 0) return {};
    total += s;
  }
  if (!(total > 0) || !std::isfinite(total)) return {};
  std::vector<double> out(shares);
  for (double& s : out) s /= total;
  return out;
}

// Series and continued fraction of the incomplete gamma function (Numerical Recipes, 3rd ed.,
// section 6.2, written out here because none of our Debian dependencies offers it: the C++
// standard library has lgamma but no incomplete gamma, and Boost.Math or GSL would be a new
// dependency for one function). The iteration cap only guards against a bug; both converge in
// O(sqrt(a)) steps.
constexpr int kMaxGammaIterations = 100000;
constexpr double kGammaEpsilon = std::numeric_limits<double>::epsilon();
constexpr double kTiny = std::numeric_limits<double>::min() / kGammaEpsilon;

// e^-x x^a / Gamma(a), the common factor of both expansions, computed in log space.
double GammaPrefactor(double a, double x) {
  return std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// The lower regularized P(a, x) by its power series; converges fast for x < a + 1.
double LowerGammaSeries(double a, double x) {
  double ap = a, term = 1 / a, sum = term;
  for (int n = 0; n < kMaxGammaIterations; ++n) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * kGammaEpsilon) break;
  }
  return sum * GammaPrefactor(a, x);
}

// The upper regularized Q(a, x) by its continued fraction (modified Lentz); converges fast for
// x >= a + 1, where 1 - P would lose the small tail probabilities to cancellation.
double UpperGammaFraction(double a, double x) {
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i < kMaxGammaIterations; ++i) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kGammaEpsilon) break;
  }
  return GammaPrefactor(a, x) * h;
}

}  // namespace

std::optional<double> FleissKappa(const std::vector<std::vector<int64_t>>& counts) {
  if (counts.empty() || counts[0].empty()) return std::nullopt;
  const size_t categories = counts[0].size();
  int64_t raters = -1;
  std::vector<double> category_totals(categories, 0);
  double agreement_sum = 0;
  for (const auto& row : counts) {
    if (row.size() != categories) return std::nullopt;
    int64_t n = 0;
    double squares = 0;
    for (size_t j = 0; j < categories; ++j) {
      if (row[j] < 0) return std::nullopt;
      n += row[j];
      squares += static_cast<double>(row[j]) * static_cast<double>(row[j]);
      category_totals[j] += static_cast<double>(row[j]);
    }
    if (raters == -1) raters = n;
    if (n != raters || n < 2) return std::nullopt;
    const double nn = static_cast<double>(n);
    agreement_sum += (squares - nn) / (nn * (nn - 1));
  }
  const double total = static_cast<double>(raters) * static_cast<double>(counts.size());
  // P_e == 1 exactly when one category holds every rating; testing that on the counts avoids
  // comparing a rounded sum of squares with 1.
  if (*std::max_element(category_totals.begin(), category_totals.end()) == total) {
    return std::nullopt;
  }
  double chance = 0;
  for (double t : category_totals) chance += (t / total) * (t / total);
  const double observed = agreement_sum / static_cast<double>(counts.size());
  return (observed - chance) / (1 - chance);
}

double ChiSquareSurvival(double x, int df) {
  if (std::isnan(x)) return x;
  if (df < 1 || x <= 0) return 1;
  if (std::isinf(x)) return 0;
  const double a = df / 2.0, half_x = x / 2;
  if (half_x < a + 1) return std::clamp(1 - LowerGammaSeries(a, half_x), 0.0, 1.0);
  return std::clamp(UpperGammaFraction(a, half_x), 0.0, 1.0);
}

ChiSquareResult ChiSquareGoodnessOfFit(const std::vector<int64_t>& observed,
                                       const std::vector<double>& expected_share) {
  ChiSquareResult out;
  std::vector<double> shares = NormalisedShares(expected_share, observed.size());
  if (shares.empty()) return out;
  int64_t total = 0;
  for (int64_t o : observed) {
    if (o < 0) return out;
    total += o;
  }
  if (total == 0) return out;
  const double n = static_cast<double>(total);
  int used = 0;
  bool impossible = false;
  double statistic = 0;
  for (size_t j = 0; j < observed.size(); ++j) {
    if (shares[j] == 0) {
      impossible = impossible || observed[j] > 0;
      continue;
    }
    ++used;
    const double expected = n * shares[j];
    const double diff = static_cast<double>(observed[j]) - expected;
    statistic += diff * diff / expected;
  }
  if (impossible) {
    out.statistic = statistic;
    out.df = used - 1;
    out.p_value = 0;
    return out;
  }
  if (used < 2) return out;
  out.statistic = statistic;
  out.df = used - 1;
  out.p_value = ChiSquareSurvival(statistic, out.df);
  return out;
}

SpreadTest VariantSpreadTest(const std::vector<std::vector<double>>& outcomes, int permutations,
                             uint64_t seed) {
  std::vector<std::vector<std::vector<double>>> cells;
  cells.reserve(outcomes.size());
  for (const auto& row : outcomes) {
    std::vector<std::vector<double>> r;
    r.reserve(row.size());
    for (double x : row) r.push_back({x});
    cells.push_back(std::move(r));
  }
  const double items = static_cast<double>(outcomes.size());
  return CountsSpreadTest(
      cells, [items](const std::vector<double>& sums) { return sums[0] / items; }, permutations,
      seed);
}

SpreadTest CountsSpreadTest(const std::vector<std::vector<std::vector<double>>>& cells,
                            const VariantScore& score, int permutations, uint64_t seed) {
  SpreadTest out;
  if (cells.empty() || !score) return out;
  const size_t variants = cells[0].size();
  if (variants < 2) return out;
  const size_t width = cells[0][0].size();
  for (const auto& row : cells) {
    if (row.size() != variants) return out;
    for (const auto& c : row) {
      if (c.size() != width) return out;
    }
  }
  // The spread of per-variant sums (variants x width, flattened); nullopt when a score is
  // undefined.
  auto spread_of = [&](const std::vector<double>& sums) -> std::optional<double> {
    double lo = 0, hi = 0;
    std::vector<double> one(width);
    for (size_t v = 0; v < variants; ++v) {
      std::copy(sums.begin() + static_cast<std::ptrdiff_t>(v * width),
                sums.begin() + static_cast<std::ptrdiff_t>((v + 1) * width), one.begin());
      std::optional<double> s = score(one);
      if (!s) return std::nullopt;
      lo = v == 0 ? *s : std::min(lo, *s);
      hi = v == 0 ? *s : std::max(hi, *s);
    }
    return hi - lo;
  };
  // Rows whose cells are all equal look the same under every shuffle: they add a fixed amount
  // to each variant, so only the other rows are shuffled (the test is unchanged, and far
  // cheaper when most items are answered consistently).
  std::vector<double> fixed_sums(variants * width, 0), observed_sums(variants * width, 0);
  std::vector<std::vector<std::vector<double>>> varying;
  for (const auto& row : cells) {
    bool same = true;
    for (size_t v = 0; v < variants; ++v) {
      same = same && row[v] == row[0];
      for (size_t w = 0; w < width; ++w) observed_sums[v * width + w] += row[v][w];
    }
    if (same) {
      for (size_t v = 0; v < variants; ++v) {
        for (size_t w = 0; w < width; ++w) fixed_sums[v * width + w] += row[v][w];
      }
    } else {
      varying.push_back(row);
    }
  }
  std::optional<double> observed = spread_of(observed_sums);
  if (!observed) return out;
  out.spread = *observed;
  if (permutations <= 0) return out;
  Rng rng(seed);
  std::vector<double> sums(variants * width);
  int at_least = 0;
  for (int p = 0; p < permutations; ++p) {
    sums = fixed_sums;
    for (auto& row : varying) {
      // Shuffling the previous permutation again gives a uniformly random order of the
      // original row just the same, so the rows are never reset. This is Rng::Permutation's
      // Fisher-Yates, done in place to avoid an allocation per row and permutation.
      for (size_t i = variants - 1; i > 0; --i) std::swap(row[i], row[rng.Below(i + 1)]);
      for (size_t v = 0; v < variants; ++v) {
        for (size_t w = 0; w < width; ++w) sums[v * width + w] += row[v][w];
      }
    }
    // The tolerance keeps ties counted as ties when the sums are added in a different order
    // than the observed ones.
    std::optional<double> s = spread_of(sums);
    if (!s || *s >= out.spread - 1e-12) ++at_least;
  }
  out.permutations = permutations;
  out.p_value = static_cast<double>(1 + at_least) / static_cast<double>(1 + permutations);
  return out;
}

double ConsistentShare(const std::vector<std::vector<double>>& outcomes) {
  if (outcomes.empty()) return 0;
  size_t consistent = 0;
  for (const auto& row : outcomes) {
    consistent += std::all_of(row.begin(), row.end(), [&row](double x) { return x == row[0]; });
  }
  return static_cast<double>(consistent) / static_cast<double>(outcomes.size());
}

PositionBias PositionBiasOf(const std::vector<int64_t>& chosen_counts,
                            const std::vector<double>& expected_share) {
  PositionBias out;
  out.chosen = chosen_counts;
  std::vector<double> shares = NormalisedShares(expected_share, chosen_counts.size());
  if (shares.empty()) return out;
  int64_t total = 0;
  for (int64_t c : chosen_counts) {
    if (c < 0) return out;
    total += c;
  }
  out.expected_share = shares;
  out.test = ChiSquareGoodnessOfFit(chosen_counts, shares);
  if (total == 0) return out;
  const auto most = std::max_element(chosen_counts.begin(), chosen_counts.end());
  out.most_chosen = static_cast<int>(most - chosen_counts.begin());
  out.index = static_cast<double>(*most) / static_cast<double>(total) -
              shares[static_cast<size_t>(out.most_chosen)];
  return out;
}

}  // namespace plumb
