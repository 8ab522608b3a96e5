// Samples to start: planned, then claimed (see sample_source.h).
#include "runner/sample_source.h"

#include <fmt/format.h>

namespace plumb::runner {
namespace {

// How long to wait before claiming again while other workers hold every pending sample.
constexpr std::chrono::milliseconds kRetryClaim{1000};

}  // namespace

SampleSource::SampleSource(const Suite& suite, int epochs, std::optional<int64_t> limit,
                           uint64_t seed, size_t first)
    : suite_(suite), plan_(std::in_place, suite, epochs, limit, seed) {
  for (size_t i = 0; i < suite.items.size(); ++i) index_[suite.items[i].id] = i;
  // The first epoch is planned at once: its first samples go out before the run is recorded.
  std::optional<std::vector<PlannedSample>> rows = NextEpoch(first);
  if (rows) held_.push_back(std::move(*rows));
}

std::optional<std::vector<PlannedSample>> SampleSource::NextEpoch(size_t first) {
  std::vector<Sample> epoch;
  if (!plan_ || !plan_->Next(epoch)) {
    plan_done_ = true;
    return std::nullopt;
  }
  std::vector<PlannedSample> rows;
  rows.reserve(epoch.size());
  for (size_t i = 0; i < epoch.size(); ++i) {
    const Sample& s = epoch[i];
    rows.push_back(PlannedSample{suite_.items[s.item].id, s.epoch, s.presentation, i < first});
    if (i < first) page_.push_back(Next{s, {}});
  }
  return rows;
}

SampleSource::SampleSource(const Suite& suite) : suite_(suite), plan_done_(true) {
  for (size_t i = 0; i < suite.items.size(); ++i) index_[suite.items[i].id] = i;
}

SampleSource::~SampleSource() {
  if (claim_.valid()) claim_.wait();  // it uses the store; its samples return with LeaveRun
}

void SampleSource::Recorded(Store& store, int64_t run_id) {
  for (auto& rows : held_) store.EnqueuePlanned(run_id, std::move(rows));
  held_.clear();
}

void SampleSource::PlanAll(Store& store, int64_t run_id) {
  Recorded(store, run_id);
  while (!plan_done_) PlanEpoch(store, run_id);
}

void SampleSource::PlanEpoch(Store& store, int64_t run_id) {
  std::optional<std::vector<PlannedSample>> rows = NextEpoch(0);
  if (rows) store.EnqueuePlanned(run_id, std::move(*rows));
}

void SampleSource::StartClaim(Store& store, int64_t run_id, size_t page) {
  claim_ = std::async(std::launch::async, [&store, run_id, page] {
    return store.ClaimSamples(run_id, static_cast<int64_t>(page));
  });
}

Status SampleSource::Received(SampleClaim claim, size_t page, Store& store, int64_t run_id) {
  for (SampleRecord& r : claim.samples) {
    auto it = index_.find(r.item_id);
    if (it == index_.end()) {
      return DataLoss(fmt::format("run {}: item '{}' is not in suite '{}' any more", run_id,
                                  r.item_id, suite_.manifest.id));
    }
    std::vector<ResponseRecord> stored;
    for (auto& rr : r.responses) {
      if (rr.ok) stored.push_back(std::move(rr));
    }
    page_.push_back(Next{Sample{it->second, r.epoch, std::move(r.presentation)}, std::move(stored)});
  }
  if (claim.samples.size() >= page) return Status();
  // Short: what is stored is claimed. A new run plans its next epoch; otherwise, while other
  // workers hold samples (they may stop or die and give them back), ask again later.
  if (!plan_done_) {
    PlanEpoch(store, run_id);
    if (!plan_done_) return Status();
  }
  dry_ = true;
  if (claim.held_elsewhere > 0) {
    retry_at_ = std::chrono::steady_clock::now() + kRetryClaim;
  } else if (claim.samples.empty()) {
    done_ = true;
  }
  return Status();
}

Result<SampleSource::State> SampleSource::Take(Store& store, int64_t run_id, size_t page,
                                               Next& out) {
  while (true) {
    // With nothing left to start, the claim under way is waited for.
    if (claim_.valid() && (page_.empty() || claim_.wait_for(std::chrono::seconds(0)) ==
                                                std::future_status::ready)) {
      Result<SampleClaim> claim = claim_.get();
      if (!claim) return claim.error();
      PLUMB_RETURN_IF_ERROR(Received(std::move(*claim), page, store, run_id));
    }
    if (!held_.empty() && run_id != 0) Recorded(store, run_id);
    // Claims are made ahead, when the page is half used, unless the last one came back short.
    const bool low = page_.size() < page / 2;
    if (run_id != 0 && !claim_.valid() && low && (!dry_ || page_.empty()) && !done_ &&
        std::chrono::steady_clock::now() >= retry_at_) {
      dry_ = false;
      StartClaim(store, run_id, page);
    }
    if (!page_.empty()) {
      out = std::move(page_.front());
      page_.pop_front();
      return State::kReady;
    }
    if (claim_.valid()) continue;
    return done_ ? State::kDone : State::kWait;
  }
}

}  // namespace plumb::runner
