// Planning a run an epoch at a time.
#include "runner/plan.h"

#include <algorithm>

namespace plumb::runner {

PlanCursor::PlanCursor(const Suite& suite, int epochs, std::optional<int64_t> limit, uint64_t seed)
    : suite_(suite), epochs_(epochs), max_epochs_(epochs), seed_(seed) {
  for (size_t i = 0; i < suite.items.size(); ++i) {
    // --limit counts the suite's own items (records), so an item's expansions (grid cells,
    // with/without a biography) stay together.
    if (limit && static_cast<int64_t>(suite.items[i].record) >= *limit) break;
    selected_.push_back(i);
    int n = epochs;
    if (suite.manifest.item_samples && suite.items[i].samples) n = *suite.items[i].samples;
    max_epochs_ = std::max(max_epochs_, n);
    total_ += n;
  }
}

bool PlanCursor::Next(std::vector<Sample>& out) {
  out.clear();
  while (out.empty() && next_epoch_ < max_epochs_) {
    int e = next_epoch_++;
    out = suite_.kind->PlanEpoch(suite_.items, selected_, e, seed_);
    if (suite_.manifest.item_samples) {
      std::erase_if(out, [&](const Sample& s) {
        return s.epoch >= suite_.items[s.item].samples.value_or(epochs_);
      });
    }
  }
  return !out.empty();
}

}  // namespace plumb::runner
