// A run's metrics built one sample at a time (the kind's accumulator, epoch reducers, judge
// metrics). Internal to the runner: ComputeMetrics, ComputeRunMetrics and the baselines use it.
#ifndef PLUMB_RUNNER_METRICS_H_
#define PLUMB_RUNNER_METRICS_H_

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "plumb/store.h"
#include "plumb/suite.h"

namespace plumb {

class JudgeMetrics;

class RunMetricsBuilder {
 public:
  RunMetricsBuilder(const Suite& suite, const MetricOptions& options);
  ~RunMetricsBuilder();
  RunMetricsBuilder(const RunMetricsBuilder&) = delete;
  RunMetricsBuilder& operator=(const RunMetricsBuilder&) = delete;

  // A stored sample: pending ones are counted and skipped; kDataLoss for an item the suite no
  // longer has.
  Status Add(SampleRecord&& sample);
  // A finished sample's outcome directly (no judge grades).
  void AddOutcome(SampleOutcome outcome);
  // Called once.
  std::vector<Metric> Finish();
  // Leaves out the epoch reducers (the answer-only baselines: their row is the overall rates).
  void SkipReducers() { reducers_ = false; }
  const SampleCounts& counts() const { return counts_; }

 private:
  const Suite& suite_;
  MetricOptions options_;
  std::unique_ptr<MetricsAccumulator> kind_;
  std::unique_ptr<JudgeMetrics> judges_;
  std::unordered_map<std::string, size_t> index_;
  SampleCounts counts_;
  int epochs_ = 0;
  bool reducers_ = true;
};

}  // namespace plumb

#endif  // PLUMB_RUNNER_METRICS_H_
