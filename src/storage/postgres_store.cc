// The PostgreSQL results store: the same contract as the SQLite store (plumb/store.h) over
// libpq. Three connections: the writer thread's (batched transactions and heartbeats), one for
// every other call, and one for cache lookups, so that neither waits for the other.
#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "plumb/batch.h"
#include "plumb/log.h"
#include "plumb/store.h"
#include "plumb/text.h"
#include "storage/lease.h"
#include "storage/postgres_conn.h"
#include "storage/postgres_rows.h"
#include "storage/postgres_schema.h"
#include "storage/postgres_workers.h"
#include "storage/write_queue.h"

namespace plumb {
namespace {

using storage::InsertRows;
using storage::InTransaction;
using storage::kBegin;
using storage::PgConn;
using storage::PgParams;
using storage::PgResult;
using storage::WriteJob;

// A batch that failed on a lost connection or a deadlock is tried again: the writes are
// idempotent (upserts), so a batch whose COMMIT was acknowledged too late is harmless.
constexpr int kWriteAttempts = 3;
constexpr std::chrono::milliseconds kWriteRetryDelay{250};

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string url, std::unique_ptr<PgConn> main, std::unique_ptr<PgConn> writer)
      : url_(std::move(url)),
        main_(std::move(main)),
        writer_(std::move(writer)),
        where_(main_->where()),
        queue_([this](const std::vector<WriteJob>& batch) { return WriteBatch(batch); },
               [this](const std::set<int64_t>& held, const std::set<int64_t>& joined) {
                 return Heartbeat(held, joined);
               }) {
    if (writer_) queue_.Start();
  }

  ~PostgresStore() override {
    queue_.Stop();
    // Leases still held (a command that stopped early) are given up, so the run reads back as
    // interrupted at once rather than when the heartbeat grows old, and its samples go back to
    // the other workers.
    for (int64_t id : queue_.TakeJoined()) (void)Leave(id);
    for (int64_t id : queue_.TakeHeld()) (void)ClearOwner(id);
  }

  Result<int64_t> CreateRun(const RunRecord& run, const std::vector<Item>& items) override {
    return Locked<int64_t>(
        [&](PgConn& c) -> Result<int64_t> {
          int64_t id = 0;
          Status s = InTransaction(c, kBegin, [&]() -> Status {
            PgParams p;
            p.Add(run.started_at).Add(run.status).Add(run.plumb_version).Add(run.git_sha);
            p.Add(run.suite_id).Add(run.suite_version).Add(run.suite_hash).Add(run.model_spec);
            p.Add(run.backend_id).AddJson(run.params).Add(static_cast<int64_t>(run.seed));
            p.Add(run.concurrency).Add(run.epochs).Add(run.limit).Add(run.n_samples);
            p.AddJsonText(Redact(DumpJson(run.settings))).Add(run.primary_metric);
            p.Add(run.higher_is_better).Add(run.parent_run_id).Add(storage::SelfOwner());
            p.Add(storage::UnixNow()).Add(run.uuid.empty() ? storage::NewRunUuid() : run.uuid);
            PLUMB_ASSIGN_OR_RETURN(
                PgResult r,
                c.Exec(
                    "INSERT INTO runs (started_at, status, plumb_version, git_sha, suite_id, "
                    "suite_version, suite_hash, model_spec, backend_id, params, seed, concurrency, "
                    "epochs, item_limit, n_samples, settings, primary_metric, higher_is_better, "
                    "parent_run_id, owner, heartbeat_at, uuid) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) "
                    "RETURNING id",
                    p));
            id = r.Int64(0, 0);
            PLUMB_RETURN_IF_ERROR(storage::PostgresJoinRun(c, id));  // the first worker
            return InsertRows(
                c,
                "INSERT INTO items (run_id, item_id, category, line, fields, metadata, "
                "scored)",
                "", 7, {}, items, [&](PgParams& q, const Item& item) {
                  q.Add(id).Add(item.id).Add(item.category).Add(item.line);
                  q.AddJson(item.fields).AddJson(item.metadata).Add(item.scored);
                });
          });
          if (!s.ok()) return s;
          queue_.Hold(id);
          queue_.Join(id);
          return id;
        },
        /*retry=*/false);
  }

  Status AcquireRun(int64_t run_id) override {
    Status taken = Locked<bool>([&](PgConn& c) -> Result<bool> {
                     // FOR UPDATE: two processes acquiring at once are serialised here, so only
                     // one wins.
                     Status s = InTransaction(c, kBegin, [&] { return TakeOwnership(c, run_id); });
                     if (!s.ok()) return s;
                     return true;
                   }).status();
    if (!taken.ok()) return taken;
    queue_.Hold(run_id);
    return Status();
  }

  Status ReleaseRun(int64_t run_id) override {
    queue_.Drop(run_id);
    return ClearOwner(run_id);
  }

  Status JoinRun(int64_t run_id) override {
    Status joined = Locked<bool>([&](PgConn& c) -> Result<bool> {
                      PLUMB_RETURN_IF_ERROR(storage::PostgresJoinRun(c, run_id));
                      return true;
                    }).status();
    if (!joined.ok()) return joined;
    queue_.Join(run_id);
    return Status();
  }

  Status LeaveRun(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    queue_.Leave(run_id);
    return Leave(run_id);
  }

  Result<SampleClaim> ClaimSamples(int64_t run_id, int64_t n) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    // A claim that lost a deadlock or serialization race with another worker was rolled back:
    // it is made again.
    Result<SampleClaim> claim = Aborted("no claim made");
    for (int attempt = 1; attempt <= kWriteAttempts; ++attempt) {
      if (attempt > 1) std::this_thread::sleep_for(kWriteRetryDelay * (attempt - 1));
      claim = Locked<SampleClaim>(
          [&](PgConn& c) { return storage::PostgresClaimSamples(c, run_id, n); });
      if (claim || claim.error().code() != StatusCode::kAborted) break;
    }
    return claim;
  }

  Result<FinishClaim> ClaimFinish(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    return Locked<FinishClaim>([&](PgConn& c) { return storage::PostgresClaimFinish(c, run_id); });
  }

  Result<std::vector<std::string>> LiveWorkers(int64_t run_id) const override {
    return Locked<std::vector<std::string>>(
        [&](PgConn& c) { return storage::PostgresLiveWorkers(c, run_id); });
  }

  void Enqueue(int64_t run_id, SampleResult result) override {
    queue_.PushResult(run_id, std::move(result));
  }

  void EnqueuePlanned(int64_t run_id, std::vector<PlannedSample> samples) override {
    queue_.PushPlanned(run_id, std::move(samples));
  }

  void CachePut(const std::string& key, const std::string& backend, const Completion& c) override {
    queue_.PushCache(key, backend, c);
  }

  Result<std::optional<Completion>> CacheGet(const std::string& key) const override {
    std::lock_guard<std::mutex> lock(cache_mu_);
    PgParams p;
    p.Add(key);
    auto lookup = [&]() -> Result<PgResult> {
      if (!cache_conn_ || cache_conn_->Broken()) {
        PLUMB_ASSIGN_OR_RETURN(cache_conn_, PgConn::Connect(url_, /*read_only=*/true));
      }
      return cache_conn_->Exec("SELECT completion FROM cache WHERE key = $1", p);
    };
    Result<PgResult> found = lookup();
    if (!found && cache_conn_ && cache_conn_->Broken()) found = lookup();  // a lost connection
    PLUMB_ASSIGN_OR_RETURN(PgResult r, std::move(found));
    if (r.rows() == 0) return std::optional<Completion>();
    return Catching<std::optional<Completion>>([&]() -> Result<std::optional<Completion>> {
      Completion c = CompletionFromJson(r.JsonAt(0, 0));
      c.cached = true;
      return std::optional<Completion>(std::move(c));
    });
  }

  Status Flush() override { return queue_.Flush(); }

  Status LastWriteError() const override { return queue_.LastError(); }

  Status FinishRun(int64_t run_id, const std::string& status, const std::string& error,
                   const std::string& finished_at) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    PgParams p;
    p.Add(status).Add(status == "queued"     ? std::string()
                      : finished_at.empty() ? NowIso8601()
                                            : finished_at);
    p.Add(Redact(error));
    p.Add(run_id);
    PLUMB_RETURN_IF_ERROR(Command("UPDATE runs SET status = $1, finished_at = $2, error = $3, "
                                  "owner = '' WHERE id = $4",
                                  p)
                              .status());
    queue_.Drop(run_id);
    return Status();
  }

  Result<Json> GetUsage(int64_t run_id) const override {
    return Locked<Json>([&](PgConn& c) -> Result<Json> {
      // Columns 1..7 of a row: calls, cached, tokens, and of which through provider batches.
      auto counts = [](const PgResult& r, int row) {
        Json out = {{"calls", r.Int64(row, 1)},
                    {"cached", r.Int64(row, 2)},
                    {"prompt_tokens", r.Int64(row, 3)},
                    {"completion_tokens", r.Int64(row, 4)}};
        if (r.Int64(row, 5) > 0) {
          out["batched"] = {{"calls", r.Int64(row, 5)},
                            {"prompt_tokens", r.Int64(row, 6)},
                            {"completion_tokens", r.Int64(row, 7)}};
        }
        return out;
      };
      PgParams p;
      p.Add(run_id);
      PLUMB_ASSIGN_OR_RETURN(
          PgResult m,
          c.Exec("SELECT '', count(*) FILTER (WHERE NOT cached), count(*) FILTER (WHERE cached), "
                 "coalesce(sum(prompt_tokens) FILTER (WHERE NOT cached), 0), "
                 "coalesce(sum(completion_tokens) FILTER (WHERE NOT cached), 0), "
                 "count(*) FILTER (WHERE NOT cached AND batched), "
                 "coalesce(sum(prompt_tokens) FILTER (WHERE NOT cached AND batched), 0), "
                 "coalesce(sum(completion_tokens) FILTER (WHERE NOT cached AND batched), 0) "
                 "FROM responses WHERE run_id = $1 AND status = 'ok'",
                 p));
      Json usage = {{"judges", Json::object()}, {"model", counts(m, 0)}};
      // Judgments carry their own tokens; a panel's aggregate row does not, so nothing counts
      // twice. A flag counts as set when it is true (or 1, as SQLite's json_extract reads it).
      PLUMB_ASSIGN_OR_RETURN(
          PgResult j,
          c.Exec("SELECT judge, count(*) FILTER (WHERE NOT cached), count(*) FILTER (WHERE "
                 "cached), coalesce(sum(prompt_tokens) FILTER (WHERE NOT cached), 0)::bigint, "
                 "coalesce(sum(completion_tokens) FILTER (WHERE NOT cached), 0)::bigint, "
                 "count(*) FILTER (WHERE batched), "
                 "coalesce(sum(prompt_tokens) FILTER (WHERE batched), 0)::bigint, "
                 "coalesce(sum(completion_tokens) FILTER (WHERE batched), 0)::bigint "
                 "FROM (SELECT coalesce(details->>'judge', '') AS judge, "
                 "coalesce(details->>'cached', '0') IN ('1', 'true') AS cached, "
                 "coalesce(details->>'batched', '0') IN ('1', 'true') AS batched, "
                 "(details->>'prompt_tokens')::numeric AS prompt_tokens, "
                 "(details->>'completion_tokens')::numeric AS completion_tokens "
                 "FROM scores WHERE run_id = $1 AND details->>'prompt_tokens' IS NOT NULL) AS j "
                 "GROUP BY judge ORDER BY judge",
                 p));
      for (int i = 0; i < j.rows(); ++i) usage["judges"][j.Text(i, 0)] = counts(j, i);
      return usage;
    });
  }

  Status PutBatch(BatchRecord& b) override {
    std::string now = NowIso8601();
    PgParams p;
    if (b.id == 0) {
      p.Add(b.run_id).Add(b.role).Add(b.provider).Add(b.state).AddJson(b.info);
      p.AddJson(Json(b.custom_ids)).Add(b.resubmits).Add(now).Add(now);
      PLUMB_ASSIGN_OR_RETURN(
          PgResult r, Command("INSERT INTO batches (run_id, role, provider, state, info, "
                              "custom_ids, resubmits, created_at, updated_at) VALUES ($1, $2, $3, "
                              "$4, $5, $6, $7, $8, $9) RETURNING id",
                              p, /*retry=*/false));
      b.id = r.Int64(0, 0);
      b.created_at = now;
    } else {
      p.Add(b.state).AddJson(b.info).Add(b.resubmits).Add(now).Add(b.id);
      PLUMB_RETURN_IF_ERROR(Command("UPDATE batches SET state = $1, info = $2, resubmits = $3, "
                                    "updated_at = $4 WHERE id = $5",
                                    p)
                                .status());
    }
    b.updated_at = now;
    return Status();
  }

  Result<std::vector<BatchRecord>> GetBatches(int64_t run_id) const override {
    PgParams p;
    p.Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(PgResult r,
                           Query(fmt::format("SELECT {} FROM batches WHERE run_id = $1 ORDER BY id",
                                             storage::kBatchColumns),
                                 p));
    std::vector<BatchRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(storage::BatchFromRow(r, i));
    return out;
  }

  Status PutUsage(int64_t run_id, const Json& usage) override {
    PgParams p;
    p.AddJson(usage).Add(run_id);
    return Command("UPDATE runs SET usage = $1 WHERE id = $2", p).status();
  }

  Status ReopenRun(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    PgParams p;
    p.Add(run_id);
    return Command(
               "UPDATE runs SET status = 'running', finished_at = '', error = '', finisher = '' "
               "WHERE id = $1",
               p)
        .status();
  }

  Result<int64_t> ResetErroredSamples(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    return Locked<int64_t>([&](PgConn& c) -> Result<int64_t> {
      int64_t n = 0;
      PgParams p;
      p.Add(run_id);
      Status s = InTransaction(c, kBegin, [&]() -> Status {
        for (const char* table : {"responses", "scores"}) {
          PLUMB_RETURN_IF_ERROR(
              c.Exec(fmt::format("DELETE FROM {} AS t USING samples AS s WHERE t.run_id = $1 AND "
                                 "s.run_id = $1 AND s.status = 'error' AND t.item_id = s.item_id "
                                 "AND t.epoch = s.epoch",
                                 table),
                     p)
                  .status());
        }
        PLUMB_ASSIGN_OR_RETURN(PgResult r, c.Exec("UPDATE samples SET status = 'pending' WHERE "
                                                  "run_id = $1 AND status = 'error'",
                                                  p));
        n = r.affected();
        return Status();
      });
      if (!s.ok()) return s;
      return n;
    });
  }

  Status PutMetrics(int64_t run_id, const std::vector<Metric>& metrics) override {
    return Locked<bool>([&](PgConn& c) -> Result<bool> {
             PgParams p;
             p.Add(run_id);
             Status s = InTransaction(c, kBegin, [&]() -> Status {
               PLUMB_RETURN_IF_ERROR(c.Exec("DELETE FROM metrics WHERE run_id = $1", p).status());
               return InsertRows(c,
                                 "INSERT INTO metrics (run_id, name, category, value, ci_low, "
                                 "ci_high, n, k, ci_method, details)",
                                 "", 10, {}, metrics, [&](PgParams& q, const Metric& m) {
                                   q.Add(run_id).Add(m.name).Add(m.category).Add(m.value);
                                   q.Add(m.ci_low).Add(m.ci_high).Add(m.n).Add(m.k);
                                   q.Add(m.ci_method).AddJson(m.details);
                                 });
             });
             if (!s.ok()) return s;
             return true;
           })
        .status();
  }

  Result<RunRecord> GetRun(int64_t run_id) const override {
    PgParams p;
    p.Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(auto runs, QueryRuns("WHERE id = $1", p));
    if (runs.empty()) return NotFound(fmt::format("run {} not found in '{}'", run_id, where_));
    return runs.front();
  }

  Result<int64_t> LatestRunId() const override {
    PLUMB_ASSIGN_OR_RETURN(PgResult r, Query("SELECT max(id) FROM runs", PgParams()));
    if (r.rows() == 0 || r.IsNull(0, 0)) {
      return NotFound(fmt::format("no runs in '{}' yet (start one with plumb run)", where_));
    }
    return r.Int64(0, 0);
  }

  Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) const override {
    std::string where = "WHERE true";
    PgParams p;
    if (!filter.suite_id.empty()) {
      p.Add(filter.suite_id);
      where += fmt::format(" AND suite_id = ${}", p.size());
    }
    if (!filter.status.empty()) {
      p.Add(filter.status);
      where += fmt::format(" AND status = ${}", p.size());
    }
    return QueryRuns(where + " ORDER BY id", p);
  }

  Result<std::vector<SampleRecord>> GetSamples(int64_t run_id, bool with_responses, int64_t offset,
                                               int64_t limit) const override {
    return Locked<std::vector<SampleRecord>>([&](PgConn& c) {
      return storage::PostgresReadSamples(c, run_id, with_responses, offset, limit);
    });
  }

  Status ScanSamples(int64_t run_id, const SampleScan& what,
                     const std::function<bool(SampleRecord&&)>& visit) const override {
    // Tried again after a lost connection only while nothing was visited yet.
    bool visited = false;
    auto counted = [&](SampleRecord&& s) {
      visited = true;
      return visit(std::move(s));
    };
    auto scan = [&](PgConn& c) -> Result<bool> {
      PLUMB_RETURN_IF_ERROR(storage::PostgresScanSamples(c, run_id, what, counted));
      return true;
    };
    Status s = Locked<bool>(scan, /*retry=*/false).status();
    if (s.code() == StatusCode::kUnavailable && !visited) s = Locked<bool>(scan, false).status();
    return s;
  }

  Result<SampleCounts> CountSamples(int64_t run_id) const override {
    PgParams p;
    p.Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r,
        Query("SELECT status, count(*) FROM samples WHERE run_id = $1 GROUP BY status", p));
    SampleCounts c;
    for (int i = 0; i < r.rows(); ++i) {
      std::string status = r.Text(i, 0);
      int64_t n = r.Int64(i, 1);
      c.planned += n;
      if (status == "pending") c.pending = n;
      if (status == "done") c.done = n;
      if (status == "error") c.error = n;
    }
    return c;
  }

  Result<std::vector<Metric>> GetMetrics(int64_t run_id) const override {
    PgParams p;
    p.Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r, Query(fmt::format("SELECT {} FROM metrics WHERE run_id = $1 ORDER BY category "
                                      "<> '', name, category",
                                      storage::kMetricColumns),
                          p));
    std::vector<Metric> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(storage::MetricFromRow(r, i));
    return out;
  }

  Result<std::vector<Item>> GetItems(int64_t run_id) const override {
    PgParams p;
    p.Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r,
        Query(fmt::format("SELECT {} FROM items WHERE run_id = $1 ORDER BY line, item_id",
                          storage::kItemColumns),
              p));
    std::vector<Item> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(storage::ItemFromRow(r, i));
    return out;
  }

  Status SetTag(const std::string& name, int64_t run_id) override {
    PgParams p;
    p.Add(name).Add(NowIso8601()).Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r, Command("INSERT INTO tags (name, suite_id, run_id, created_at) SELECT $1, "
                            "suite_id, id, $2 FROM runs WHERE id = $3 ON CONFLICT (name, "
                            "suite_id) DO UPDATE SET run_id = EXCLUDED.run_id, created_at = "
                            "EXCLUDED.created_at",
                            p));
    if (r.affected() == 0) return NotFound(fmt::format("run {} not found in '{}'", run_id, where_));
    return Status();
  }

  Result<std::vector<TagRecord>> ListTags() const override {
    PLUMB_ASSIGN_OR_RETURN(PgResult r, Query("SELECT name, suite_id, run_id, created_at FROM tags "
                                             "ORDER BY name, suite_id",
                                             PgParams()));
    std::vector<TagRecord> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back(TagRecord{r.Text(i, 0), r.Text(i, 1), r.Int64(i, 2), r.Text(i, 3)});
    return out;
  }

  Result<std::optional<std::vector<Metric>>> GetBaseline(const std::string& key) const override {
    PgParams p;
    p.Add(key);
    PLUMB_ASSIGN_OR_RETURN(PgResult r, Query("SELECT metrics FROM baselines WHERE key = $1", p));
    if (r.rows() == 0) return std::optional<std::vector<Metric>>();
    return Catching<std::optional<std::vector<Metric>>>(
        [&]() -> Result<std::optional<std::vector<Metric>>> {
          std::vector<Metric> out;
          for (const auto& j : r.JsonAt(0, 0)) out.push_back(MetricFromJson(j));
          return std::optional<std::vector<Metric>>(std::move(out));
        });
  }

  Status PutBaseline(const std::string& key, const std::string& suite_id,
                     const std::string& model_spec, const std::vector<Metric>& metrics) override {
    Json list = Json::array();
    for (const auto& m : metrics) list.push_back(MetricToJson(m));
    PgParams p;
    p.Add(key).Add(suite_id).Add(model_spec).AddJson(list).Add(NowIso8601());
    return Command(
               "INSERT INTO baselines (key, suite_id, model_spec, metrics, created_at) VALUES "
               "($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET suite_id = "
               "EXCLUDED.suite_id, model_spec = EXCLUDED.model_spec, metrics = "
               "EXCLUDED.metrics, created_at = EXCLUDED.created_at",
               p)
        .status();
  }

 private:
  // Exceptions of the JSON library (a malformed stored document) become kDataLoss here.
  template <typename T, typename Fn>
  Result<T> Catching(Fn fn) const {
    try {
      return fn();
    } catch (const std::exception& e) {
      return DataLoss(fmt::format("results database '{}': {}", where_, e.what()));
    }
  }

  // Runs `fn` on the main connection under its lock. A connection found lost (the server
  // restarted, an idle timeout) is made again and `fn` run once more, unless `retry` is false: a
  // statement that inserts a new row might have committed before the connection went.
  template <typename T, typename Fn>
  Result<T> Locked(Fn fn, bool retry = true) const {
    std::lock_guard<std::mutex> lock(main_mu_);
    if (main_->Broken()) (void)main_->Reset();
    Result<T> r = Catching<T>([&]() -> Result<T> { return fn(*main_); });
    if (r.has_value() || !retry || r.error().code() != StatusCode::kUnavailable ||
        !main_->Broken() || !main_->Reset()) {
      return r;
    }
    return Catching<T>([&]() -> Result<T> { return fn(*main_); });
  }

  Result<PgResult> Query(const std::string& sql, const PgParams& p) const {
    return Locked<PgResult>([&](PgConn& c) { return c.Exec(sql, p); });
  }
  Result<PgResult> Command(const std::string& sql, const PgParams& p, bool retry = true) {
    return Locked<PgResult>([&](PgConn& c) { return c.Exec(sql, p); }, retry);
  }

  // Inside a transaction: the lease of the run for this process, unless a live one holds it.
  Status TakeOwnership(PgConn& c, int64_t run_id) {
    PgParams p;
    p.Add(run_id);
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r, c.Exec("SELECT owner, heartbeat_at FROM runs WHERE id = $1 FOR UPDATE", p));
    if (r.rows() == 0) return NotFound(fmt::format("run {} not found in '{}'", run_id, where_));
    std::string owner = r.Text(0, 0);
    double heartbeat = r.Double(0, 1);
    double now = storage::UnixNow();
    if (owner != storage::SelfOwner() && storage::OwnerAlive(owner, heartbeat, now)) {
      return Aborted(fmt::format(
          "run {} is being executed by {} (last heartbeat {:.0f} s ago): wait for it to finish, "
          "or stop it (Ctrl-C) and resume then",
          run_id, storage::DescribeOwner(owner), std::max(0.0, now - heartbeat)));
    }
    PgParams u;
    u.Add(storage::SelfOwner()).Add(now).Add(run_id);
    return c.Exec("UPDATE runs SET owner = $1, heartbeat_at = $2 WHERE id = $3", u).status();
  }

  Status ClearOwner(int64_t run_id) {
    PgParams p;
    p.Add(run_id).Add(storage::SelfOwner());
    return Command("UPDATE runs SET owner = '' WHERE id = $1 AND owner = $2", p).status();
  }

  bool HasLiveWorkers(int64_t run_id) const {
    Result<std::vector<std::string>> live = LiveWorkers(run_id);
    return live && !live->empty();
  }

  Status Leave(int64_t run_id) {
    return Locked<bool>([&](PgConn& c) -> Result<bool> {
             PLUMB_RETURN_IF_ERROR(storage::PostgresLeaveRun(c, run_id));
             return true;
           })
        .status();
  }

  // The writer thread's: renews the heartbeat of the runs this store holds and works on.
  Status Heartbeat(const std::set<int64_t>& held, const std::set<int64_t>& joined) {
    PLUMB_RETURN_IF_ERROR(
        WithWriter([&] { return storage::PostgresHeartbeatWorkers(*writer_, joined); }));
    if (held.empty()) return Status();
    std::string ids = "{";
    for (int64_t id : held) ids += (ids.size() > 1 ? "," : "") + std::to_string(id);
    PgParams p;
    p.Add(storage::UnixNow()).Add(ids + "}").Add(storage::SelfOwner());
    return WithWriter([&] {
      return writer_
          ->Exec("UPDATE runs SET heartbeat_at = $1 WHERE id = ANY ($2::bigint[]) AND owner = $3",
                 p)
          .status();
    });
  }

  Status WriteBatch(const std::vector<WriteJob>& batch) {
    return WithWriter([&] {
      return InTransaction(*writer_, kBegin,
                           [&] { return storage::PostgresWriteJobs(*writer_, batch); });
    });
  }

  // Runs `step` on the writer connection, again after a lost connection or a deadlock.
  template <typename Step>
  Status WithWriter(Step step) {
    Status s;
    for (int attempt = 1; attempt <= kWriteAttempts; ++attempt) {
      if (attempt > 1) std::this_thread::sleep_for(kWriteRetryDelay * (attempt - 1));
      if (writer_->Broken() && !writer_->Reset()) {
        s =
            Unavailable(fmt::format("results database '{}': the connection to the server was "
                                    "lost and could not be made again; is the server running? "
                                    "(see --db)",
                                    where_));
        continue;
      }
      s = Catching<bool>([&]() -> Result<bool> {
            PLUMB_RETURN_IF_ERROR(step());
            return true;
          }).status();
      if (s.code() != StatusCode::kUnavailable && s.code() != StatusCode::kAborted) return s;
    }
    return s;
  }

  Result<std::vector<RunRecord>> QueryRuns(const std::string& where, const PgParams& p) const {
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r, Query(fmt::format("SELECT {} FROM runs {}", storage::kRunColumns, where), p));
    std::vector<RunRecord> out;
    const double now = storage::UnixNow();
    for (int i = 0; i < r.rows(); ++i) {
      RunRecord run = storage::RunFromRow(r, i);
      if (run.status == "running" && !storage::OwnerAlive(run.owner, run.heartbeat_at, now) &&
          !HasLiveWorkers(run.id)) {
        // Its processes died (killed, crashed, the machine went down): what they finished is
        // kept.
        run.status = "interrupted";
        run.stale_owner = run.owner.empty() ? "unknown" : run.owner;
      }
      out.push_back(std::move(run));
    }
    return out;
  }

  const std::string url_;  // with its password: for the cache's connection, never shown
  mutable std::mutex main_mu_;
  std::unique_ptr<PgConn> main_;
  std::unique_ptr<PgConn> writer_;  // null when read-only; the writer thread's only
  const std::string where_;
  mutable std::mutex cache_mu_;
  mutable std::unique_ptr<PgConn> cache_conn_;  // opened on first use
  // Last: its writer thread uses the members above, and stops first.
  storage::WriteQueue queue_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url) {
  PLUMB_ASSIGN_OR_RETURN(auto main, PgConn::Connect(url, /*read_only=*/false));
  PLUMB_RETURN_IF_ERROR(storage::PostgresMigrate(*main));
  PLUMB_ASSIGN_OR_RETURN(auto writer, PgConn::Connect(url, /*read_only=*/false));
  return std::unique_ptr<Store>(
      std::make_unique<PostgresStore>(url, std::move(main), std::move(writer)));
}

Result<std::unique_ptr<Store>> OpenPostgresStoreReadOnly(const std::string& url) {
  PLUMB_ASSIGN_OR_RETURN(auto main, PgConn::Connect(url, /*read_only=*/true));
  PLUMB_RETURN_IF_ERROR(storage::PostgresCheckReadable(*main));
  return std::unique_ptr<Store>(std::make_unique<PostgresStore>(url, std::move(main), nullptr));
}

}  // namespace plumb
