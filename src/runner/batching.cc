// The batching backend (plumb run --batch): gathers calls, submits them as provider batches
// through the scheduler, polls, reads the results back and answers each call. Every batch is in
// the store before it is waited on; a resumed run's calls that match a stored batch (by custom
// id) are answered from it, never submitted twice.
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "plumb/batch.h"
#include "plumb/hash.h"
#include "plumb/log.h"
#include "plumb/runner.h"
#include "plumb/store.h"
#include "plumb/text.h"

namespace plumb {
namespace {

using Clock = std::chrono::steady_clock;

class BatchingBackend;

// A batch reply reader that trips over a body shaped unlike the protocol's: an unreadable
// reply (handled like any other: retried, or the batch's failure), never a crash.
template <typename F>
auto Guarded(const char* what, F&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const std::exception& e) {
    return Unavailable(fmt::format("unreadable batch {}: {}", what, QuoteInput(e.what(), 200)));
  }
}

// The live batching backends, for CurrentBatchActivity.
std::mutex g_live_mu;
std::set<const BatchingBackend*> g_live;

// Writes `text` to `path` through a temporary file and a rename (never half a file).
Status WriteWhole(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return Internal(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status();
}

bool Ended(const std::string& state) {
  return state == "ended" || state == "collected" || state == "failed";
}

class BatchingBackend final : public Backend {
 public:
  BatchingBackend(Backend& inner, const BatchApi& api, HttpScheduler& scheduler, Store& store,
                  int64_t run_id, std::string role, BatchOptions options, BatchBudget budget)
      : inner_(inner),
        api_(api),
        scheduler_(scheduler),
        store_(store),
        run_id_(run_id),
        role_(std::move(role)),
        options_(std::move(options)),
        budget_(std::move(budget)) {
    limits_ = api_.DefaultBatchLimits();
    if (options_.limits.max_requests > 0)
      limits_.max_requests = std::min(limits_.max_requests, options_.limits.max_requests);
    if (options_.limits.max_bytes > 0)
      limits_.max_bytes = std::min(limits_.max_bytes, options_.limits.max_bytes);
  }

  Status Start() {
    if (!options_.results_file.empty()) {
      std::ifstream in(options_.results_file, std::ios::binary);
      if (!in) return InvalidArgument(fmt::format("cannot read {}", options_.results_file));
      std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      Result<std::vector<BatchLineResult>> lines =
          Guarded("results", [&] { return api_.ReadResults(body, Json::object()); });
      if (!lines) return lines.error().WithPrefix(options_.results_file);
      for (auto& l : *lines) from_file_[l.custom_id] = std::move(l);
    }
    PLUMB_ASSIGN_OR_RETURN(auto records, store_.GetBatches(run_id_));
    for (auto& rec : records) {
      if (rec.role != role_ || rec.provider != api_.BatchProvider()) continue;
      // A batch whose creation never returned may or may not exist: its requests are free.
      if (!rec.info.contains("id")) continue;
      if (rec.state == "failed") continue;
      std::set<std::string> failed;
      if (rec.info.contains("failed_ids"))
        for (const auto& f : rec.info["failed_ids"]) failed.insert(f.get<std::string>());
      for (const auto& id : rec.custom_ids)
        if (!failed.count(id)) known_[id] = rec.id;
      Active a;
      a.rec = std::move(rec);
      a.next = Clock::now();
      a.started = Clock::now();
      a.interval = options_.poll;
      if (options_.cancel && !Ended(a.rec.state)) a.cancel = true;
      // Results already read in an earlier session are read again (a status poll first: an
      // ended batch goes straight to its results).
      if (Ended(a.rec.state)) a.rec.state = "submitted";
      int64_t id = a.rec.id;
      if (a.cancel) {
        active_.emplace(id, std::move(a));  // cancelled now, whether or not a call needs it
      } else {
        stored_.emplace(id, std::move(a));
      }
    }
    {
      std::lock_guard<std::mutex> lock(g_live_mu);
      g_live.insert(this);
    }
    thread_ = std::thread([this] { Loop(); });
    return Status();
  }

  ~BatchingBackend() override {
    {
      std::lock_guard<std::mutex> live(g_live_mu);
      g_live.erase(this);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    // A poll or cancel still on the wire calls back into this object: wait for it (the
    // scheduler is cancelled if it takes long, as when the run stops).
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(30), [this] { return inflight_ == 0; })) {
      lock.unlock();
      scheduler_.Cancel();
      lock.lock();
      cv_.wait(lock, [this] { return inflight_ == 0; });
    }
  }

  std::string Id() const override { return inner_.Id(); }
  std::string CacheIdentity() const override { return inner_.CacheIdentity(); }

  void Submit(ModelCall call, Done done) override {
    // The custom id: the role, the sample's turn and the request itself. A resumed session
    // makes the same call again and finds it; two samples asking the same are two requests.
    std::string id =
        "p" + Sha256Hex(fmt::format("{}\n{}\n{}\n{}\n{}", role_, call.hints.item_id,
                                    call.hints.epoch, call.hints.turn,
                                    CacheKey(inner_.Id() + "|" + inner_.CacheIdentity(), call)))
                  .substr(0, 40);
    if (!options_.results_file.empty()) {
      // Answers from a results file: nothing is sent.
      auto f = from_file_.find(id);
      if (f == from_file_.end()) {
        done(Cancelled(fmt::format("not in {}", options_.results_file)), CallReport{});
      } else if (f->second.kind == BatchLineResult::Kind::kOk) {
        Completion c = f->second.completion;
        c.batched = true;
        done(std::move(c), CallReport{1, 0, 0});
      } else {
        done(f->second.kind == BatchLineResult::Kind::kError
                 ? f->second.error
                 : Status(StatusCode::kAborted, "expired or cancelled in the batch"),
             CallReport{});
      }
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cancelled_) {
      lock.unlock();
      done(Cancelled("request abandoned: the run was interrupted"), CallReport{});
      return;
    }
    if (auto e = early_.find(id); e != early_.end()) {
      Result<Completion> r = std::move(e->second);
      early_.erase(e);
      lock.unlock();
      done(std::move(r), CallReport{1, 0, 0});
      return;
    }
    auto [it, fresh] = waiting_.try_emplace(id);
    it->second.dones.push_back(std::move(done));
    if (!fresh) return;  // the same request twice: one line, both answered
    it->second.call = std::move(call);
    auto k = known_.find(id);
    if (k != known_.end()) {
      // Submitted by an earlier session: wait on that batch.
      auto s = stored_.find(k->second);
      if (s != stored_.end()) {
        active_.emplace(s->first, std::move(s->second));
        stored_.erase(s);
      }
      it->second.batch = k->second;
      cv_.notify_all();
      return;
    }
    queue_.push_back(id);
    last_arrival_ = Clock::now();
    cv_.notify_all();
  }

  void Cancel() override {
    std::unordered_map<std::string, Waiter> waiting;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      waiting.swap(waiting_);
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& [id, w] : waiting)
      for (auto& d : w.dones) d(Cancelled("request abandoned: the run was interrupted"), {});
  }

  BatchActivity Activity() const {
    std::lock_guard<std::mutex> lock(mu_);
    BatchActivity a;
    std::map<std::string, int> states;
    for (const auto& [id, b] : active_) {
      ++a.batches;
      if (!Ended(b.rec.state)) ++a.waiting;
      a.requests +=
          b.progress.total > 0 ? b.progress.total : static_cast<int64_t>(b.rec.custom_ids.size());
      a.done += b.progress.succeeded + b.progress.failed_requests;
      ++states[b.progress.state.empty() ? b.rec.state : b.progress.state];
      a.waited_s =
          std::max(a.waited_s, std::chrono::duration<double>(Clock::now() - b.started).count());
    }
    for (const auto& [s, n] : states)
      a.states += fmt::format("{}{} {}", a.states.empty() ? "" : ", ", s, n);
    return a;
  }

 private:
  enum StepKind { kSubmit, kStatus, kDownload, kCancel };
  struct Waiter {
    ModelCall call;
    std::vector<Done> dones;
    int64_t batch = 0;  // the store id of the batch it is in; 0 while gathered
    int resubmits = 0;
  };
  struct Active {
    BatchRecord rec;
    std::vector<Json> lines;  // while submitting
    BatchProgress progress;
    Clock::time_point next, started;
    std::chrono::milliseconds interval{0};
    bool busy = false;    // a request of this batch is on the wire
    bool cancel = false;  // send a cancel request
    std::string last_status;
    std::vector<HttpRequest> downloads;
    size_t downloaded = 0;
    std::vector<BatchLineResult> results;
  };

  // The runner's thread of this backend: gathers and submits batches, and times the polls.
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (cancelled_) {  // the run stops: the batches stay at the provider for a resume
        cv_.wait(lock, [this] { return stop_; });
        break;
      }
      auto now = Clock::now();
      Clock::time_point wake = now + std::chrono::seconds(1);
      // Gathered calls go out when no call came for a while, or a batch is full.
      if (!queue_.empty() && !cancelled_) {
        auto due = last_arrival_ + options_.gather;
        if (now >= due || static_cast<int64_t>(queue_.size()) >= limits_.max_requests) {
          std::vector<std::string> ids;
          ids.swap(queue_);
          lock.unlock();
          Form(std::move(ids));
          lock.lock();
          continue;
        }
        wake = std::min(wake, due);
      }
      for (auto& [id, a] : active_) {
        if (a.busy || a.rec.state == "collected") continue;
        if (a.next <= now) {
          a.busy = true;
          int64_t bid = id;
          lock.unlock();
          Step(bid);
          lock.lock();
          break;  // the map may have changed
        }
        wake = std::min(wake, a.next);
      }
      cv_.wait_until(lock, wake);
    }
  }

  // Splits gathered calls into batches by the provider's limits and starts each.
  void Form(std::vector<std::string> ids) {
    struct Line {
      std::string id;
      Json line;
      int64_t prompt = 0, completion = 0;
    };
    std::vector<Line> lines;
    for (const auto& id : ids) {
      ModelCall call;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto w = waiting_.find(id);
        if (w == waiting_.end()) continue;
        call = w->second.call;
      }
      Result<Json> line = api_.BatchLine(id, call);
      if (!line) {
        Fail(id, line.error());
        continue;
      }
      Line l{id, std::move(*line), 0, call.params.max_tokens.value_or(1024)};
      for (const auto& m : call.messages) l.prompt += static_cast<int64_t>(m.content.size()) / 4;
      lines.push_back(std::move(l));
    }
    size_t i = 0;
    while (i < lines.size()) {
      std::vector<std::string> batch_ids;
      std::vector<Json> batch_lines;
      int64_t bytes = 0, prompt = 0, completion = 0;
      while (i < lines.size()) {
        int64_t size = static_cast<int64_t>(DumpJson(lines[i].line).size()) + 1;
        if (!batch_lines.empty() &&
            (static_cast<int64_t>(batch_lines.size()) >= limits_.max_requests ||
             bytes + size > limits_.max_bytes))
          break;
        bytes += size;
        prompt += lines[i].prompt;
        completion += lines[i].completion;
        batch_ids.push_back(lines[i].id);
        batch_lines.push_back(std::move(lines[i].line));
        ++i;
      }
      if (batch_lines.size() == 1 && bytes > limits_.max_bytes) {
        Fail(batch_ids[0],
             InvalidArgument(fmt::format("the request is {} bytes, more than a batch may hold ({})",
                                         bytes, limits_.max_bytes)));
        continue;
      }
      if (budget_) {
        if (Status s = budget_(role_, prompt, completion); !s.ok()) {
          for (const auto& id : batch_ids) Fail(id, s);
          continue;
        }
      }
      if (!options_.file_only.empty()) {
        WriteFile(batch_ids, batch_lines);
        continue;
      }
      BatchRecord rec;
      rec.run_id = run_id_;
      rec.role = role_;
      rec.provider = api_.BatchProvider();
      rec.state = "submitting";
      rec.custom_ids = batch_ids;
      rec.resubmits = Resubmits(batch_ids.front());
      // In the store before anything is sent: a kill from here on leaves a record to find.
      if (Status s = store_.PutBatch(rec); !s.ok()) {
        for (const auto& id : batch_ids) Fail(id, s);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& id : batch_ids) {
        auto w = waiting_.find(id);
        if (w != waiting_.end()) w->second.batch = rec.id;
      }
      LogInfo("batch: {} requests ({} bytes) for {} gathered", rec.custom_ids.size(), bytes, role_);
      Active a;
      a.rec = std::move(rec);
      a.lines = std::move(batch_lines);
      a.next = Clock::now();
      a.started = Clock::now();
      a.interval = options_.poll;
      int64_t id = a.rec.id;
      active_.emplace(id, std::move(a));
    }
    cv_.notify_all();
  }

  int Resubmits(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto w = waiting_.find(id);
    return w == waiting_.end() ? 0 : w->second.resubmits;
  }

  // --batch-file-only: the batch file is written and its calls are left unsent.
  void WriteFile(const std::vector<std::string>& ids, const std::vector<Json>& lines) {
    std::filesystem::create_directories(options_.file_only);
    std::string path = fmt::format("{}/run{}-{}-{}.jsonl", options_.file_only, run_id_,
                                   role_ == "model" ? "model" : "judge", ++files_written_);
    std::string text;
    for (const auto& l : lines) text += DumpJson(l) + "\n";
    Status s = WriteWhole(path, text);
    Status outcome = s.ok() ? Cancelled(fmt::format("written to {} (--batch-file-only)", path)) : s;
    if (s.ok()) LogInfo("{}", fmt::format("batch: {} requests written to {}", lines.size(), path));
    for (const auto& id : ids) Fail(id, outcome);
  }

  // One step of batch `bid`: submission, a status poll, a download or a cancel.
  void Step(int64_t bid) {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = active_.find(bid);
    if (it == active_.end()) return;
    Active& a = it->second;
    std::optional<HttpRequest> request;
    StepKind what;
    if (a.rec.state == "submitting") {
      Result<std::optional<HttpRequest>> r = api_.SubmitStep(a.lines, a.rec.info);
      if (!r || !r->has_value()) {
        lock.unlock();
        if (!r) return FailBatch(bid, r.error());
        return Submitted(bid);
      }
      request = std::move(**r);
      what = kSubmit;
    } else if (a.cancel) {
      request = api_.CancelRequest(a.rec.info);
      what = kCancel;
    } else if (a.rec.state == "ended") {
      if (a.downloaded >= a.downloads.size()) {
        lock.unlock();
        return Collect(bid);
      }
      request = a.downloads[a.downloaded];
      what = kDownload;
    } else {
      if (Clock::now() - a.started > options_.max_wait) {
        lock.unlock();
        return FailBatch(
            bid, Status(StatusCode::kDeadlineExceeded,
                        fmt::format("batch {} did not end within --max-wait ({} s); it stays "
                                    "recorded: plumb resume --retry-errors waits on it again",
                                    a.rec.info.value("id", ""), options_.max_wait.count() / 1000)));
      }
      request = api_.StatusRequest(a.rec.info);
      what = kStatus;
    }
    ++inflight_;
    lock.unlock();
    auto response = std::make_shared<HttpResponse>();
    const BatchApi& api = api_;
    static constexpr const char* kWhat[] = {"submitting the batch", "polling the batch",
                                            "downloading the batch results",
                                            "cancelling the batch"};
    std::string what_text = kWhat[what];
    scheduler_.Submit(
        std::move(*request),
        [response, &api, what_text](const HttpResponse& r) -> Status {
          *response = r;
          if (r.status >= 200 && r.status < 300) return Status();
          return api.BatchHttpError(r, what_text);
        },
        [this, bid, what, response](const Status& status, const CallReport&) {
          Answer(bid, what, status, *response);
          std::lock_guard<std::mutex> done_lock(mu_);
          --inflight_;
          cv_.notify_all();
        });
  }

  void Answer(int64_t bid, StepKind what, const Status& status, const HttpResponse& response) {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = active_.find(bid);
    if (it == active_.end()) return;
    Active& a = it->second;
    a.busy = false;
    if (status.code() == StatusCode::kCancelled) return;  // the run stops; the batch stays
    if (what == kCancel) {
      a.cancel = false;
      if (!status.ok()) LogWarning("batch: cancel failed: {}", status.message());
      a.rec.state = "cancelling";
      PutLocked(a);
      a.next = Clock::now();
      cv_.notify_all();
      return;
    }
    if (!status.ok()) {
      if (what == kSubmit || IsFatalForRun(status.code())) {
        lock.unlock();
        return FailBatch(bid, status);
      }
      // A poll or download that failed after the scheduler's retries: try again later.
      LogWarning("{}", fmt::format("batch {}: {} (trying again)", a.rec.info.value("id", ""),
                                   status.message()));
      Backoff(a);
      return;
    }
    if (what == kSubmit) {
      Status s = Guarded("submit reply", [&] { return api_.ReadSubmitStep(response, a.rec.info); });
      if (!s.ok()) {
        lock.unlock();
        return FailBatch(bid, s);
      }
      if (a.rec.info.contains("id")) {
        // Created: kept before it is waited on.
        a.rec.state = "submitted";
        a.lines.clear();
        a.lines.shrink_to_fit();
        PutLocked(a);
        LogInfo("{}", fmt::format("batch {} submitted ({} requests)",
                                  a.rec.info["id"].get<std::string>(), a.rec.custom_ids.size()));
        a.next = Clock::now() + a.interval;
      } else {
        a.next = Clock::now();
      }
      cv_.notify_all();
      return;
    }
    if (what == kStatus) {
      Result<BatchProgress> p =
          Guarded("status", [&] { return api_.ReadStatus(response, a.rec.info); });
      if (!p) {
        LogWarning("{}", fmt::format("batch: unreadable status: {}", p.error().message()));
        Backoff(a);
        return;
      }
      bool changed = p->state != a.progress.state;
      a.progress = *p;
      if (!p->ended) {
        if (changed) PutLocked(a);
        Backoff(a);
        return;
      }
      if (p->failed) {
        lock.unlock();
        return FailBatch(bid, Unavailable(fmt::format("batch {} failed at the provider: {}",
                                                      a.rec.info.value("id", ""), p->message)));
      }
      a.rec.state = "ended";
      a.rec.info["provider_state"] = p->state;
      PutLocked(a);
      a.last_status = response.body;
      a.downloads = api_.ResultRequests(a.rec.info);
      a.downloaded = 0;
      a.results.clear();
      a.next = Clock::now();
      cv_.notify_all();
      return;
    }
    // A download.
    Result<std::vector<BatchLineResult>> lines =
        Guarded("results", [&] { return api_.ReadResults(response.body, a.rec.info); });
    if (!lines) {
      LogWarning("{}", fmt::format("batch: unreadable results: {}", lines.error().message()));
      Backoff(a);
      return;
    }
    for (auto& l : *lines) a.results.push_back(std::move(l));
    ++a.downloaded;
    a.next = Clock::now();
    cv_.notify_all();
  }

  void Backoff(Active& a) {
    a.next = Clock::now() + a.interval;
    a.interval =
        std::min(options_.max_poll,
                 std::chrono::milliseconds(
                     static_cast<int64_t>(static_cast<double>(a.interval.count()) * 1.5) + 1));
    cv_.notify_all();
  }

  void Submitted(int64_t bid) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(bid);
    if (it == active_.end()) return;
    it->second.rec.state = "submitted";
    PutLocked(it->second);
    it->second.next = Clock::now() + it->second.interval;
    cv_.notify_all();
  }

  // Every result of an ended batch goes to its calls.
  void Collect(int64_t bid) {
    std::vector<std::pair<std::vector<Done>, Result<Completion>>> answers;
    std::vector<std::string> again;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = active_.find(bid);
      if (it == active_.end()) return;
      Active& a = it->second;
      if (a.downloads.empty()) {
        Result<std::vector<BatchLineResult>> inline_results =
            Guarded("results", [&] { return api_.ReadResults(a.last_status, a.rec.info); });
        if (inline_results) a.results = std::move(*inline_results);
      }
      std::string provider_state = a.rec.info.value("provider_state", "");
      std::string batch = a.rec.info.value("id", "");
      std::set<std::string> seen;
      Json failed = a.rec.info.value("failed_ids", Json::array());
      auto answer = [&](const std::string& id, BatchLineResult::Kind kind, Result<Completion> r) {
        auto w = waiting_.find(id);
        bool expired = kind == BatchLineResult::Kind::kExpired;
        if (!r.has_value() || expired) {
          failed.push_back(id);
          known_.erase(id);
        }
        if (w == waiting_.end()) {
          // Its call has not come yet (a resumed session collects what an earlier one
          // submitted): kept for it. An expired request is sent again when it comes.
          if (!expired) early_.insert_or_assign(id, std::move(r));
          return;
        }
        if (w->second.batch != bid) return;
        if (expired && w->second.resubmits == 0) {
          // Once more, in a new batch; then it is an error.
          ++w->second.resubmits;
          w->second.batch = 0;
          again.push_back(id);
          return;
        }
        if (expired)
          r = Status(StatusCode::kDeadlineExceeded,
                     fmt::format("expired in batch {} (already resubmitted once)", batch));
        answers.emplace_back(std::move(w->second.dones), std::move(r));
        waiting_.erase(w);
      };
      for (auto& l : a.results) {
        if (!seen.insert(l.custom_id).second) continue;
        switch (l.kind) {
          case BatchLineResult::Kind::kOk:
            l.completion.batched = true;
            answer(l.custom_id, l.kind, std::move(l.completion));
            break;
          case BatchLineResult::Kind::kError:
            answer(l.custom_id, l.kind, l.error);
            break;
          case BatchLineResult::Kind::kExpired:
            answer(l.custom_id, l.kind, Status(StatusCode::kDeadlineExceeded, "expired"));
            break;
          case BatchLineResult::Kind::kCancelled:
            answer(l.custom_id, l.kind,
                   Status(StatusCode::kAborted,
                          fmt::format("cancelled at the provider in batch {}", batch)));
            break;
        }
      }
      // Requests of the batch without a result line.
      for (const auto& id : a.rec.custom_ids) {
        if (seen.count(id)) continue;
        if (provider_state.find("xpire") != std::string::npos) {
          answer(id, BatchLineResult::Kind::kExpired,
                 Status(StatusCode::kDeadlineExceeded, "expired"));
        } else if (provider_state.find("ancel") != std::string::npos) {
          answer(id, BatchLineResult::Kind::kCancelled,
                 Status(StatusCode::kAborted,
                        fmt::format("cancelled at the provider in batch {}", batch)));
        } else {
          answer(
              id, BatchLineResult::Kind::kError,
              Unavailable(fmt::format("batch {} ended without a result for this request", batch)));
        }
      }
      a.rec.info["failed_ids"] = std::move(failed);
      a.rec.state = "collected";
      a.results.clear();
      a.last_status.clear();
      PutLocked(a);
      if (!again.empty()) {
        queue_.insert(queue_.end(), again.begin(), again.end());
        last_arrival_ = Clock::now() - options_.gather;  // at once
      }
    }
    for (auto& [dones, r] : answers)
      for (auto& d : dones) d(r, CallReport{1, 0, 0});
    cv_.notify_all();
  }

  // Ends every call of a batch with `s`; the batch is marked failed.
  void FailBatch(int64_t bid, const Status& s) {
    std::vector<std::vector<Done>> dones;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = active_.find(bid);
      if (it == active_.end()) return;
      Active& a = it->second;
      // A batch that timed out waiting stays as it is (a later session may wait on it).
      if (s.code() != StatusCode::kDeadlineExceeded) a.rec.state = "failed";
      PutLocked(a);
      for (const auto& id : a.rec.custom_ids) {
        auto w = waiting_.find(id);
        if (w == waiting_.end() || w->second.batch != bid) continue;
        dones.push_back(std::move(w->second.dones));
        waiting_.erase(w);
      }
      a.rec.state = a.rec.state == "failed" ? "failed" : "collected";
    }
    LogWarning("batch: {}", s.message());
    for (auto& ds : dones)
      for (auto& d : ds) d(s, CallReport{});
  }

  void Fail(const std::string& id, const Status& s) {
    std::vector<Done> dones;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto w = waiting_.find(id);
      if (w == waiting_.end()) return;
      dones = std::move(w->second.dones);
      waiting_.erase(w);
    }
    for (auto& d : dones) d(s, CallReport{});
  }

  void PutLocked(Active& a) {
    if (Status s = store_.PutBatch(a.rec); !s.ok())
      LogWarning("batch: cannot record batch state: {}", s.message());
  }

  Backend& inner_;
  const BatchApi& api_;
  HttpScheduler& scheduler_;
  Store& store_;
  int64_t run_id_;
  std::string role_;
  BatchOptions options_;
  BatchBudget budget_;
  BatchLimits limits_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Results of collected batches whose calls had not come yet, by custom id.
  std::unordered_map<std::string, Result<Completion>> early_;
  bool stop_ = false, cancelled_ = false;
  int inflight_ = 0;  // scheduler requests whose callback has not finished
  std::unordered_map<std::string, Waiter> waiting_;
  std::vector<std::string> queue_;
  Clock::time_point last_arrival_;
  std::map<int64_t, Active> active_;  // batches this session waits on
  std::map<int64_t, Active> stored_;  // batches of earlier sessions, until a call needs one
  std::unordered_map<std::string, int64_t> known_;
  std::unordered_map<std::string, BatchLineResult> from_file_;  // --batch-results
  int files_written_ = 0;
  std::thread thread_;
};

}  // namespace

Result<std::shared_ptr<Backend>> MakeBatchingBackend(Backend& inner, HttpScheduler& scheduler,
                                                     Store& store, int64_t run_id, std::string role,
                                                     const BatchOptions& options,
                                                     BatchBudget budget) {
  const BatchApi* api = AsBatchApi(inner);
  if (api == nullptr) {
    return InvalidArgument(fmt::format(
        "backend '{}' has no batch API: --batch works with openai, anthropic and google",
        inner.Id()));
  }
  auto b = std::make_shared<BatchingBackend>(inner, *api, scheduler, store, run_id, std::move(role),
                                             options, std::move(budget));
  PLUMB_RETURN_IF_ERROR(b->Start());
  return std::shared_ptr<Backend>(std::move(b));
}

BatchActivity CurrentBatchActivity() {
  std::lock_guard<std::mutex> lock(g_live_mu);
  BatchActivity sum;
  for (const auto* b : g_live) {
    BatchActivity a = b->Activity();
    sum.batches += a.batches;
    sum.waiting += a.waiting;
    sum.requests += a.requests;
    sum.done += a.done;
    if (!a.states.empty()) sum.states += (sum.states.empty() ? "" : ", ") + a.states;
    sum.waited_s = std::max(sum.waited_s, a.waited_s);
  }
  return sum;
}

}  // namespace plumb
