// The samples this process starts: a new run's first window straight from its plan (leased to
// this process as they are written), then pending samples claimed from the store a page at a
// time, so that any number of processes can work on one run (plumb work). Claims are made on a
// helper thread ahead of need, so the loop rarely waits for the database.
#ifndef PLUMB_RUNNER_SAMPLE_SOURCE_H_
#define PLUMB_RUNNER_SAMPLE_SOURCE_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <optional>
#include <unordered_map>
#include <vector>

#include "plumb/store.h"
#include "plumb/suite.h"
#include "runner/plan.h"

namespace plumb::runner {

class SampleSource {
 public:
  // A new run: planned epoch by epoch (each epoch's rows written before its samples are
  // claimed); the first `first` samples are started without a claim.
  SampleSource(const Suite& suite, int epochs, std::optional<int64_t> limit, uint64_t seed,
               size_t first);
  // An existing run (resume, work): its whole plan is stored; samples are claimed.
  explicit SampleSource(const Suite& suite);
  ~SampleSource();

  int64_t planned() const { return plan_ ? plan_->total() : 0; }
  const std::vector<size_t>* selected() const { return plan_ ? &plan_->selected() : nullptr; }
  // Writes the plan held while the run did not exist yet.
  void Recorded(Store& store, int64_t run_id);
  // Writes the rest of a new run's plan (plumb run --workers-only).
  void PlanAll(Store& store, int64_t run_id);

  struct Next {
    Sample sample;
    std::vector<ResponseRecord> stored;  // the turns of a conversation under way
  };
  enum class State {
    kReady,  // `out` is the next sample
    kWait,   // none yet: a claim is under way, or other workers hold the rest (ask again)
    kDone,   // nothing is left to claim and no other worker holds anything
  };
  // `page`: samples claimed at a time. `run_id` 0: the run is not recorded yet.
  Result<State> Take(Store& store, int64_t run_id, size_t page, Next& out);
  // After kDone: look again (samples turned up, e.g. released by a worker that stopped).
  void Again() { done_ = false; }

 private:
  Status Received(SampleClaim claim, size_t page, Store& store, int64_t run_id);
  void PlanEpoch(Store& store, int64_t run_id);
  // The next epoch's rows (nullopt when every epoch is planned); its first `first` samples are
  // leased as written and start from the page at once.
  std::optional<std::vector<PlannedSample>> NextEpoch(size_t first);
  void StartClaim(Store& store, int64_t run_id, size_t page);

  const Suite& suite_;
  std::optional<PlanCursor> plan_;
  bool plan_done_ = false;  // every epoch planned (always, for a stored run)
  std::unordered_map<std::string, size_t> index_;
  std::deque<Next> page_;
  std::vector<std::vector<PlannedSample>> held_;
  std::future<Result<SampleClaim>> claim_;
  bool dry_ = false;   // the last claim came back short: claim again only once the page is used
  bool done_ = false;  // kDone until Again()
  std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace plumb::runner

#endif  // PLUMB_RUNNER_SAMPLE_SOURCE_H_
