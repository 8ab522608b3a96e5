// Wilson intervals and the clustered bootstrap for proportions.
#include "plumb/stats.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "plumb/hash.h"

namespace plumb {
namespace {

double Percentile(const std::vector<double>& sorted, double q) {
  size_t idx = static_cast<size_t>(std::floor(q * static_cast<double>(sorted.size() - 1) + 0.5));
  return sorted[std::min(idx, sorted.size() - 1)];
}

}  // namespace

Interval WilsonInterval(int64_t k, int64_t n, double z) {
  double nn = static_cast<double>(n);
  double p = static_cast<double>(k) / nn;
  double z2 = z * z;
  double denom = 1 + z2 / nn;
  double center = (p + z2 / (2 * nn)) / denom;
  double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

Metric ProportionMetric(std::string name, std::string category,
                        const std::vector<Cluster>& clusters, uint64_t seed, int resamples) {
  Metric m;
  m.name = std::move(name);
  m.category = std::move(category);
  std::vector<Cluster> used;
  int64_t k = 0, n = 0;
  bool single = true;
  for (const auto& c : clusters) {
    if (c.n <= 0) continue;
    used.push_back(c);
    k += c.k;
    n += c.n;
    single = single && c.n == 1;
  }
  m.n = n;
  m.k = k;
  if (n == 0) {
    m.ci_method = "none";
    return m;
  }
  m.value = 100.0 * static_cast<double>(k) / static_cast<double>(n);
  if (single) {
    Interval ci = WilsonInterval(k, n);
    m.ci_low = 100 * ci.low;
    m.ci_high = 100 * ci.high;
    m.ci_method = "wilson";
    return m;
  }
  Rng rng(SplitMix64(seed));
  std::vector<double> stats;
  stats.reserve(resamples);
  for (int r = 0; r < resamples; ++r) {
    int64_t rk = 0, rn = 0;
    for (size_t i = 0; i < used.size(); ++i) {
      const Cluster& c = used[rng.Below(used.size())];
      rk += c.k;
      rn += c.n;
    }
    stats.push_back(static_cast<double>(rk) / static_cast<double>(rn));
  }
  std::sort(stats.begin(), stats.end());
  if (k == 0 || k == n) {
    // Every resample repeats the observed 0% or 100%, a zero-width interval that overstates
    // certainty; use Wilson with one trial per item instead (conservative).
    Interval ci = WilsonInterval(k == 0 ? 0 : static_cast<int64_t>(used.size()),
                                 static_cast<int64_t>(used.size()));
    m.ci_low = 100 * ci.low;
    m.ci_high = 100 * ci.high;
    m.ci_method = "wilson-items";
    m.details["clusters"] = used.size();
    return m;
  }
  m.ci_low = 100 * Percentile(stats, 0.025);
  m.ci_high = 100 * Percentile(stats, 0.975);
  m.ci_method = "bootstrap";
  m.details["clusters"] = used.size();
  return m;
}

Metric BootstrapMetric(std::string name, std::string category, size_t n_clusters,
                       const ClusterStatistic& statistic, uint64_t seed, int resamples,
                       const std::vector<int>& strata) {
  Metric m;
  m.name = std::move(name);
  m.category = std::move(category);
  m.n = static_cast<int64_t>(n_clusters);
  m.ci_method = "none";
  std::vector<int> counts(n_clusters, 1);
  m.value = n_clusters > 0 ? statistic(counts) : std::nullopt;
  if (!m.value || n_clusters < 2) return m;
  std::map<int, std::vector<size_t>> groups;
  for (size_t i = 0; i < n_clusters; ++i) groups[strata.empty() ? 0 : strata[i]].push_back(i);
  Rng rng(SplitMix64(seed));
  std::vector<double> stats;
  stats.reserve(resamples);
  for (int r = 0; r < resamples; ++r) {
    std::fill(counts.begin(), counts.end(), 0);
    for (const auto& [_, members] : groups) {
      for (size_t i = 0; i < members.size(); ++i) counts[members[rng.Below(members.size())]]++;
    }
    if (auto v = statistic(counts)) stats.push_back(*v);
  }
  if (stats.size() < static_cast<size_t>(resamples) / 2) return m;  // mostly undefined
  std::sort(stats.begin(), stats.end());
  m.ci_low = Percentile(stats, 0.025);
  m.ci_high = Percentile(stats, 0.975);
  m.ci_method = "bootstrap";
  return m;
}

std::optional<double> KrippendorffAlpha(const std::vector<std::vector<std::optional<double>>>& units,
                                        bool interval) {
  auto delta = [interval](double a, double b) { return interval ? (a - b) * (a - b) : (a == b ? 0.0 : 1.0); };
  std::vector<std::vector<double>> pairable;
  size_t n = 0;
  for (const auto& unit : units) {
    std::vector<double> values;
    for (const auto& v : unit) {
      if (v) values.push_back(*v);
    }
    if (values.size() < 2) continue;
    n += values.size();
    pairable.push_back(std::move(values));
  }
  if (n < 2) return std::nullopt;
  // Observed disagreement: within units, each ordered pair weighted by 1 / (m_u - 1).
  double observed = 0;
  std::vector<double> all;
  for (const auto& values : pairable) {
    double sum = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      for (size_t j = 0; j < values.size(); ++j) {
        if (i != j) sum += delta(values[i], values[j]);
      }
    }
    observed += sum / static_cast<double>(values.size() - 1);
    all.insert(all.end(), values.begin(), values.end());
  }
  observed /= static_cast<double>(n);
  // Expected disagreement: over all ordered pairs of pairable values.
  double expected = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = 0; j < all.size(); ++j) {
      if (i != j) expected += delta(all[i], all[j]);
    }
  }
  expected /= static_cast<double>(n) * static_cast<double>(n - 1);
  if (expected == 0) return std::nullopt;
  return 1 - observed / expected;
}

}  // namespace plumb
