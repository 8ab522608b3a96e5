// Confidence intervals for metrics: Wilson for proportions, cluster bootstrap when an item
// contributes several samples (epochs), so repeated samples of one item are not counted as
// independent evidence.
#ifndef PLUMB_STATS_H_
#define PLUMB_STATS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plumb/types.h"

namespace plumb {

inline constexpr double kZ95 = 1.959963984540054;
inline constexpr int kDefaultBootstrapResamples = 2000;

struct Interval {
  double low = 0;
  double high = 0;
};

// Wilson score interval for k successes in n trials (n > 0), as fractions in [0, 1].
Interval WilsonInterval(int64_t k, int64_t n, double z = kZ95);

// Successes and trials of one item (its samples over epochs).
struct Cluster {
  int64_t k = 0;
  int64_t n = 0;
};

// A proportion metric on the 0-100 scale: value = 100 * sum(k) / sum(n). Its interval is
// Wilson when every cluster has one trial, otherwise a percentile bootstrap over clusters
// (seeded, `resamples` draws). Clusters with n == 0 are ignored. An empty input gives a
// metric without value.
Metric ProportionMetric(std::string name, std::string category,
                        const std::vector<Cluster>& clusters, uint64_t seed = 1,
                        int resamples = kDefaultBootstrapResamples);

// A statistic of a resample: `counts[i]` is how often cluster i was drawn (0, 1, 2, ...).
// Returns nullopt when undefined for that resample (e.g. an empty group), which drops it.
using ClusterStatistic = std::function<std::optional<double>(const std::vector<int>& counts)>;

// A metric whose value is `statistic` on the full sample (every count 1) and whose interval is
// the 2.5/97.5 percentiles of the statistic over `resamples` seeded bootstrap draws of the
// `n_clusters` clusters. Used for composite metrics (differences, harmonic means) where no
// closed form fits; clusters are items, so repeated samples and paired conditions of an item
// stay together.
// `strata` (empty, or one entry per cluster) keeps each stratum's size fixed in every resample,
// e.g. harm and control scenarios.
Metric BootstrapMetric(std::string name, std::string category, size_t n_clusters,
                       const ClusterStatistic& statistic, uint64_t seed = 1,
                       int resamples = kDefaultBootstrapResamples,
                       const std::vector<int>& strata = {});

// Krippendorff's alpha for `units` (one row per rated unit, one entry per rater, nullopt when a
// rater did not rate it). `interval` uses the squared difference, otherwise the nominal
// (equal / not equal) distance. Units with fewer than two ratings are ignored. Empty when fewer
// than two pairable ratings exist or the ratings do not vary at all.
std::optional<double> KrippendorffAlpha(const std::vector<std::vector<std::optional<double>>>& units,
                                        bool interval);

}  // namespace plumb

#endif  // PLUMB_STATS_H_
