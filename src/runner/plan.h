// A new run's samples, planned one epoch at a time: the first --limit records of the suite,
// each for the run's epochs or (item_samples: true) its own count. Shared by the runner, the
// cost estimate and the built-in baselines, so all three see the same samples.
#ifndef PLUMB_RUNNER_PLAN_H_
#define PLUMB_RUNNER_PLAN_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "plumb/suite.h"

namespace plumb::runner {

class PlanCursor {
 public:
  PlanCursor(const Suite& suite, int epochs, std::optional<int64_t> limit, uint64_t seed);

  // The items the run uses (indexes into suite.items), in suite order.
  const std::vector<size_t>& selected() const { return selected_; }
  // How many samples the whole plan has.
  int64_t total() const { return total_; }
  // The next epoch's samples (never empty), or false when every epoch is planned.
  bool Next(std::vector<Sample>& out);

 private:
  const Suite& suite_;
  int epochs_;
  int max_epochs_;
  uint64_t seed_;
  int next_epoch_ = 0;
  std::vector<size_t> selected_;
  int64_t total_ = 0;
};

}  // namespace plumb::runner

#endif  // PLUMB_RUNNER_PLAN_H_
