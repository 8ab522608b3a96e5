// Wilson intervals, the clustered bootstrap, reducers over epochs and paired comparisons.
#include "plumb/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include "plumb/hash.h"

namespace plumb {
namespace {

double Percentile(const std::vector<double>& sorted, double q) {
  size_t idx = static_cast<size_t>(std::floor(q * static_cast<double>(sorted.size() - 1) + 0.5));
  return sorted[std::min(idx, sorted.size() - 1)];
}

// Cluster indexes grouped by stratum (one group without strata).
std::vector<std::vector<size_t>> Groups(const std::vector<size_t>& clusters,
                                        const std::vector<int>& strata) {
  std::map<int, std::vector<size_t>> by;
  for (size_t i : clusters) by[strata.empty() ? 0 : strata[i]].push_back(i);
  std::vector<std::vector<size_t>> out;
  for (auto& [_, members] : by) out.push_back(std::move(members));
  return out;
}

// One bootstrap draw: every group's size in draws from that group, with replacement.
void Draw(const std::vector<std::vector<size_t>>& groups, Rng& rng, std::vector<int>& counts) {
  std::fill(counts.begin(), counts.end(), 0);
  for (const auto& members : groups) {
    // Rng::Below inlined with its rejection limit computed once per group (the same draws).
    const uint64_t size = members.size();
    if (size == 0) continue;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % size;
    for (size_t i = 0; i < size; ++i) {
      uint64_t x;
      do {
        x = rng.Next();
      } while (x >= limit);
      counts[members[x % size]]++;
    }
  }
}

// Every metric over the same clusters (the same seed, number of resamples, clusters and strata)
// draws exactly the same resamples: a run's rates, their epoch reducers and the built-in
// baselines beside it all do. The draws are kept (as counts per resample and cluster, 2 bytes
// each) for the next metric that needs them, up to kDrawCacheBytes; the results are identical
// to drawing again.
constexpr size_t kDrawCacheBytes = 24 << 20;

struct DrawKey {
  uint64_t seed;
  int resamples;
  size_t n;
  std::vector<int> strata;
  bool operator==(const DrawKey&) const = default;
};

struct DrawCache {
  std::mutex mu;
  std::deque<std::pair<DrawKey, std::shared_ptr<const std::vector<uint16_t>>>> entries;
  size_t bytes = 0;
};

DrawCache& Draws() {
  static DrawCache cache;
  return cache;
}

// The resamples' counts (resamples x n, row by row), or null when they would not fit the cache.
std::shared_ptr<const std::vector<uint16_t>> CachedDraws(
    uint64_t seed, int resamples, size_t n, const std::vector<int>& strata,
    const std::vector<std::vector<size_t>>& groups) {
  const size_t bytes = static_cast<size_t>(resamples) * n * sizeof(uint16_t);
  if (n > 65535 || bytes > kDrawCacheBytes / 2) return nullptr;
  DrawKey key{seed, resamples, n, strata};
  DrawCache& cache = Draws();
  std::lock_guard<std::mutex> lock(cache.mu);
  for (const auto& [k, draws] : cache.entries) {
    if (k == key) return draws;
  }
  auto draws = std::make_shared<std::vector<uint16_t>>(bytes / sizeof(uint16_t));
  Rng rng(SplitMix64(seed));
  std::vector<int> counts(n);
  for (int r = 0; r < resamples; ++r) {
    Draw(groups, rng, counts);
    std::copy(counts.begin(), counts.end(), draws->begin() + static_cast<ptrdiff_t>(r * n));
  }
  cache.entries.emplace_back(std::move(key), draws);
  cache.bytes += bytes;
  while (cache.bytes > kDrawCacheBytes) {
    cache.bytes -= cache.entries.front().second->size() * sizeof(uint16_t);
    cache.entries.pop_front();
  }
  return draws;
}

std::vector<size_t> Indexes(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// ln C(n, k)
double LogChoose(int64_t n, int64_t k) {
  return std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(k) + 1) -
         std::lgamma(static_cast<double>(n - k) + 1);
}

}  // namespace

Interval WilsonInterval(int64_t k, int64_t n, double z) {
  double nn = static_cast<double>(n);
  double p = static_cast<double>(k) / nn;
  double z2 = z * z;
  double denom = 1 + z2 / nn;
  double center = (p + z2 / (2 * nn)) / denom;
  double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  // At k = 0 (k = n) the bound is exactly 0 (1); rounding would otherwise leave ~1e-16.
  return {k == 0 ? 0.0 : std::max(0.0, center - half), k == n ? 1.0 : std::min(1.0, center + half)};
}

Metric ProportionMetric(std::string name, std::string category, std::vector<Cluster> clusters,
                        const MetricOptions& options) {
  std::erase_if(clusters, [](const Cluster& c) { return c.n <= 0; });
  auto model = std::make_shared<MetricModel>();
  for (const auto& c : clusters) model->keys.push_back(c.key);
  model->statistic = [clusters](const std::vector<int>& counts) -> std::optional<double> {
    int64_t k = 0, n = 0;
    for (size_t i = 0; i < clusters.size(); ++i)
      k += counts[i] * clusters[i].k, n += counts[i] * clusters[i].n;
    if (n == 0) return std::nullopt;
    return 100.0 * static_cast<double>(k) / static_cast<double>(n);
  };
  Metric m;
  m.name = std::move(name);
  m.category = std::move(category);
  m.ci_method = "none";
  int64_t k = 0, n = 0;
  bool single = true;
  for (const auto& c : clusters) {
    k += c.k;
    n += c.n;
    single = single && c.n == 1;
  }
  m.n = n;
  m.k = k;
  model->proportions = std::move(clusters);
  m.model = model;
  if (n == 0) return m;
  m.value = 100.0 * static_cast<double>(k) / static_cast<double>(n);
  int64_t n_clusters = static_cast<int64_t>(model->keys.size());
  if (!single) m.details["clusters"] = n_clusters;
  if (single || k == 0 || k == n) {
    // One trial per cluster: Wilson. Every sample a success (or none): every resample would
    // repeat the observed 0% or 100%, a zero-width interval that overstates certainty, so use
    // Wilson with one trial per cluster instead (conservative).
    Interval ci =
        single ? WilsonInterval(k, n) : WilsonInterval(k == 0 ? 0 : n_clusters, n_clusters);
    m.ci_low = 100 * ci.low;
    m.ci_high = 100 * ci.high;
    m.ci_method = single ? "wilson" : "wilson-items";
    return m;
  }
  if (options.resamples <= 0) return m;
  const size_t nc = model->keys.size();
  std::vector<std::vector<size_t>> groups = {Indexes(nc)};
  std::vector<double> stats;
  stats.reserve(options.resamples);
  if (auto draws = CachedDraws(options.seed, options.resamples, nc, {}, groups)) {
    // The statistic of each cached resample, read in place (the same sums as `statistic`).
    const std::vector<Cluster>& cl = model->proportions;
    for (int r = 0; r < options.resamples; ++r) {
      const uint16_t* row = draws->data() + static_cast<size_t>(r) * nc;
      int64_t rk = 0, rn = 0;
      for (size_t i = 0; i < nc; ++i) rk += row[i] * cl[i].k, rn += row[i] * cl[i].n;
      stats.push_back(100.0 * static_cast<double>(rk) / static_cast<double>(rn));
    }
  } else {
    Rng rng(SplitMix64(options.seed));
    std::vector<int> counts(nc);
    for (int r = 0; r < options.resamples; ++r) {
      Draw(groups, rng, counts);
      stats.push_back(*model->statistic(counts));
    }
  }
  std::sort(stats.begin(), stats.end());
  m.ci_low = Percentile(stats, 0.025);
  m.ci_high = Percentile(stats, 0.975);
  m.ci_method = "bootstrap";
  return m;
}

Metric BootstrapMetric(std::string name, std::string category, std::vector<std::string> keys,
                       ClusterStatistic statistic, const MetricOptions& options,
                       std::vector<int> strata) {
  auto model = std::make_shared<MetricModel>();
  model->keys = std::move(keys);
  model->strata = std::move(strata);
  model->statistic = std::move(statistic);
  Metric m;
  m.name = std::move(name);
  m.category = std::move(category);
  size_t n = model->keys.size();
  m.n = static_cast<int64_t>(n);
  m.ci_method = "none";
  m.model = model;
  std::vector<int> counts(n, 1);
  m.value = n > 0 ? model->statistic(counts) : std::nullopt;
  if (!m.value || n < 2 || options.resamples <= 0) return m;
  auto groups = Groups(Indexes(n), model->strata);
  std::vector<double> stats;
  stats.reserve(options.resamples);
  if (auto draws = CachedDraws(options.seed, options.resamples, n, model->strata, groups)) {
    for (int r = 0; r < options.resamples; ++r) {
      const uint16_t* row = draws->data() + static_cast<size_t>(r) * n;
      std::copy(row, row + n, counts.begin());
      if (auto v = model->statistic(counts)) stats.push_back(*v);
    }
  } else {
    Rng rng(SplitMix64(options.seed));
    for (int r = 0; r < options.resamples; ++r) {
      Draw(groups, rng, counts);
      if (auto v = model->statistic(counts)) stats.push_back(*v);
    }
  }
  if (stats.size() < static_cast<size_t>(options.resamples) / 2) return m;  // mostly undefined
  std::sort(stats.begin(), stats.end());
  m.ci_low = Percentile(stats, 0.025);
  m.ci_high = Percentile(stats, 0.975);
  m.ci_method = "bootstrap";
  return m;
}

double PassAtK(int64_t n, int64_t c, int k) {
  if (n - c < k) return 1;
  return 1 - std::exp(LogChoose(n - c, k) - LogChoose(n, k));
}

double PassHatK(int64_t n, int64_t c, int k) {
  if (c < k) return 0;
  return std::exp(LogChoose(c, k) - LogChoose(n, k));
}

std::vector<int64_t> ReducerKs(int64_t max_n) {
  std::vector<int64_t> ks;
  for (int64_t k = 1; k <= std::min<int64_t>(max_n, 10); ++k) ks.push_back(k);
  for (int64_t scale = 10; scale < max_n; scale *= 10) {
    for (int64_t m : {2, 5, 10}) {
      if (scale * m < max_n && scale * m > 10) ks.push_back(scale * m);
    }
  }
  if (max_n > 10) ks.push_back(max_n);
  return ks;
}

std::vector<Metric> ReducerMetrics(const Metric& proportion, const MetricOptions& options) {
  std::vector<Metric> out;
  if (!proportion.model || proportion.model->proportions.empty()) return out;
  const std::vector<Cluster>& clusters = proportion.model->proportions;
  int64_t max_n = 0;
  for (const auto& c : clusters) max_n = std::max(max_n, c.n);
  if (max_n < 2) return out;
  // One reducer: a value in [0, 1] per cluster with at least min_n samples, averaged (x 100).
  struct Reducer {
    std::string suffix;
    std::vector<size_t> included;  // cluster indexes
    std::vector<double> values;
  };
  std::vector<Reducer> reducers;
  auto reduce = [&](std::string suffix, int64_t min_n,
                    const std::function<double(const Cluster&)>& value) {
    Reducer r{std::move(suffix), {}, {}};
    for (size_t i = 0; i < clusters.size(); ++i) {
      if (clusters[i].n < min_n) continue;
      r.included.push_back(i);
      r.values.push_back(value(clusters[i]));
    }
    reducers.push_back(std::move(r));
  };
  reduce("majority", 1, [](const Cluster& c) {
    return 2 * c.k > c.n ? 1.0 : 2 * c.k == c.n ? 0.5 : 0.0;
  });
  for (int64_t k : ReducerKs(max_n)) {
    int ki = static_cast<int>(k);
    reduce(fmt::format("pass@{}", k), k, [ki](const Cluster& c) { return PassAtK(c.n, c.k, ki); });
    reduce(fmt::format("pass^{}", k), k, [ki](const Cluster& c) { return PassHatK(c.n, c.k, ki); });
  }
  auto mean = [](const std::vector<double>& values) -> ClusterStatistic {
    return [values](const std::vector<int>& counts) -> std::optional<double> {
      double sum = 0, n = 0;
      for (size_t i = 0; i < values.size(); ++i) sum += counts[i] * values[i], n += counts[i];
      if (n == 0) return std::nullopt;
      return 100 * sum / n;
    };
  };
  // Reducers over the same clusters share one pass over the bootstrap draws (each resample's
  // counts are read once for all of them); the figures are those BootstrapMetric gives.
  std::map<std::vector<size_t>, std::vector<size_t>> by_clusters;
  for (size_t r = 0; r < reducers.size(); ++r) by_clusters[reducers[r].included].push_back(r);
  std::vector<Metric> metrics(reducers.size());
  for (const auto& [included, members] : by_clusters) {
    const size_t n = included.size();
    std::vector<std::string> keys;
    for (size_t i : included) keys.push_back(clusters[i].key);
    std::shared_ptr<const std::vector<uint16_t>> draws;
    if (n >= 2 && options.resamples > 0) {
      draws = CachedDraws(options.seed, options.resamples, n, {}, Groups(Indexes(n), {}));
    }
    if (!draws) {
      for (size_t r : members) {
        metrics[r] = BootstrapMetric(proportion.name + "@" + reducers[r].suffix,
                                     proportion.category, keys, mean(reducers[r].values), options);
      }
      continue;
    }
    std::vector<std::vector<double>> stats(members.size());
    for (auto& v : stats) v.reserve(static_cast<size_t>(options.resamples));
    // The reducers' values cluster by cluster (row i holds every reducer's value of cluster i),
    // so one pass over a resample's counts updates them all. Each sum still adds its terms in
    // cluster order, and a cluster drawn 0 times adds exactly 0: the sums are BootstrapMetric's.
    // A reducer whose every value is 0 (a baseline that never succeeds, pass^k beyond every
    // item's successes) is 0 in every resample: it needs no pass.
    std::vector<size_t> live;
    for (size_t m = 0; m < members.size(); ++m) {
      const auto& v = reducers[members[m]].values;
      if (std::any_of(v.begin(), v.end(), [](double x) { return x != 0; })) live.push_back(m);
    }
    const size_t width = live.size();
    std::vector<double> by_cluster(n * width);
    for (size_t m = 0; m < width; ++m) {
      for (size_t i = 0; i < n; ++i)
        by_cluster[i * width + m] = reducers[members[live[m]]].values[i];
    }
    std::vector<double> sums(width);
    for (int d = 0; d < options.resamples; ++d) {
      const uint16_t* counts = draws->data() + static_cast<size_t>(d) * n;
      double total = 0;
      std::fill(sums.begin(), sums.end(), 0.0);
      for (size_t i = 0; i < n; ++i) {
        if (counts[i] == 0) continue;
        const double c = counts[i];
        total += c;
        const double* v = by_cluster.data() + i * width;  // (no element when width is 0)
        for (size_t m = 0; m < width; ++m) sums[m] += c * v[m];
      }
      if (total == 0) continue;
      for (size_t m = 0; m < width; ++m) stats[live[m]].push_back(100 * sums[m] / total);
      for (size_t m = 0, l = 0; m < members.size(); ++m) {
        if (l < live.size() && live[l] == m) {
          ++l;
        } else {
          stats[m].push_back(100 * 0.0 / total);
        }
      }
    }
    for (size_t m = 0; m < members.size(); ++m) {
      const Reducer& red = reducers[members[m]];
      auto model = std::make_shared<MetricModel>();
      model->keys = keys;
      model->statistic = mean(red.values);
      Metric& out_m = metrics[members[m]];
      out_m.name = proportion.name + "@" + red.suffix;
      out_m.category = proportion.category;
      out_m.n = static_cast<int64_t>(n);
      out_m.ci_method = "none";
      out_m.value = model->statistic(std::vector<int>(n, 1));
      out_m.model = model;
      std::vector<double>& st = stats[m];
      if (out_m.value && st.size() >= static_cast<size_t>(options.resamples) / 2) {
        std::sort(st.begin(), st.end());
        out_m.ci_low = Percentile(st, 0.025);
        out_m.ci_high = Percentile(st, 0.975);
        out_m.ci_method = "bootstrap";
      }
    }
  }
  for (size_t r = 0; r < reducers.size(); ++r) {
    metrics[r].details["reducer"] = reducers[r].suffix;
    out.push_back(std::move(metrics[r]));
  }
  return out;
}

PairedComparison ComparePaired(const MetricModel& a, const MetricModel& b,
                               const MetricOptions& options) {
  PairedComparison out;
  std::map<std::string_view, size_t> in_b;
  for (size_t i = 0; i < b.keys.size(); ++i) in_b.emplace(b.keys[i], i);
  std::vector<std::pair<size_t, size_t>> shared;  // (index in a, index in b)
  std::vector<int> strata;
  for (size_t i = 0; i < a.keys.size(); ++i) {
    auto it = in_b.find(a.keys[i]);
    if (it == in_b.end()) continue;
    shared.emplace_back(i, it->second);
    strata.push_back(a.strata.empty() ? 0 : a.strata[i]);
  }
  out.shared = static_cast<int64_t>(shared.size());
  out.only_a = static_cast<int64_t>(a.keys.size() - shared.size());
  out.only_b = static_cast<int64_t>(b.keys.size() - shared.size());
  if (shared.empty()) return out;
  std::vector<int> ca(a.keys.size()), cb(b.keys.size());
  auto evaluate = [&](const std::vector<int>& draw) -> std::optional<double> {
    for (size_t s = 0; s < shared.size(); ++s) ca[shared[s].first] = cb[shared[s].second] = draw[s];
    auto va = a.statistic(ca), vb = b.statistic(cb);
    if (!va || !vb) return std::nullopt;
    return *vb - *va;
  };
  std::vector<int> draw(shared.size(), 1);
  for (size_t s = 0; s < shared.size(); ++s) ca[shared[s].first] = cb[shared[s].second] = 1;
  out.a = a.statistic(ca);
  out.b = b.statistic(cb);
  if (!out.a || !out.b) return out;
  out.diff = *out.b - *out.a;

  bool binary = !a.proportions.empty() && !b.proportions.empty();
  for (size_t s = 0; binary && s < shared.size(); ++s) {
    const Cluster& x = a.proportions[shared[s].first];
    const Cluster& y = b.proportions[shared[s].second];
    binary = x.n == 1 && y.n == 1;
    out.a_only_successes += x.k > y.k;
    out.b_only_successes += y.k > x.k;
  }
  if (!binary) out.a_only_successes = out.b_only_successes = 0;

  if (binary) {
    // Paired binary outcomes: Tango's score interval and tests, exact McNemar at zero. The
    // bootstrap is unreliable here when few items are discordant.
    out.test = "mcnemar-exact";
    out.p_value = McNemarExactTwoSided(out.a_only_successes, out.b_only_successes);
    Interval ci = TangoInterval(out.a_only_successes, out.b_only_successes, out.shared);
    out.ci = Interval{100 * ci.low, 100 * ci.high};
    return out;
  }
  if (options.resamples > 0) {
    auto groups = Groups(Indexes(shared.size()), strata);
    Rng rng(SplitMix64(options.seed));
    out.draws.reserve(options.resamples);
    for (int r = 0; r < options.resamples; ++r) {
      Draw(groups, rng, draw);
      if (auto d = evaluate(draw)) out.draws.push_back(*d);
    }
    if (out.draws.size() < static_cast<size_t>(options.resamples) / 2)
      out.draws.clear();  // mostly undefined
    std::sort(out.draws.begin(), out.draws.end());
    if (!out.draws.empty())
      out.ci = Interval{Percentile(out.draws, 0.025), Percentile(out.draws, 0.975)};
  }
  if (!out.draws.empty()) {
    out.test = "paired-bootstrap";
    out.p_value = std::min(1.0, 2 * std::min(PBelow(out, 0), PAbove(out, 0)));
  }
  return out;
}

namespace {

// (1 + draws on the null side) / (1 + draws): the bootstrap p-value of a one-sided test.
double BootstrapP(const std::vector<double>& draws, const std::function<bool(double)>& null_side) {
  if (draws.empty()) return 1;
  size_t hits = static_cast<size_t>(std::count_if(draws.begin(), draws.end(), null_side));
  return static_cast<double>(1 + hits) / static_cast<double>(1 + draws.size());
}

// The continuity correction of the gate's score tests: without it, Tango's test rejects slightly
// more often than alpha at the margin with 150 items (7% instead of 5% in bench/gate_sim).
constexpr double kContinuity = 0.5;

// The standard normal distribution function.
double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

}  // namespace

double PBelow(const PairedComparison& c, double threshold) {
  if (c.test != "mcnemar-exact")
    return BootstrapP(c.draws, [threshold](double d) { return d >= threshold; });
  double exact = McNemarExactGreater(c.a_only_successes, c.b_only_successes);
  if (threshold == 0) return exact;
  double score = NormalCdf(
      TangoZ(c.a_only_successes, c.b_only_successes, c.shared, threshold / 100, kContinuity));
  // Below a negative threshold implies below zero: the exact test at zero must agree too.
  return threshold < 0 ? std::max(score, exact) : score;
}

double PAbove(const PairedComparison& c, double threshold) {
  if (c.test != "mcnemar-exact")
    return BootstrapP(c.draws, [threshold](double d) { return d <= threshold; });
  double exact = McNemarExactGreater(c.b_only_successes, c.a_only_successes);
  if (threshold == 0) return exact;
  double score = 1 - NormalCdf(TangoZ(c.a_only_successes, c.b_only_successes, c.shared,
                                      threshold / 100, kContinuity));
  return threshold > 0 ? std::max(score, exact) : score;
}

double TangoZ(int64_t b, int64_t c, int64_t n, double delta, double continuity) {
  double nn = static_cast<double>(n), bb = static_cast<double>(b), cc = static_cast<double>(c);
  // Restricted maximum likelihood estimate of P(only A succeeds) given the difference `delta`:
  // the root of 2n p^2 + ((2n - c + b) delta - c - b) p - b delta (1 - delta) = 0.
  double qa = 2 * nn, qb = (2 * nn - cc + bb) * delta - cc - bb, qc = -bb * delta * (1 - delta);
  double p = (-qb + std::sqrt(std::max(0.0, qb * qb - 4 * qa * qc))) / (2 * qa);
  double variance = nn * (2 * p + delta * (1 - delta));
  double numerator = cc - bb - nn * delta;
  numerator =
      numerator > 0 ? std::max(0.0, numerator - continuity) : std::min(0.0, numerator + continuity);
  if (variance <= 0) return numerator == 0 ? 0 : numerator > 0 ? HUGE_VAL : -HUGE_VAL;
  return numerator / std::sqrt(variance);
}

Interval TangoInterval(int64_t b, int64_t c, int64_t n, double z) {
  // Z(delta) decreases in delta: bisect for Z = z (lower bound) and Z = -z (upper bound).
  auto solve = [&](double target) {
    double lo = -1, hi = 1;
    for (int i = 0; i < 100; ++i) {
      double mid = (lo + hi) / 2;
      (TangoZ(b, c, n, mid) > target ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
  };
  return {solve(z), solve(-z)};
}

double McNemarExactGreater(int64_t b, int64_t c) {
  int64_t n = b + c;
  if (n == 0) return 1;
  // P(X >= b) = sum_{i=b}^{n} C(n, i) / 2^n, summed in log space for large n.
  double p = 0;
  for (int64_t i = b; i <= n; ++i)
    p += std::exp(LogChoose(n, i) - static_cast<double>(n) * std::log(2.0));
  return std::min(1.0, p);
}

double McNemarExactTwoSided(int64_t b, int64_t c) {
  if (b + c == 0) return 1;
  return std::min(1.0, 2 * McNemarExactGreater(std::max(b, c), std::min(b, c)));
}

std::vector<double> HolmAdjust(const std::vector<double>& p) {
  std::vector<size_t> order = Indexes(p.size());
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
  std::vector<double> out(p.size());
  double running = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    running = std::max(running, std::min(1.0, static_cast<double>(p.size() - r) * p[order[r]]));
    out[order[r]] = running;
  }
  return out;
}

namespace {

// The units with at least two ratings, as plain values.
std::vector<std::vector<double>> Pairable(
    const std::vector<std::vector<std::optional<double>>>& units,
    std::vector<size_t>* kept = nullptr) {
  std::vector<std::vector<double>> out;
  for (size_t u = 0; u < units.size(); ++u) {
    std::vector<double> values;
    for (const auto& v : units[u]) {
      if (v) values.push_back(*v);
    }
    if (values.size() < 2) continue;
    out.push_back(std::move(values));
    if (kept) kept->push_back(u);
  }
  return out;
}

// Krippendorff's alpha with unit u counted weights[u] times (a bootstrap resample). The expected
// disagreement over all ordered pairs of values uses sums instead of the pairs themselves:
// sum (x_i - x_j)^2 = 2 N sum x^2 - 2 (sum x)^2, and for labels N^2 - sum_c n_c^2, so the cost is
// linear in the ratings.
std::optional<double> WeightedAlpha(const std::vector<std::vector<double>>& pairable,
                                    const std::vector<int>& weights, bool interval) {
  double n = 0, observed = 0, sum = 0, sum_sq = 0;
  std::map<double, double> label_counts;
  for (size_t u = 0; u < pairable.size(); ++u) {
    if (weights[u] == 0) continue;
    const auto& values = pairable[u];
    double w = weights[u], within = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      for (size_t j = 0; j < values.size(); ++j) {
        if (i == j) continue;
        within += interval ? (values[i] - values[j]) * (values[i] - values[j])
                           : (values[i] == values[j] ? 0.0 : 1.0);
      }
      sum += w * values[i];
      sum_sq += w * values[i] * values[i];
      label_counts[values[i]] += w;
    }
    observed += w * within / static_cast<double>(values.size() - 1);
    n += w * static_cast<double>(values.size());
  }
  if (n < 2) return std::nullopt;
  double pairs = 0;
  if (interval) {
    pairs = 2 * n * sum_sq - 2 * sum * sum;
  } else {
    pairs = n * n;
    for (const auto& [_, c] : label_counts) pairs -= c * c;
  }
  double expected = pairs / (n * (n - 1));
  if (expected <= 1e-12) return std::nullopt;
  return 1 - (observed / n) / expected;
}

}  // namespace

std::optional<double> KrippendorffAlpha(
    const std::vector<std::vector<std::optional<double>>>& units, bool interval) {
  std::vector<std::vector<double>> pairable = Pairable(units);
  return WeightedAlpha(pairable, std::vector<int>(pairable.size(), 1), interval);
}

Metric AlphaMetric(std::string name, const std::vector<std::vector<std::optional<double>>>& units,
                   const std::vector<std::string>& keys, bool interval,
                   const MetricOptions& options) {
  std::vector<size_t> kept;
  std::vector<std::vector<double>> pairable = Pairable(units, &kept);
  std::vector<std::string> used;
  for (size_t u : kept) used.push_back(keys[u]);
  Metric m = BootstrapMetric(
      std::move(name), "", std::move(used),
      [pairable, interval](const std::vector<int>& counts) {
        return WeightedAlpha(pairable, counts, interval);
      },
      options);
  m.details["scale"] = interval ? "interval" : "nominal";
  return m;
}

}  // namespace plumb
