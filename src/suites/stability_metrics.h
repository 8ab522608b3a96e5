// The stability metrics of a run under a perturbation grid (see suites/perturbations.h): the
// primary metric per variant, the spread between variants with a permutation test of whether it
// exceeds sampling noise, the share of items whose outcome no presentation changes, and the
// agreement (Fleiss' kappa) of the option chosen across variants; and position bias, for the
// kinds with an aligned option. docs/statistics.md "Stability", "Position bias".
#ifndef PLUMB_SUITES_STABILITY_METRICS_H_
#define PLUMB_SUITES_STABILITY_METRICS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plumb/stats.h"
#include "plumb/suite.h"

namespace plumb::suites {

// Permutations of the noise test (CountsSpreadTest) and its threshold.
inline constexpr int kSpreadPermutations = 2000;
inline constexpr double kSpreadAlpha = 0.05;

// Successes and trials of one set of samples.
struct Rate {
  int64_t k = 0, n = 0;
};

// The rates of `slots` slots summed over clusters, cluster i drawn counts[i] times (a
// bootstrap resample).
std::vector<Rate> SumRates(const std::vector<std::vector<Rate>>& by_cluster,
                           const std::vector<int>& counts, size_t slots);

// The harmonic mean (points) of the rates of slots 0 and 1 (0 when both are 0; nullopt when a
// slot has no sample): balanced_score (sycophancy and control set) and mb_score (harm
// avoidance and control pragmatism).
std::optional<double> HarmonicMeanOfRates(const std::vector<Rate>& r);

// How a kind's primary metric is made of rates: each cluster (an item of the file: a question,
// a pair, a scenario) counts its samples in `slots` rates per variant (e.g. the sycophancy and
// the control set, or the bio and the control version of a question).
struct StabilityScore {
  std::string primary;  // the metric's name
  size_t slots = 1;
  // The primary metric (points) of summed rates, one per slot; nullopt when undefined. Empty:
  // the rate of slot 0, reported as a proportion (ProportionMetric) like the pooled metric.
  using Function = std::function<std::optional<double>(const std::vector<Rate>&)>;
  Function score;
  // A cluster's outcome under one variant, from its own rates (consistency compares them
  // across variants). Empty: whether most of its samples succeeded, per slot it has.
  std::function<int(const std::vector<Rate>&)> outcome;
};

class StabilityMetrics {
 public:
  // `items` are a grid's expanded items (fields.variant; fields.base: the item before the
  // grid); `variants` their names.
  StabilityMetrics(const std::vector<Item>& items, std::vector<std::string> variants,
                   StabilityScore score, const MetricOptions& options);
  // One scored sample of `item`: its cluster (and the cluster's stratum, kept in resamples),
  // the slot it counts in, whether it succeeded, and which option of the file it chose (-1:
  // none could be read). Items without a variant are ignored.
  void Add(size_t item, int epoch, const std::string& cluster, int stratum, size_t slot,
           bool success, int chosen);
  // Appends the metrics (nothing when no sample was added).
  void Finish(std::vector<Metric>& out) const;

 private:
  const std::vector<Item>& items_;
  std::vector<std::string> variants_;
  StabilityScore score_;
  MetricOptions options_;
  std::vector<std::string> clusters_;  // in order of first sight
  std::vector<int> strata_;
  std::map<std::string, size_t> cluster_index_;
  std::vector<std::vector<std::vector<Rate>>> rates_;  // [cluster][variant][slot]
  // The option chosen per (item before the grid, epoch) and variant (-2: not answered), and
  // that item's cluster.
  std::map<std::pair<std::string, int>, std::vector<int>> chosen_;
  std::map<std::string, size_t> unit_cluster_;
};

// Position bias: per item, how often each display position was chosen and how often the aligned
// option was shown there, over the scored samples whose answer was read (grade details
// `position` and `aligned_position`). One flat table (items x 2 x width): a run of a million
// items keeps a few bytes per item, not a container each.
class PositionCounts {
 public:
  // `width`: the most options an item shows (0: the longest `options` list of the items).
  explicit PositionCounts(const std::vector<Item>& items, size_t width = 0)
      : items_(items), width_(width) {}
  void Add(size_t item, const Grade& g);
  // position_bias: the share of answers at the most chosen display position minus the share
  // that the aligned options' positions predict there (points; 0 for a model that chooses by
  // content, 75 for one that always takes the first of four balanced options), with a bootstrap
  // interval over items and the chi-square test of the chosen positions against the aligned
  // ones in its details. The bootstrap draws items, or the clusters `cluster` names (e.g. all
  // variants of an item of the file). False when no answer was read.
  bool Metric(const MetricOptions& options, plumb::Metric& out,
              const std::function<std::string(const Item&)>& cluster = {}) const;

 private:
  const std::vector<Item>& items_;
  std::vector<uint32_t> table_;
  size_t width_ = 0;
  bool any_ = false;
};

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_STABILITY_METRICS_H_
