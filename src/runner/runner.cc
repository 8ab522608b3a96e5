// The evaluation loop. One thread (the caller's) plans, submits, grades and records; backends
// call back from their own threads into a queue. A bounded window of samples is in progress at
// a time, each in a slot of its own, and samples are planned (or, on resume, read back) a page
// at a time, so memory stays flat however many samples the run has. A sample ends when its
// conversation is complete and every judgment it needs has come back (or when a call failed).
#include "plumb/runner.h"

#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "plumb/batch.h"
#include "plumb/hash.h"
#include "plumb/json.h"
#include "plumb/log.h"
#include "plumb/stats.h"
#include "plumb/text.h"
#include "plumb/version.h"
#include "runner/plan.h"
#include "runner/progress.h"
#include "runner/sample_source.h"

namespace plumb {
namespace {

// A finished call: a model turn (task < 0) or one judgment (task, judge), of the sample in
// `slot`.
struct Event {
  size_t slot = 0;
  Result<Completion> result = Status(StatusCode::kInternal, "unset");
  CallReport report;
  int task = -1;
  int judge = -1;
  Grade judgment;
};

// The callback side of the loop: backends push, the loop takes everything there is at once.
class EventQueue {
 public:
  void Push(Event e) {
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_empty = events_.empty();
      events_.push_back(std::move(e));
    }
    // Only the first event of a batch wakes the loop: it takes them all.
    if (was_empty) cv_.notify_one();
  }
  // Waits up to `timeout` for events and moves all of them into `out`.
  void PopAll(std::chrono::milliseconds timeout, std::deque<Event>& out) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return;
    out.swap(events_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

// One sample in progress.
struct SampleState {
  Sample sample;
  std::vector<Exchange> history;
  std::vector<ResponseRecord> responses;
  size_t stored = 0;  // responses already written (turns of an unfinished conversation)
  Turn pending;       // the turn in flight
  std::vector<Grade> grades;
  std::vector<JudgeTask> tasks;
  std::vector<std::vector<Grade>> panel;  // [task][judge]
  int judgments_pending = 0;
  bool abandoned = false;  // a judgment was cancelled: the sample stays pending
};

class Loop {
 public:
  // `resume`: an existing run; null for a new run.
  Loop(const Suite& suite, Backend& backend, HttpScheduler* scheduler, Store& store,
       const RunOptions& options, const std::atomic<bool>& interrupted,
       const std::vector<JudgeModel>& judges, const RunRecord* resume = nullptr)
      : resume_(resume),
        suite_(suite),
        raw_backend_(backend),
        raw_judges_(judges),
        cached_backend_(WithCache(backend, store, options.cache)),
        backend_(cached_backend_.get()),
        scheduler_(scheduler),
        store_(store),
        options_(options),
        interrupted_(interrupted),
        judges_(CachedJudges(judges, store, options.cache)),
        params_(options.model_defaults.MergedWith(suite.manifest.generation)
                    .MergedWith(options.params)),
        progress_(options.progress, stderr) {}

  Result<RunSummary> Run() {
    Result<RunSummary> r = RunAndRecord();
    // This process's leases go back to the run's other workers, if any.
    if (summary_.run_id != 0) {
      if (Status s = store_.LeaveRun(summary_.run_id); !s.ok() && r) return s;
    }
    if (!r && summary_.run_id != 0 && r.error().code() != StatusCode::kInvalidArgument) {
      // The run exists and keeps what was stored; it reads back as interrupted once this
      // process has gone.
      return Status(r.error().code(),
                    fmt::format("{} (run {} keeps what was stored: plumb resume {} once fixed)",
                                r.error().message(), summary_.run_id, summary_.run_id));
    }
    return r;
  }

 private:
  Result<RunSummary> RunAndRecord() {
    if (suite_.kind->NeedsJudges() && judges_.empty()) {
      return InvalidArgument(
          fmt::format("suite '{}' is scored by LLM judges: name a judge model with --judge SPEC",
                      suite_.manifest.id));
    }
    window_ = static_cast<size_t>(std::max(64, 4 * options_.concurrency));
    const bool batching = options_.batch.enabled || !options_.batch_judges.empty();
    if (batching) {
      // Batches want many requests at once: as many samples in progress as a batch holds.
      window_ = static_cast<size_t>(options_.batch.limits.max_requests > 0
                                        ? std::max<int64_t>(options_.batch.limits.max_requests, 64)
                                        : kBatchWindow);
    }
    if (resume_ != nullptr) {
      PLUMB_RETURN_IF_ERROR(StartResume());
    } else {
      PLUMB_RETURN_IF_ERROR(StartNewRun());
    }
    if (batching && resume_ != nullptr) PLUMB_RETURN_IF_ERROR(SetUpBatching());
    if (options_.plan_only) {
      // Planned for workers: the whole plan is written, nothing is sent.
      source_->PlanAll(store_, summary_.run_id);
      summary_.status = "queued";
      PLUMB_RETURN_IF_ERROR(store_.Flush());
      PLUMB_RETURN_IF_ERROR(store_.FinishRun(summary_.run_id, "queued", ""));
      return summary_;
    }
    Drive();

    PLUMB_RETURN_IF_ERROR(store_.Flush());
    if (!stopped_by_user_ && summary_.failure.ok() && !summary_.budget_reached) {
      PLUMB_ASSIGN_OR_RETURN(bool mine, Conclude());
      if (!mine) return summary_;  // another worker finishes (or finished) the run
    } else {
      PLUMB_ASSIGN_OR_RETURN(std::vector<std::string> others, OtherWorkers());
      if (!others.empty()) {
        // The run goes on in its other workers, and one of them will finish it.
        summary_.status = "running";
        summary_.finished_elsewhere = true;
        return summary_;
      }
    }
    SampleCounts counts;
    PLUMB_ASSIGN_OR_RETURN(
        summary_.metrics,
        ComputeRunMetrics(suite_, store_, summary_.run_id,
                          MetricOptions{options_.seed, options_.bootstrap_resamples}, &counts));
    // The whole run's counts (a resumed run includes what earlier sessions finished).
    summary_.samples = std::max(counts.planned, summary_.samples);
    summary_.done = counts.done + counts.error;
    summary_.errors = counts.error;
    PLUMB_RETURN_IF_ERROR(store_.PutMetrics(summary_.run_id, summary_.metrics));
    for (const auto& m : summary_.metrics) {
      if (m.name.size() > 17 && m.name.compare(m.name.size() - 17, 17, ".judge_error_rate") == 0 &&
          m.value) {
        summary_.judge_error_rate = std::max(summary_.judge_error_rate, *m.value);
      }
    }
    summary_.judge_errors_exceeded = summary_.judge_error_rate > options_.max_judge_error_rate;
    PLUMB_ASSIGN_OR_RETURN(summary_.usage, store_.GetUsage(summary_.run_id));
    AddCosts(summary_.usage);
    PLUMB_RETURN_IF_ERROR(store_.PutUsage(summary_.run_id, summary_.usage));
    if (!summary_.failure.ok()) {
      summary_.status = "failed";
    } else if (stopped_by_user_ || summary_.budget_reached || summary_.done < summary_.samples) {
      // (Samples left unsent: batch files written, or answers missing from a results file.)
      summary_.status = "interrupted";
    } else {
      summary_.status = "completed";
    }
    std::string why =
        !summary_.failure.ok() ? summary_.failure.message()
        : summary_.budget_reached
            ? fmt::format("stopped at the cost budget of ${:.4f}", *options_.max_cost)
        : !options_.batch.file_only.empty()
            ? fmt::format(
                  "batch files written to {} (--batch-file-only); nothing "
                  "was sent",
                  options_.batch.file_only)
        : summary_.done < summary_.samples
            ? fmt::format("{} samples not answered (not in {})", summary_.samples - summary_.done,
                          options_.batch.results_file.empty() ? std::string("this session")
                                                              : options_.batch.results_file)
            : "";
    PLUMB_RETURN_IF_ERROR(store_.FinishRun(summary_.run_id, summary_.status, why));
    return summary_;
  }

  // The run's live workers other than this process.
  Result<std::vector<std::string>> OtherWorkers() const {
    PLUMB_ASSIGN_OR_RETURN(std::vector<std::string> live, store_.LiveWorkers(summary_.run_id));
    std::erase(live, ThisProcess());
    return live;
  }

  // Every sample this process could claim has ended. Returns true when this process computes
  // the run's metrics: every planned sample ended and no other worker took the finish, or
  // samples are left that this session could not answer (batch files, a results file: the run
  // stays interrupted, as a single process leaves it). Otherwise (false) the summary is the
  // run's as stored, once the worker that finishes it is done (options.wait_for_finish), or at
  // once.
  Result<bool> Conclude() {
    while (true) {
      PLUMB_ASSIGN_OR_RETURN(FinishClaim claim, store_.ClaimFinish(summary_.run_id));
      if (claim == FinishClaim::kMine) return true;
      if (claim == FinishClaim::kTaken) break;
      PLUMB_ASSIGN_OR_RETURN(SampleCounts counts, store_.CountSamples(summary_.run_id));
      if (counts.pending > 0 || counts.planned < summary_.samples) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a race: look again
    }
    summary_.finished_elsewhere = true;
    while (options_.wait_for_finish && !interrupted_.load()) {
      PLUMB_ASSIGN_OR_RETURN(RunRecord run, store_.GetRun(summary_.run_id));
      if (run.status != "running") break;
      // The worker finishing the run may die: then this one takes over.
      PLUMB_ASSIGN_OR_RETURN(FinishClaim claim, store_.ClaimFinish(summary_.run_id));
      if (claim == FinishClaim::kMine) {
        summary_.finished_elsewhere = false;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    PLUMB_ASSIGN_OR_RETURN(RunRecord run, store_.GetRun(summary_.run_id));
    PLUMB_ASSIGN_OR_RETURN(SampleCounts counts, store_.CountSamples(summary_.run_id));
    PLUMB_ASSIGN_OR_RETURN(summary_.metrics, store_.GetMetrics(summary_.run_id));
    summary_.status = run.status;
    summary_.samples = std::max(counts.planned, summary_.samples);
    summary_.done = counts.done + counts.error;
    summary_.errors = counts.error;
    summary_.usage = run.usage;
    return false;
  }

  // Prices the run's token counts: cost_usd per role (null when the price is unknown).
  void AddCosts(Json& usage) const {
    auto price = [](Json& u, const std::optional<Price>& p) {
      u["cost_usd"] = p ? Json(p->UsageCost(u)) : Json(nullptr);
    };
    price(usage["model"], options_.model_price);
    for (auto& [spec, u] : usage["judges"].items()) {
      auto it = options_.judge_prices.find(spec);
      price(u, it == options_.judge_prices.end() ? std::nullopt : std::optional<Price>(it->second));
    }
  }

  Status StartNewRun() {
    source_.emplace(suite_, options_.epochs, options_.limit, options_.seed,
                    options_.plan_only ? 0 : window_);
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
    run.backend_id = backend_->Id();
    run.params = params_.ToJson();
    run.seed = options_.seed;
    run.concurrency = options_.concurrency;
    run.epochs = options_.epochs;
    run.limit = options_.limit;
    run.n_samples = source_->planned();
    run.settings = options_.settings;
    run.settings["bootstrap_resamples"] = options_.bootstrap_resamples;
    // Where the suite was loaded from, so resume and rescore find suites outside the search path.
    std::error_code ec;
    run.settings["suite_file"] = std::filesystem::absolute(suite_.manifest.file, ec).string();
    run.parent_run_id = options_.parent_run_id;
    if (!judges_.empty()) {
      Json specs = Json::array();
      for (const auto& j : judges_) specs.push_back(j.spec);
      run.settings["judges"] = specs;
    }
    std::vector<Item> items;
    for (size_t i : *source_->selected()) items.push_back(suite_.items[i]);
    // The first requests go out before the run is recorded, so the network wait overlaps the
    // inserts; their results are only read (and stored) once the run row exists. Batches are
    // recorded with their run, so in batch mode the run comes first.
    const bool batching = options_.batch.enabled || !options_.batch_judges.empty();
    if (!batching && !options_.plan_only) PLUMB_RETURN_IF_ERROR(FillWindow());
    Result<int64_t> run_id = store_.CreateRun(run, items);
    if (!run_id) {
      CancelCalls();
      std::deque<Event> drained;
      while (calls_ > 0) {
        events_.PopAll(std::chrono::milliseconds(100), drained);
        calls_ -= std::min(calls_, drained.size());
        drained.clear();
      }
      return run_id.error();
    }
    summary_.run_id = *run_id;
    source_->Recorded(store_, summary_.run_id);
    summary_.samples = run.n_samples;
    if (batching) PLUMB_RETURN_IF_ERROR(SetUpBatching());
    return Status();
  }

  // Batch mode: the model, and each judge named in options.batch_judges, behind a batching
  // backend under the response cache (cached calls never go into a batch; batch results enter
  // the cache).
  Status SetUpBatching() {
    BatchBudget budget = [this](const std::string& role, int64_t in, int64_t out) {
      return ReserveBatch(role, in, out);
    };
    if (options_.batch.enabled) {
      if (scheduler_ == nullptr || AsBatchApi(raw_backend_) == nullptr) {
        return InvalidArgument(fmt::format(
            "--batch: model '{}' has no batch API (openai, anthropic and google have one)",
            options_.model_spec));
      }
      PLUMB_ASSIGN_OR_RETURN(auto model,
                             MakeBatchingBackend(raw_backend_, *scheduler_, store_, summary_.run_id,
                                                 "model", options_.batch, budget));
      batching_.push_back(model);
      cached_backend_ = WithCache(*model, store_, options_.cache);
      backend_ = cached_backend_.get();
    }
    for (size_t j = 0; j < judges_.size(); ++j) {
      if (!options_.batch_judges.count(judges_[j].spec) || scheduler_ == nullptr) continue;
      PLUMB_ASSIGN_OR_RETURN(
          auto judge,
          MakeBatchingBackend(*raw_judges_[j].backend, *scheduler_, store_, summary_.run_id,
                              judges_[j].spec, options_.batch, budget));
      batching_.push_back(judge);
      cached_judges_[j] = WithCache(*judge, store_, options_.cache);
      judges_[j].backend = cached_judges_[j].get();
    }
    return Status();
  }

  // --max-cost in batch mode: a batch goes out only when the worst case of every batch of this
  // session, with it, stays within the budget (unknown prices: nothing known to spend).
  Status ReserveBatch(const std::string& role, int64_t prompt, int64_t completion) {
    if (!options_.max_cost) return Status();
    std::optional<Price> price = options_.model_price;
    if (role != "model") {
      auto it = options_.judge_prices.find(role);
      price = it == options_.judge_prices.end() ? std::nullopt : std::optional<Price>(it->second);
    }
    if (!price) return Status();
    double worst = price->BatchCost(prompt, completion);
    std::lock_guard<std::mutex> lock(budget_mu_);
    if (batch_reserved_usd_ + worst > *options_.max_cost) {
      batch_budget_hit_ = true;
      return Cancelled(fmt::format(
          "batch not submitted: its worst-case cost ${:.4f} (with ${:.4f} already submitted) "
          "would pass --max-cost ${:.4f}",
          worst, batch_reserved_usd_, *options_.max_cost));
    }
    batch_reserved_usd_ += worst;
    return Status();
  }

  // A resumed run: its pending samples, with the presentation they were planned with. A run
  // whose process died before its whole plan was written gets the rest of its plan first.
  Status StartResume() {
    summary_.run_id = resume_->id;
    PLUMB_RETURN_IF_ERROR(store_.JoinRun(resume_->id));
    PLUMB_ASSIGN_OR_RETURN(SampleCounts counts, store_.CountSamples(resume_->id));
    summary_.samples = std::max(resume_->n_samples, counts.planned);
    summary_.done = counts.done + counts.error;
    summary_.errors = counts.error;
    if (counts.planned < resume_->n_samples) {
      runner::PlanCursor plan(suite_, options_.epochs, options_.limit, options_.seed);
      std::vector<Sample> epoch;
      while (plan.Next(epoch)) {
        std::vector<PlannedSample> rows;
        for (const auto& s : epoch)
          rows.push_back(PlannedSample{suite_.items[s.item].id, s.epoch, s.presentation});
        store_.EnqueuePlanned(resume_->id, std::move(rows));  // kept once if already there
      }
      PLUMB_RETURN_IF_ERROR(store_.Flush());
    }
    source_.emplace(suite_);
    return Status();
  }

  Status FillWindow() {
    while (!source_exhausted_ && in_progress_ < window_) {
      runner::SampleSource::Next next;
      PLUMB_ASSIGN_OR_RETURN(auto state, source_->Take(store_, summary_.run_id, 4 * window_, next));
      if (state == runner::SampleSource::State::kDone) {
        source_exhausted_ = true;
        break;
      }
      if (state == runner::SampleSource::State::kWait) break;
      Start(std::move(next.sample), std::move(next.stored));
    }
    return Status();
  }

  void Drive() {
    bool stopping = false;
    std::deque<Event> events;
    while (true) {
      if (!stopping) {
        if (Status s = FillWindow(); !s.ok() && summary_.failure.ok()) {
          summary_.failure = s;
          stopping = true;
          CancelCalls();
        }
      }
      if (calls_ == 0 && (stopping || source_exhausted_)) break;
      events_.PopAll(std::chrono::milliseconds(100), events);
      if (!stopping && interrupted_.load()) {
        stopping = true;
        stopped_by_user_ = true;
        CancelCalls();
      }
      while (!events.empty()) {
        Event e = std::move(events.front());
        events.pop_front();
        --calls_;
        if (e.task < 0) {
          HandleTurn(std::move(e), stopping);
        } else {
          HandleJudgment(std::move(e));
        }
      }
      if (!stopping && summary_.failure.ok()) {
        // Results that can no longer be stored (a full disk) stop the run: nothing more is
        // sent, and what was stored stays for a resume.
        if (Status w = store_.LastWriteError(); !w.ok()) summary_.failure = w;
      }
      if (!stopping && !summary_.failure.ok()) {
        stopping = true;
        CancelCalls();
      }
      if (!stopping && options_.max_cost &&
          (summary_.spent_usd >= *options_.max_cost || batch_budget_hit_)) {
        stopping = true;
        summary_.budget_reached = true;
        CancelCalls();
      }
      if (progress_.Due()) progress_.Update(State());
    }
    progress_.Finish(State());
  }

  void CancelCalls() {
    if (scheduler_) scheduler_->Cancel();
    backend_->Cancel();
    for (const auto& j : judges_) j.backend->Cancel();
  }

  runner::ProgressState State() const {
    runner::ProgressState s;
    s.done = summary_.done;
    s.total = summary_.samples;
    s.errors = summary_.errors;
    if (scheduler_) {
      SchedulerStats stats = scheduler_->Stats();
      s.retrying = stats.waiting_retry;
      s.rate_limited = stats.rate_limited;
    }
    if (!batching_.empty()) {
      BatchActivity a = CurrentBatchActivity();
      s.batches = a.batches;
      s.batch_states = a.states;
      s.batch_requests = a.requests;
      s.batch_done = a.done;
      s.batch_waited_s = a.waited_s;
    }
    return s;
  }

  CallHints Hints(const Sample& sample, int turn) const {
    const Item& item = suite_.items[sample.item];
    CallHints h;
    h.item_id = item.id;
    h.epoch = sample.epoch;
    h.turn = turn;
    h.seed = DeriveSeed(options_.seed, item.id, static_cast<uint64_t>(sample.epoch));
    return h;
  }

  size_t TakeSlot() {
    if (free_.empty()) {
      slots_.emplace_back();
      return slots_.size() - 1;
    }
    size_t i = free_.back();
    free_.pop_back();
    return i;
  }

  void FreeSlot(size_t i) {
    slots_[i] = SampleState{};
    free_.push_back(i);
    --in_progress_;
  }

  void Start(Sample sample, std::vector<ResponseRecord> stored) {
    ++in_progress_;
    size_t i = TakeSlot();
    slots_[i].sample = std::move(sample);
    const Sample& s = slots_[i].sample;
    if (!stored.empty()) {
      // A conversation under way when the run stopped: it goes on from its stored turns (an
      // agent's environment is rebuilt from them by the kind).
      SampleState& st = slots_[i];
      std::sort(stored.begin(), stored.end(),
                [](const ResponseRecord& a, const ResponseRecord& b) { return a.turn < b.turn; });
      for (auto& rr : stored) {
        st.history.push_back(Exchange{MessagesFromJson(rr.request), rr.completion});
        st.responses.push_back(std::move(rr));
      }
      st.stored = st.responses.size();
      Advance(i, /*stopping=*/false);
      return;
    }
    Result<Turn> turn = suite_.kind->FirstTurn(suite_.items[s.item], s);
    if (!turn) {  // recorded by HandleTurn, like a failed call
      ++calls_;
      events_.Push(Event{i, turn.error(), CallReport{}, -1, -1, Grade{}});
      return;
    }
    Submit(i, std::move(turn).value());
  }

  void Submit(size_t i, Turn turn) {
    SampleState& st = slots_[i];
    ModelCall call;
    call.messages = turn.messages;
    call.params = params_;
    call.hints = Hints(st.sample, static_cast<int>(st.history.size()));
    call.hints.option_labels = turn.option_labels;
    call.hints.option_texts = turn.option_texts;
    call.tools = turn.tools;
    call.tool_choice = turn.tool_choice;
    st.pending = std::move(turn);
    ++calls_;
    backend_->Submit(std::move(call), [this, i](Result<Completion> r, const CallReport& report) {
      events_.Push(Event{i, std::move(r), report, -1, -1, Grade{}});
    });
  }

  void HandleTurn(Event e, bool stopping) {
    size_t i = e.slot;
    SampleState& st = slots_[i];
    if (!e.result) {
      const Status& s = e.result.error();
      // Calls abandoned because the run stops are left pending (a resume sends them again).
      if (s.code() == StatusCode::kCancelled) return FreeSlot(i);
      if (IsFatalForRun(s.code()) && summary_.failure.ok()) summary_.failure = s;
      EndWithError(i, s, e.report);
      return;
    }
    const Sample& sample = st.sample;
    const Item& item = suite_.items[sample.item];
    ResponseRecord rr;
    rr.item_id = item.id;
    rr.epoch = sample.epoch;
    rr.turn = static_cast<int>(st.history.size());
    rr.request = MessagesToJson(st.pending.messages);
    rr.ok = true;
    rr.completion = e.result.value();
    if (!rr.completion.cached && options_.model_price) {
      int64_t in = rr.completion.prompt_tokens.value_or(0);
      int64_t out = rr.completion.completion_tokens.value_or(0);
      summary_.spent_usd += rr.completion.batched ? options_.model_price->BatchCost(in, out)
                                                  : options_.model_price->Cost(in, out);
    }
    st.responses.push_back(std::move(rr));
    st.history.push_back(Exchange{std::move(st.pending.messages), std::move(e.result).value()});
    Advance(i, stopping);
  }

  // After a turn: the next turn of the conversation, or its grades and judgments.
  void Advance(size_t i, bool stopping) {
    SampleState& st = slots_[i];
    const Sample& sample = st.sample;
    const Item& item = suite_.items[sample.item];
    Result<std::optional<Turn>> next = suite_.kind->NextTurn(item, sample, st.history);
    if (!next) {
      EndWithError(i, next.error(), CallReport{});
      return;
    }
    if (next->has_value()) {
      // The turns so far are stored, so a resume goes on from here rather than from the start.
      StoreTurns(i);
      if (stopping) return FreeSlot(i);  // left pending for a resume
      Submit(i, std::move(**next));
      return;
    }
    st.grades = suite_.kind->GradeSample(item, sample, st.history);
    st.tasks = suite_.kind->JudgeTasks(item, sample, st.history);
    if (!options_.judge_graders.empty()) {
      std::erase_if(st.tasks, [&](const JudgeTask& t) {
        return std::find(options_.judge_graders.begin(), options_.judge_graders.end(),
                         t.grader->id()) == options_.judge_graders.end();
      });
    }
    // Without judge models, judgments a kind can do without (an agent's transcript judge) are
    // skipped.
    if (judges_.empty()) st.tasks.clear();
    if (st.tasks.empty()) return Finish(i);
    if (stopping) return FreeSlot(i);
    StartJudgments(i);
  }

  // Queues the responses not written yet of a conversation that goes on.
  void StoreTurns(size_t i) {
    SampleState& st = slots_[i];
    if (st.stored == st.responses.size()) return;
    SampleResult partial;
    partial.item_id = suite_.items[st.sample.item].id;
    partial.epoch = st.sample.epoch;
    partial.partial = true;
    partial.responses.assign(st.responses.begin() + static_cast<ptrdiff_t>(st.stored),
                             st.responses.end());
    st.stored = st.responses.size();
    store_.Enqueue(summary_.run_id, std::move(partial));
  }

  void StartJudgments(size_t i) {
    SampleState& st = slots_[i];
    const Item& item = suite_.items[st.sample.item];
    st.panel.assign(st.tasks.size(), std::vector<Grade>(judges_.size()));
    st.judgments_pending = static_cast<int>(st.tasks.size() * judges_.size());
    for (size_t t = 0; t < st.tasks.size(); ++t) {
      const JudgeTask& task = st.tasks[t];
      JudgeInput input{item, task.question, task.answer,
                       task.template_override ? &*task.template_override : nullptr};
      Result<std::vector<Message>> prompt = task.grader->BuildPrompt(input);
      for (size_t j = 0; j < judges_.size(); ++j) {
        ++calls_;
        if (!prompt) {  // the judge cannot be asked: a grader error for this item, not a crash
          Grade g;
          g.grader = task.grader->IdVersion();
          g.status = GradeStatus::kError;
          g.error = prompt.error().message();
          g.details["judge"] = judges_[j].spec;
          events_.Push(Event{i, Completion{}, {}, static_cast<int>(t), static_cast<int>(j), g});
          continue;
        }
        CallHints hints = Hints(st.sample, static_cast<int>(st.history.size()));
        RequestJudgment(task.grader, judges_[j], *prompt, hints,
                        [this, i, t, j](Grade judgment, Status call) {
                          // result carries only the call's status for judgments
                          Event e{i,
                                  Completion{},
                                  {},
                                  static_cast<int>(t),
                                  static_cast<int>(j),
                                  std::move(judgment)};
                          if (!call.ok()) e.result = call;
                          events_.Push(std::move(e));
                        });
      }
    }
  }

  void HandleJudgment(Event e) {
    size_t i = e.slot;
    SampleState& st = slots_[i];
    if (!e.result && e.result.error().code() == StatusCode::kCancelled) {
      st.abandoned = true;
    } else if (!e.result && IsFatalForRun(e.result.error().code()) && summary_.failure.ok()) {
      summary_.failure = e.result.error().WithPrefix("judge " + judges_[e.judge].spec);
    }
    const Json& d = e.judgment.details;
    auto price = options_.judge_prices.find(judges_[e.judge].spec);
    if (price != options_.judge_prices.end() && !d.value("cached", false)) {
      int64_t in = d.value("prompt_tokens", int64_t{0});
      int64_t out = d.value("completion_tokens", int64_t{0});
      summary_.spent_usd += d.value("batched", false) ? price->second.BatchCost(in, out)
                                                      : price->second.Cost(in, out);
    }
    st.panel[e.task][e.judge] = std::move(e.judgment);
    if (--st.judgments_pending > 0) return;
    if (st.abandoned) return FreeSlot(i);
    for (size_t t = 0; t < st.tasks.size(); ++t) {
      const JudgeGrader& grader = *st.tasks[t].grader;
      std::vector<Grade>& judgments = st.panel[t];
      Grade aggregate;
      if (judgments.size() == 1) {
        aggregate = judgments[0];
      } else {
        aggregate = grader.Aggregate(judgments);
        aggregate.details["prompt_hash"] = judgments[0].details.value("prompt_hash", "");
        for (auto& j : judgments) {  // each judge's own judgment is kept too
          j.grader = grader.IdVersion() + "|" + j.details.value("judge", "");
          st.grades.push_back(std::move(j));
        }
      }
      aggregate.grader = grader.IdVersion();
      aggregate.details["judge_grader"] = true;
      st.grades.push_back(std::move(aggregate));
    }
    Finish(i);
  }

  void Finish(size_t i) {
    SampleState& st = slots_[i];
    SampleResult result;
    result.item_id = suite_.items[st.sample.item].id;
    result.epoch = st.sample.epoch;
    result.ok = true;
    result.responses.assign(
        std::make_move_iterator(st.responses.begin() + static_cast<ptrdiff_t>(st.stored)),
        std::make_move_iterator(st.responses.end()));
    result.grades = std::move(st.grades);
    store_.Enqueue(summary_.run_id, std::move(result));
    ++summary_.done;
    ++summary_.ended_here;
    FreeSlot(i);
  }

  void EndWithError(size_t i, const Status& s, const CallReport& report) {
    SampleState& st = slots_[i];
    const Sample& sample = st.sample;
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
    result.responses.assign(
        std::make_move_iterator(st.responses.begin() + static_cast<ptrdiff_t>(st.stored)),
        std::make_move_iterator(st.responses.end()));
    result.responses.push_back(std::move(rr));
    store_.Enqueue(summary_.run_id, std::move(result));
    ++summary_.done;
    ++summary_.ended_here;
    ++summary_.errors;
    if (summary_.errors <= 3) {
      LogWarning("item '{}' (epoch {}): {}", suite_.items[sample.item].id, sample.epoch,
                 s.message());
    }
    FreeSlot(i);
  }

  // The judges, each behind the response cache (the wrappers are kept alive here).
  std::vector<JudgeModel> CachedJudges(const std::vector<JudgeModel>& judges, Store& store,
                                       CachePolicy policy) {
    std::vector<JudgeModel> out;
    for (const auto& j : judges) {
      cached_judges_.push_back(WithCache(*j.backend, store, policy));
      out.push_back(JudgeModel{j.spec, cached_judges_.back().get()});
    }
    return out;
  }

  const RunRecord* resume_;
  const Suite& suite_;
  Backend& raw_backend_;
  const std::vector<JudgeModel> raw_judges_;
  // Batch mode: the batching backends, under the caches (declared first: destroyed last).
  std::vector<std::shared_ptr<Backend>> batching_;
  std::vector<std::unique_ptr<Backend>> cached_judges_;
  std::unique_ptr<Backend> cached_backend_;
  Backend* backend_;
  HttpScheduler* scheduler_;
  Store& store_;
  const RunOptions& options_;
  const std::atomic<bool>& interrupted_;
  std::vector<JudgeModel> judges_;
  GenerationParams params_;
  runner::Progress progress_;

  std::optional<runner::SampleSource> source_;
  bool source_exhausted_ = false;
  // Samples in progress by slot; a slot is reused once its sample ends. Events name slots.
  std::deque<SampleState> slots_;
  std::vector<size_t> free_;
  EventQueue events_;
  size_t window_ = 0;       // samples in progress at most
  size_t in_progress_ = 0;  // samples started and not yet ended
  size_t calls_ = 0;        // calls submitted whose event has not been handled
  bool stopped_by_user_ = false;
  std::mutex budget_mu_;
  double batch_reserved_usd_ = 0;  // worst-case cost of the batches submitted (guarded)
  std::atomic<bool> batch_budget_hit_{false};
  RunSummary summary_;
};

}  // namespace

Result<RunSummary> ResumeRun(const Suite& suite, const RunRecord& run, Backend& backend,
                             HttpScheduler* scheduler, Store& store, const RunOptions& options,
                             const std::atomic<bool>& interrupted,
                             const std::vector<JudgeModel>& judges) {
  if (suite.manifest.content_hash != run.suite_hash) {
    return InvalidArgument(
        fmt::format("suite '{}' changed since run {} started (content hash {} now, {} then): a "
                    "resumed run must "
                    "answer the same items",
                    suite.manifest.id, run.id, suite.manifest.content_hash.substr(0, 12),
                    run.suite_hash.substr(0, 12)));
  }
  // The run is taken before anything changes, so two resumes never both reopen it.
  PLUMB_RETURN_IF_ERROR(store.AcquireRun(run.id));
  PLUMB_RETURN_IF_ERROR(store.ReopenRun(run.id));
  Loop loop(suite, backend, scheduler, store, options, interrupted, judges, &run);
  return loop.Run();
}

Result<RunSummary> WorkOnRun(const Suite& suite, const RunRecord& run, Backend& backend,
                             HttpScheduler* scheduler, Store& store, const RunOptions& options,
                             const std::atomic<bool>& interrupted,
                             const std::vector<JudgeModel>& judges) {
  if (suite.manifest.content_hash != run.suite_hash) {
    return InvalidArgument(fmt::format(
        "suite '{}' changed since run {} started (content hash {} now, {} then): every worker "
        "of a run must answer the same items",
        suite.manifest.id, run.id, suite.manifest.content_hash.substr(0, 12),
        run.suite_hash.substr(0, 12)));
  }
  if (run.status == "completed") {
    return FailedPrecondition(fmt::format("run {} is completed: nothing to work on", run.id));
  }
  // A run nobody is executing (queued, interrupted, failed) is running again; one that is
  // running is joined as it is.
  if (run.status != "running") PLUMB_RETURN_IF_ERROR(store.ReopenRun(run.id));
  Loop loop(suite, backend, scheduler, store, options, interrupted, judges, &run);
  return loop.Run();
}

Result<RunEstimate> EstimateRun(const Suite& suite, const RunOptions& options) {
  RunEstimate e;
  runner::PlanCursor plan(suite, options.epochs, options.limit, options.seed);
  GenerationParams params =
      options.model_defaults.MergedWith(suite.manifest.generation).MergedWith(options.params);
  const int turns = suite.kind->TurnsPerSample();
  const int64_t reply = params.max_tokens.value_or(500);
  std::vector<Sample> epoch;
  while (plan.Next(epoch)) {
    for (const auto& s : epoch) {
      PLUMB_ASSIGN_OR_RETURN(Turn turn, suite.kind->FirstTurn(suite.items[s.item], s));
      int64_t chars = 0;
      for (const auto& m : turn.messages) chars += static_cast<int64_t>(m.content.size());
      int64_t prompt = chars / 4 + 1;
      // Later turns resend the conversation: each adds the previous reply and a short message.
      for (int t = 0; t < turns; ++t) e.prompt_tokens += prompt + t * (reply + 20);
      e.judge_prompt_tokens += suite.kind->JudgmentsPerSample() * (500 + prompt + reply);
    }
  }
  e.samples = plan.total();
  e.model_requests = e.samples * turns;
  e.judge_requests = e.samples * suite.kind->JudgmentsPerSample();
  if (params.max_tokens) e.completion_tokens = e.model_requests * *params.max_tokens;
  return e;
}

Result<RunOptions> OptionsOfRun(const RunRecord& run) {
  RunOptions o;
  o.model_spec = run.model_spec;
  o.epochs = run.epochs;
  o.limit = run.limit;
  o.seed = run.seed;
  o.concurrency = run.concurrency;
  o.settings = run.settings;
  o.bootstrap_resamples = MetricOptionsOfRun(run).resamples;
  o.parent_run_id = run.parent_run_id;
  if (run.settings.contains("judge_graders") && run.settings["judge_graders"].is_array()) {
    for (const auto& g : run.settings["judge_graders"]) {
      if (g.is_string()) o.judge_graders.push_back(g.get<std::string>());
    }
  }
  SourceMap source(fmt::format("run {} params", run.id), 0);
  FieldReader reader(run.params, source);
  PLUMB_ASSIGN_OR_RETURN(o.params, ReadGenerationParams(reader));
  return o;
}

Result<RunSummary> RunSuite(const Suite& suite, Backend& backend, HttpScheduler* scheduler,
                            Store& store, const RunOptions& options,
                            const std::atomic<bool>& interrupted,
                            const std::vector<JudgeModel>& judges) {
  Loop loop(suite, backend, scheduler, store, options, interrupted, judges);
  return loop.Run();
}

}  // namespace plumb
