// The evaluation loop. One thread (the caller's) plans, submits, grades and records; backends
// call back from their own threads into a queue. A bounded window of samples is in progress at
// a time, so memory stays flat however large the suite is.
#include "plumb/runner.h"

#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "plumb/hash.h"
#include "plumb/log.h"
#include "plumb/text.h"
#include "plumb/version.h"
#include "runner/progress.h"

namespace plumb {
namespace {

struct Event {
  size_t sample = 0;
  Result<Completion> result = Status(StatusCode::kInternal, "unset");
  CallReport report;
};

// The callback side of the loop: backends push, the loop pops.
class EventQueue {
 public:
  void Push(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  // Waits up to `timeout` for an event.
  std::optional<Event> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    Event e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

struct SampleState {
  std::vector<Exchange> history;
  std::vector<ResponseRecord> responses;
  Turn pending;  // the turn in flight
};

class Loop {
 public:
  Loop(const Suite& suite, Backend& backend, HttpScheduler* scheduler, Store& store,
       const RunOptions& options, const std::atomic<bool>& interrupted)
      : suite_(suite),
        backend_(backend),
        scheduler_(scheduler),
        store_(store),
        options_(options),
        interrupted_(interrupted),
        params_(suite.manifest.generation.MergedWith(options.params)),
        progress_(options.progress, stderr) {}

  Result<RunSummary> Run() {
    // --limit counts the suite's own items (records), so an item's expansions (grid cells,
    // with/without a biography) stay together.
    std::vector<size_t> selected;
    for (size_t i = 0; i < suite_.items.size(); ++i) {
      if (options_.limit && static_cast<int64_t>(suite_.items[i].record) >= *options_.limit) break;
      selected.push_back(i);
    }
    samples_ = suite_.kind->Plan(suite_.items, selected, options_.epochs, options_.seed);
    states_.resize(samples_.size());

    RunRecord run;
    run.started_at = NowIso8601();
    run.status = "running";
    run.plumb_version = PLUMB_VERSION;
    run.git_sha = PLUMB_GIT_SHA;
    run.suite_id = suite_.manifest.id;
    run.suite_version = suite_.manifest.version;
    run.suite_hash = suite_.manifest.content_hash;
    run.primary_metric = suite_.kind->PrimaryMetric();
    run.higher_is_better = suite_.kind->HigherIsBetter();
    run.model_spec = options_.model_spec;
    run.backend_id = backend_.Id();
    run.params = params_.ToJson();
    run.seed = options_.seed;
    run.concurrency = options_.concurrency;
    run.epochs = options_.epochs;
    run.limit = options_.limit;
    run.n_samples = static_cast<int64_t>(samples_.size());
    run.settings = options_.settings;
    std::vector<Item> items;
    for (size_t i : selected) items.push_back(suite_.items[i]);
    std::vector<std::pair<std::string, int>> keys;
    std::vector<Json> presentations;
    for (const auto& s : samples_) {
      keys.emplace_back(suite_.items[s.item].id, s.epoch);
      presentations.push_back(s.presentation);
    }
    // The first requests go out before the run is recorded, so the network wait overlaps the
    // inserts; their results are only read (and stored) once the run row exists.
    window_ = static_cast<size_t>(std::max(64, 4 * options_.concurrency));
    FillWindow();
    Result<int64_t> run_id = store_.CreateRun(run, items, keys, presentations);
    if (!run_id) {
      if (scheduler_) scheduler_->Cancel();
      while (outstanding_ > 0) {
        if (events_.Pop(std::chrono::milliseconds(100))) --outstanding_;
      }
      return run_id.error();
    }
    summary_.run_id = *run_id;
    summary_.samples = run.n_samples;

    Drive();

    PLUMB_RETURN_IF_ERROR(store_.Flush());
    PLUMB_ASSIGN_OR_RETURN(auto stored, store_.GetSamples(summary_.run_id, /*with_responses=*/false));
    PLUMB_ASSIGN_OR_RETURN(summary_.metrics, ComputeMetrics(suite_, stored));
    PLUMB_RETURN_IF_ERROR(store_.PutMetrics(summary_.run_id, summary_.metrics));
    if (!summary_.failure.ok()) {
      summary_.status = "failed";
    } else if (stopped_by_user_) {
      summary_.status = "interrupted";
    } else {
      summary_.status = "completed";
    }
    PLUMB_RETURN_IF_ERROR(store_.FinishRun(summary_.run_id, summary_.status,
                                           summary_.failure.ok() ? "" : summary_.failure.message()));
    return summary_;
  }

 private:
  void FillWindow() {
    while (next_ < samples_.size() && outstanding_ < window_) Start(next_++);
  }

  void Drive() {
    bool stopping = false;
    while (true) {
      if (!stopping) FillWindow();
      if (outstanding_ == 0 && (stopping || next_ == samples_.size())) break;
      std::optional<Event> e = events_.Pop(std::chrono::milliseconds(100));
      if (!stopping && interrupted_.load()) {
        stopping = true;
        stopped_by_user_ = true;
        if (scheduler_) scheduler_->Cancel();
      }
      if (e) {
        --outstanding_;
        Handle(std::move(*e), stopping);
        if (!stopping && !summary_.failure.ok()) {
          stopping = true;
          if (scheduler_) scheduler_->Cancel();
        }
      }
      progress_.Update(State());
    }
    progress_.Finish(State());
  }

  runner::ProgressState State() const {
    runner::ProgressState s;
    s.done = summary_.done;
    s.total = summary_.samples;
    s.errors = summary_.errors;
    if (scheduler_) s.retrying = scheduler_->Stats().waiting_retry;
    return s;
  }

  void Start(size_t i) {
    const Sample& sample = samples_[i];
    const Item& item = suite_.items[sample.item];
    Result<Turn> turn = suite_.kind->FirstTurn(item, sample);
    if (!turn) {  // recorded by Handle, like a failed call
      ++outstanding_;
      events_.Push(Event{i, turn.error(), CallReport{}});
      return;
    }
    Submit(i, std::move(turn).value());
  }

  void Submit(size_t i, Turn turn) {
    const Sample& sample = samples_[i];
    const Item& item = suite_.items[sample.item];
    ModelCall call;
    call.messages = turn.messages;
    call.params = params_;
    call.hints.item_id = item.id;
    call.hints.epoch = sample.epoch;
    call.hints.turn = static_cast<int>(states_[i].history.size());
    call.hints.seed = DeriveSeed(options_.seed, item.id, static_cast<uint64_t>(sample.epoch));
    call.hints.option_labels = turn.option_labels;
    states_[i].pending = std::move(turn);
    ++outstanding_;
    backend_.Submit(std::move(call), [this, i](Result<Completion> r, const CallReport& report) {
      events_.Push(Event{i, std::move(r), report});
    });
  }

  void Handle(Event e, bool stopping) {
    size_t i = e.sample;
    SampleState& st = states_[i];
    if (!e.result) {
      const Status& s = e.result.error();
      // Calls abandoned because the run stops are left pending (a resume sends them again).
      if (s.code() == StatusCode::kCancelled) return;
      if (IsFatalForRun(s.code()) && summary_.failure.ok()) summary_.failure = s;
      EndWithError(i, s, e.report);
      return;
    }
    const Sample& sample = samples_[i];
    const Item& item = suite_.items[sample.item];
    ResponseRecord rr;
    rr.item_id = item.id;
    rr.epoch = sample.epoch;
    rr.turn = static_cast<int>(st.history.size());
    rr.request = MessagesToJson(st.pending.messages);
    rr.ok = true;
    rr.completion = e.result.value();
    st.responses.push_back(std::move(rr));
    st.history.push_back(Exchange{st.pending.messages, std::move(e.result).value()});
    Result<std::optional<Turn>> next = suite_.kind->NextTurn(item, sample, st.history);
    if (!next) {
      EndWithError(i, next.error(), CallReport{});
      return;
    }
    if (next->has_value()) {
      if (!stopping) Submit(i, std::move(**next));  // else left pending for a resume
      return;
    }
    SampleResult result;
    result.item_id = item.id;
    result.epoch = sample.epoch;
    result.ok = true;
    result.responses = std::move(st.responses);
    result.grades = suite_.kind->GradeSample(item, sample, st.history);
    store_.Enqueue(summary_.run_id, std::move(result));
    st = SampleState{};
    ++summary_.done;
  }

  void EndWithError(size_t i, const Status& s, const CallReport& report) {
    const Sample& sample = samples_[i];
    SampleState& st = states_[i];
    ResponseRecord rr;
    rr.item_id = suite_.items[sample.item].id;
    rr.epoch = sample.epoch;
    rr.turn = static_cast<int>(st.history.size());
    rr.request = MessagesToJson(st.pending.messages);
    rr.ok = false;
    rr.completion.attempts = report.attempts;
    rr.error_code = std::string(StatusCodeName(s.code()));
    rr.error_message = Redact(s.message());
    SampleResult result;
    result.item_id = rr.item_id;
    result.epoch = sample.epoch;
    result.ok = false;
    result.responses = std::move(st.responses);
    result.responses.push_back(std::move(rr));
    store_.Enqueue(summary_.run_id, std::move(result));
    st = SampleState{};
    ++summary_.done;
    ++summary_.errors;
    if (summary_.errors <= 3) {
      LogWarning("item '{}' (epoch {}): {}", suite_.items[sample.item].id, sample.epoch, s.message());
    }
  }

  const Suite& suite_;
  Backend& backend_;
  HttpScheduler* scheduler_;
  Store& store_;
  const RunOptions& options_;
  const std::atomic<bool>& interrupted_;
  GenerationParams params_;
  runner::Progress progress_;

  std::vector<Sample> samples_;
  std::vector<SampleState> states_;
  EventQueue events_;
  size_t window_ = 0;       // samples in progress at most
  size_t next_ = 0;         // next sample to start
  size_t outstanding_ = 0;  // samples started and not yet ended
  bool stopped_by_user_ = false;
  RunSummary summary_;
};

}  // namespace

Result<std::vector<Metric>> ComputeMetrics(const Suite& suite,
                                           const std::vector<SampleRecord>& samples) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < suite.items.size(); ++i) index[suite.items[i].id] = i;
  std::vector<SampleOutcome> outcomes;
  for (const auto& s : samples) {
    if (s.status == "pending") continue;  // never finished: not an outcome
    auto it = index.find(s.item_id);
    if (it == index.end()) {
      return DataLoss(fmt::format("stored item '{}' is not in suite '{}' any more", s.item_id,
                                  suite.manifest.id));
    }
    outcomes.push_back(SampleOutcome{it->second, s.epoch, s.status == "done", s.grades});
  }
  return suite.kind->Metrics(suite.items, outcomes);
}

Result<RunSummary> RunSuite(const Suite& suite, Backend& backend, HttpScheduler* scheduler,
                            Store& store, const RunOptions& options,
                            const std::atomic<bool>& interrupted) {
  Loop loop(suite, backend, scheduler, store, options, interrupted);
  return loop.Run();
}

}  // namespace plumb
