// Paired comparison of two runs of a suite (plumb compare) and the release gate built on it
// (plumb gate): per metric the difference on the items both runs answered, its interval and
// p-value, and a verdict against a non-inferiority margin with Holm's correction.
#ifndef PLUMB_COMPARE_H_
#define PLUMB_COMPARE_H_

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/stats.h"
#include "plumb/store.h"
#include "plumb/suite.h"

namespace plumb {

// Resamples for comparisons and gates: more than for a single run's intervals, because
// p-values near alpha / (number of metrics) need the resolution.
inline constexpr int kComparisonResamples = 5000;

// A run's metrics recomputed from its stored samples and items, with their models.
struct RunMetrics {
  RunRecord run;
  std::vector<Metric> metrics;
  std::vector<std::string> notes;  // e.g. the suite's scoring changed since the run
};

// Recomputes run `run_id`'s metrics with the kind of `suite` (the items come from the store,
// as the run was planned). Notes when a recomputed value differs from the stored one.
Result<RunMetrics> RecomputeRunMetrics(const Store& store, const Suite& suite, int64_t run_id,
                                       const MetricOptions& options);

// A cluster whose rate changed between the runs (k of n in each).
struct Flip {
  std::string key;
  Cluster a;
  Cluster b;
};

struct MetricComparison {
  std::string name;
  std::string category;
  Metric a;  // each run's metric as a whole, with its own interval
  Metric b;
  PairedComparison paired;
  std::vector<Flip> flips;  // proportion metrics only
  // Which way is better when the metric itself says (say-do metrics); else the policy decides.
  std::optional<bool> higher_is_better;
};

// Metric `a` (baseline) against `b` (candidate), paired on their clusters: both must have a
// model (computed in this process).
MetricComparison CompareMetrics(const Metric& a, const Metric& b, const MetricOptions& options);

struct RunComparison {
  RunRecord a;  // baseline
  RunRecord b;  // candidate
  std::optional<bool> higher_is_better_primary;
  std::vector<MetricComparison> metrics;  // every metric both runs report with a model
  std::vector<std::string> notes;
};

// Compares runs `a` and `b` of one suite. kInvalidArgument when they are of different suites,
// or of different suite content (hash) unless `allow_suite_change`, in which case only the
// items both answered are compared.
Result<RunComparison> CompareRuns(const Store& store, const Suite& suite, int64_t a, int64_t b,
                                  bool allow_suite_change, const MetricOptions& options);

// "text" (terminal), "md" or "json".
Result<std::string> FormatComparison(const RunComparison& c, const std::string& format);

// ---------------------------------------------------------------------------------------------
// Gate

struct GateMetricPolicy {
  std::string name = "primary";          // a metric name, or "primary": the suite's headline metric
  std::string category;                  // "" = the whole suite
  std::string suite;                     // "" = every suite gated; else only this suite
  std::optional<bool> higher_is_better;  // required unless the metric is the primary one
  double margin = 2;  // points the metric may get worse before it is a regression
  std::string where;  // "gate.yaml:7", for messages
  // Say-do metrics (say_do_agreement, ...): the multiple-choice suite whose candidate and
  // baseline runs are paired with `suite`'s (an agentic suite) by plumb say-do.
  std::string stated;
};

struct GatePolicy {
  double alpha = 0.05;
  bool holm = true;  // Holm's correction across every check of the gate
  // Exit 4 when a check cannot be decided. Off by default: the gate then fails only on a
  // significant regression, so it does not fire on noise (bench/gate_sim measures it).
  bool inconclusive_fails = false;
  std::vector<GateMetricPolicy> metrics = {GateMetricPolicy{}};
  std::string source = "default policy";
};

// Reads a gate policy file strictly (file:line errors; docs/ci.md shows the format).
Result<GatePolicy> LoadGatePolicy(const std::filesystem::path& path);

struct GateCheck {
  std::string suite_id;
  int64_t baseline_run = 0;
  int64_t candidate_run = 0;
  std::string metric;
  std::string category;
  bool higher_is_better = true;
  double margin = 0;
  MetricComparison comparison;
  // What decided: "mcnemar-exact" (binary, margin 0), "tango-score" (binary, with the exact test
  // at zero as a floor) or "paired-bootstrap".
  std::string test;
  double p_regression = 1;      // H0: no worse than the margin; small = a real regression
  double p_noninferiority = 1;  // H0: worse than the margin; small = shown non-inferior
  double p_regression_adjusted = 1;
  double p_noninferiority_adjusted = 1;
  std::string verdict;  // pass | regression | inconclusive
  std::string reason;
};

struct GateResult {
  GatePolicy policy;
  std::vector<GateCheck> checks;
  std::vector<std::string> notes;
  std::string verdict;  // pass | regression | inconclusive
  int exit_code = 0;    // 0 pass, 1 regression, 4 inconclusive under a failing policy
};

// For each say-do metric of `policy`: computes plumb say-do for the baseline runs and for the
// candidate runs of its `stated` and `suite` suites (both among `comparisons`) and adds the
// paired say-do metrics to the comparison of `suite`. kInvalidArgument when a run is missing.
Status AddSayDoComparisons(const Store& store, const GatePolicy& policy,
                           std::vector<RunComparison>& comparisons, const MetricOptions& options);

// Applies `policy` to comparisons (baseline = a, candidate = b). kInvalidArgument when the
// policy names a metric a suite does not report, or omits a non-primary metric's direction.
Result<GateResult> EvaluateGate(const std::vector<RunComparison>& comparisons,
                                const GatePolicy& policy);

// "md" (also the GitHub step summary), "json", or "junit" (JUnit XML, one test case per check).
Result<std::string> FormatGate(const GateResult& result, const std::string& format);

}  // namespace plumb

#endif  // PLUMB_COMPARE_H_
