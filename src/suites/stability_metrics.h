// The stability metrics of a run under a perturbation grid (see suites/perturbations.h): the
// primary rate per variant, the spread between variants with a permutation test of whether it
// exceeds sampling noise, the share of items whose outcome no presentation changes, and the
// agreement (Fleiss' kappa) of the option chosen across variants. docs/statistics.md
// "Stability".
#ifndef PLUMB_SUITES_STABILITY_METRICS_H_
#define PLUMB_SUITES_STABILITY_METRICS_H_

#include <map>
#include <string>
#include <vector>

#include "plumb/stats.h"
#include "plumb/suite.h"

namespace plumb::suites {

// Permutations of the noise test (VariantSpreadTest) and its threshold.
inline constexpr int kSpreadPermutations = 2000;
inline constexpr double kSpreadAlpha = 0.05;

class StabilityMetrics {
 public:
  // `items` are a grid's expanded items (fields.variant, fields.base); `variants` their names.
  StabilityMetrics(const std::vector<Item>& items, std::vector<std::string> variants,
                   std::string primary, const MetricOptions& options);
  // One scored sample: whether it chose an aligned option, and which option of the file it
  // chose (-1: none could be read).
  void Add(size_t item, int epoch, bool aligned, int chosen);
  // Appends the metrics (nothing when no sample was added).
  void Finish(std::vector<Metric>& out) const;

 private:
  struct Rate {
    int64_t k = 0, n = 0;
  };
  const std::vector<Item>& items_;
  std::vector<std::string> variants_;
  std::string primary_;
  MetricOptions options_;
  std::vector<std::string> bases_;           // the file's items, in order of first sight
  std::map<std::string, size_t> base_index_;
  std::vector<std::vector<Rate>> rates_;     // [base][variant]
  // The option chosen per (base, epoch) and variant (-2: not answered).
  std::map<std::pair<size_t, int>, std::vector<int>> chosen_;
};

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_STABILITY_METRICS_H_
