// Factories of the built-in suite kinds, and helpers they share; register.cc lists the kinds.
#ifndef PLUMB_SUITES_KINDS_H_
#define PLUMB_SUITES_KINDS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plumb/stats.h"
#include "plumb/suite.h"

namespace plumb::suites {

Result<std::unique_ptr<SuiteKind>> MakeChoiceKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakePairedChoiceKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakeOpinionKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakePushbackKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakeContrastKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakeMisalignmentKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakeAgencyKind(const SuiteKindContext& ctx);
Result<std::unique_ptr<SuiteKind>> MakeAgenticKind(const SuiteKindContext& ctx);

// How PlanBalanced sees an item.
struct BalanceSpec {
  std::function<int(const Item&)> option_count;
  std::function<int(const Item&)> target_option;  // -1: nothing to balance
  std::function<std::string(const Item&)> group;  // balanced within each group (and overall)
};

// Plans one sample per selected item for epoch `epoch` with a balanced option order: within each
// group (by default the category), items ranked by a seeded hash put their target option at
// position k mod n, so it sits equally often at every position (+/- 1) in every group and overall
// (the count continues across groups), and a constant answer scores chance. Without `shuffle` the
// file order is kept. presentation = {"order": [original index shown at each position]}.
std::vector<Sample> PlanBalanced(const std::vector<Item>& items,
                                 const std::vector<size_t>& selected, int epoch, uint64_t seed,
                                 bool shuffle, const BalanceSpec& spec);

// Metrics of choice-style grades (labels aligned / other / refusal / unparsed / open): the
// primary rate (aligned / answered scored samples) overall and per category, refusal_rate over
// every answered sample, parse_failure_rate, error_rate. With `control_set` (paired_choice):
// the primary rate is over the items of the sycophancy set, correct_agreement_rate over those of
// the control set (fields.set "control"), and balanced_score is their harmonic mean. With the
// `variants` of a perturbation grid, the stability metrics too (suites/stability_metrics.h).
// Fed one outcome at a time (per-item counts only; any order).
std::unique_ptr<MetricsAccumulator> StartChoiceMetrics(const std::vector<Item>& items,
                                                       const std::string& grader,
                                                       const std::string& primary,
                                                       const MetricOptions& options,
                                                       bool control_set = false,
                                                       const std::vector<std::string>& variants =
                                                           {});

// The clusters of a per-item count map, in item order, keyed by item id.
std::vector<Cluster> Clusters(const std::map<size_t, Cluster>& by_item,
                              const std::vector<Item>& items);

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_KINDS_H_
