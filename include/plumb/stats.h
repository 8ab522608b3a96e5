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

// How metrics are computed: the seed and number of bootstrap resamples (0: no bootstrap
// intervals, for metrics computed many times inside another bootstrap).
struct MetricOptions {
  uint64_t seed = 1;
  int resamples = kDefaultBootstrapResamples;
};

struct Interval {
  double low = 0;
  double high = 0;
};

// Wilson score interval for k successes in n trials (n > 0), as fractions in [0, 1].
Interval WilsonInterval(int64_t k, int64_t n, double z = kZ95);

// Successes and trials of one cluster (an item and its samples over epochs, or a group of
// items that belong together, such as the two versions of a question). `key` names the
// cluster across runs (usually the item id), so that two runs can be paired.
struct Cluster {
  int64_t k = 0;
  int64_t n = 0;
  std::string key;
};

// A statistic of a resample: `counts[i]` is how often cluster i was drawn (0, 1, 2, ...).
// Returns nullopt when undefined for that resample (e.g. an empty group), which drops it.
using ClusterStatistic = std::function<std::optional<double>(const std::vector<int>& counts)>;

// What a metric was computed from, kept in memory (never stored) so that two runs of a suite
// can be compared cluster by cluster (ComparePaired). The statistic owns the data it reads.
struct MetricModel {
  std::vector<std::string> keys;     // one per cluster
  std::vector<int> strata;           // empty, or one per cluster: sizes kept in every resample
  ClusterStatistic statistic;        // the metric's value given how often each cluster counts
  std::vector<Cluster> proportions;  // proportion metrics: k of n per cluster (parallel to keys)
};

// A proportion metric on the 0-100 scale: value = 100 * sum(k) / sum(n). Its interval is
// Wilson when every cluster has one trial, otherwise a percentile bootstrap over clusters.
// Clusters with n == 0 are ignored. An empty input gives a metric without value.
Metric ProportionMetric(std::string name, std::string category, std::vector<Cluster> clusters,
                        const MetricOptions& options);

// A metric whose value is `statistic` on the full sample (every count 1) and whose interval is
// the 2.5/97.5 percentiles of the statistic over seeded bootstrap draws of the clusters named
// by `keys`. Used for composite metrics (differences, harmonic means) where no closed form
// fits. `statistic` must own (capture by value) what it reads: the metric keeps it.
// `strata` (empty, or one entry per cluster) keeps each stratum's size fixed in every resample,
// e.g. harm and control scenarios.
Metric BootstrapMetric(std::string name, std::string category, std::vector<std::string> keys,
                       ClusterStatistic statistic, const MetricOptions& options,
                       std::vector<int> strata = {});

// Reducers of repeated samples (epochs) of a proportion metric: per cluster with c successes
// in n samples, majority (1 when c > n/2, 0.5 on a tie), pass@k = 1 - C(n-c,k)/C(n,k) (at
// least one of k samples succeeds) and pass^k = C(c,k)/C(n,k) (all k succeed), the unbiased
// estimators, averaged over clusters with n >= k, for the k of ReducerKs. Named
// "<metric>@majority", "<metric>@pass@<k>", "<metric>@pass^<k>". Empty when no cluster has
// more than one sample.
std::vector<Metric> ReducerMetrics(const Metric& proportion, const MetricOptions& options);
// The k reported for a largest n: 1 to 10, then 20, 50, 100, 200, 500, ... below n, and n itself
// (a run of 1000 epochs gets 16 values of k, not 1000).
std::vector<int64_t> ReducerKs(int64_t max_n);
double PassAtK(int64_t n, int64_t c, int k);
double PassHatK(int64_t n, int64_t c, int k);

// ---------------------------------------------------------------------------------------------
// Paired comparison of two runs' metric

struct PairedComparison {
  int64_t shared = 0;  // clusters in both runs
  int64_t only_a = 0;  // clusters of A without a counterpart in B, and the reverse
  int64_t only_b = 0;
  std::optional<double> a;  // each run's metric on the shared clusters
  std::optional<double> b;
  std::optional<double> diff;  // b - a
  // 95% interval of the difference: Tango's score interval for binary metrics, else the paired
  // bootstrap's percentiles.
  std::optional<Interval> ci;
  // "mcnemar-exact" when every shared cluster has one binary trial in both runs (intervals and
  // margin tests then use Tango's score method), else "paired-bootstrap"; "none" when there is
  // nothing to compare.
  std::string test = "none";
  std::optional<double> p_value;  // two-sided, H0: no difference
  // Binary metrics: clusters where only A succeeded, and where only B did.
  int64_t a_only_successes = 0;
  int64_t b_only_successes = 0;
  std::vector<double> draws;  // the sorted bootstrap differences (not for binary metrics)
};

// Compares metric `a` (baseline) and `b` (candidate) on the clusters they share (matched by
// key): the same clusters are drawn for both runs in every resample, so what the two runs have
// in common cancels out.
PairedComparison ComparePaired(const MetricModel& a, const MetricModel& b,
                               const MetricOptions& options);

// One-sided p-values for the difference (b - a, points) against `threshold`: PBelow tests
// H0: diff >= threshold (small when the difference is surely below it), PAbove the reverse.
// Binary metrics: exact McNemar at threshold 0, else Tango's score test (continuity-corrected by
// 1/2), and beyond a threshold
// on the far side of zero also at least the exact p-value at zero (a difference below -2 is
// below 0 too). Other metrics: from the bootstrap distribution, (1 + #draws on the null side) /
// (1 + #draws).
double PBelow(const PairedComparison& c, double threshold);
double PAbove(const PairedComparison& c, double threshold);

// Exact McNemar test: P-values from Binomial(b + c, 1/2). Two-sided is min(1, 2 * one tail).
double McNemarExactTwoSided(int64_t b, int64_t c);
// P(X >= b) for X ~ Binomial(b + c, 1/2): the one-sided p-value that b exceeds c by chance.
double McNemarExactGreater(int64_t b, int64_t c);

// Tango's score statistic for a paired difference of proportions (Tango 1998): b pairs where
// only A succeeded, c where only B did, n pairs, tested against the difference
// delta = P(B) - P(A) (a fraction). Large when B is better than delta allows. `continuity`
// moves the observed c - b that much toward the null (the gate's tests use 1/2).
double TangoZ(int64_t b, int64_t c, int64_t n, double delta, double continuity = 0);
// Tango's score interval for P(B) - P(A) (fractions), the inversion of TangoZ.
Interval TangoInterval(int64_t b, int64_t c, int64_t n, double z = kZ95);

// Holm's step-down adjustment of p-values (same order as given).
std::vector<double> HolmAdjust(const std::vector<double>& p);

// Krippendorff's alpha for `units` (one row per rated unit, one entry per rater, nullopt when a
// rater did not rate it). `interval` uses the squared difference, otherwise the nominal
// (equal / not equal) distance. Units with fewer than two ratings are ignored. Empty when fewer
// than two pairable ratings exist or the ratings do not vary at all.
std::optional<double> KrippendorffAlpha(
    const std::vector<std::vector<std::optional<double>>>& units, bool interval);

// Krippendorff's alpha as a metric with a bootstrap interval over units (`keys`: one per unit,
// e.g. the sample); n counts the units with at least two ratings.
Metric AlphaMetric(std::string name, const std::vector<std::vector<std::optional<double>>>& units,
                   const std::vector<std::string>& keys, bool interval,
                   const MetricOptions& options);

}  // namespace plumb

#endif  // PLUMB_STATS_H_
