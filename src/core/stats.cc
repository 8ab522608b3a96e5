// Wilson intervals and the clustered bootstrap for proportions.
#include "plumb/stats.h"

#include <algorithm>
#include <cmath>

#include "plumb/hash.h"

namespace plumb {

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
  auto at = [&](double q) {
    size_t idx = static_cast<size_t>(std::floor(q * (stats.size() - 1) + 0.5));
    return stats[std::min(idx, stats.size() - 1)];
  };
  m.ci_low = 100 * at(0.025);
  m.ci_high = 100 * at(0.975);
  m.ci_method = "bootstrap";
  m.details["clusters"] = used.size();
  return m;
}

}  // namespace plumb
