// The SQLite results store: WAL mode, one writer thread that commits queued sample results in
// batched transactions, and plain queries for reading.
#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <map>
#include <mutex>
#include <set>

#include "plumb/batch.h"
#include "plumb/log.h"
#include "plumb/store.h"
#include "plumb/text.h"
#include "storage/lease.h"
#include "storage/sample_rows.h"
#include "storage/sqlite_workers.h"
#include "storage/schema.h"

namespace plumb {
namespace {

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<SQLite::Database> db, std::string path, bool writable)
      : db_(std::move(db)),
        path_(std::move(path)),
        queue_([this](const std::vector<WriteJob>& batch) { return WriteBatch(batch); },
               [this](const std::set<int64_t>& held, const std::set<int64_t>& joined) {
                 return Heartbeat(held, joined);
               }) {
    schema_version_ = storage::UserVersion(*db_);
    if (writable) queue_.Start();
  }

  ~SqliteStore() override {
    cache_get_.reset();  // before its connection
    cache_db_.reset();
    queue_.Stop();
    // Leases still held (a command that stopped early) are given up, so the run reads back as
    // interrupted at once rather than when the heartbeat grows old, and its samples go back to
    // the other workers.
    for (int64_t id : queue_.TakeJoined()) (void)Leave(id);
    for (int64_t id : queue_.TakeHeld()) (void)ClearOwner(id);
  }

  Result<int64_t> CreateRun(const RunRecord& run, const std::vector<Item>& items) override {
    return Guard<int64_t>([&]() -> Result<int64_t> {
      SQLite::Transaction tx(*db_);
      SQLite::Statement q(*db_,
                          "INSERT INTO runs (started_at, status, plumb_version, git_sha, suite_id, "
                          "suite_version, suite_hash, model_spec, backend_id, params, seed, "
                          "concurrency, epochs, item_limit, n_samples, settings, primary_metric, "
                          "higher_is_better, parent_run_id, owner, heartbeat_at, uuid) VALUES "
                          "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      q.bind(1, run.started_at);
      q.bind(2, run.status);
      q.bind(3, run.plumb_version);
      q.bind(4, run.git_sha);
      q.bind(5, run.suite_id);
      q.bind(6, run.suite_version);
      q.bind(7, run.suite_hash);
      q.bind(8, run.model_spec);
      q.bind(9, run.backend_id);
      q.bind(10, DumpJson(run.params));
      q.bind(11, static_cast<int64_t>(run.seed));
      q.bind(12, run.concurrency);
      q.bind(13, run.epochs);
      BindOpt(q, 14, run.limit);
      q.bind(15, run.n_samples);
      q.bind(16, Redact(DumpJson(run.settings)));
      q.bind(17, run.primary_metric);
      q.bind(18, run.higher_is_better ? 1 : 0);
      BindOpt(q, 19, run.parent_run_id);
      q.bind(20, storage::SelfOwner());
      q.bind(21, storage::UnixNow());
      q.bind(22, run.uuid.empty() ? storage::NewRunUuid() : run.uuid);
      q.exec();
      int64_t id = db_->getLastInsertRowid();
      SQLite::Statement qi(*db_,
                           "INSERT INTO items (run_id, item_id, category, line, fields, metadata, "
                           "scored) VALUES (?,?,?,?,?,?,?)");
      for (const auto& item : items) {
        qi.bind(1, id);
        qi.bind(2, item.id);
        qi.bind(3, item.category);
        qi.bind(4, item.line);
        qi.bind(5, DumpJson(item.fields));
        qi.bind(6, DumpJson(item.metadata));
        qi.bind(7, item.scored ? 1 : 0);
        qi.exec();
        qi.reset();
      }
      storage::SqliteJoinRun(*db_, id);  // the creator is the run's first worker
      tx.commit();
      queue_.Hold(id);
      queue_.Join(id);
      return id;
    });
  }

  Status AcquireRun(int64_t run_id) override {
    Result<bool> taken = Guard<bool>([&]() -> Result<bool> {
      // IMMEDIATE: two processes acquiring at once are serialised here, so only one wins.
      SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement q(*db_, "SELECT owner, heartbeat_at FROM runs WHERE id=?");
      q.bind(1, run_id);
      if (!q.executeStep()) return NotFound(fmt::format("run {} not found in '{}'", run_id, path_));
      std::string owner = q.getColumn(0).getString();
      double heartbeat = q.getColumn(1).getDouble();
      double now = storage::UnixNow();
      if (owner != storage::SelfOwner() && storage::OwnerAlive(owner, heartbeat, now)) {
        return Aborted(fmt::format(
            "run {} is being executed by {} (last heartbeat {:.0f} s ago): wait for it to finish, "
            "or stop it (Ctrl-C) and resume then",
            run_id, storage::DescribeOwner(owner), std::max(0.0, now - heartbeat)));
      }
      SQLite::Statement u(*db_, "UPDATE runs SET owner=?, heartbeat_at=? WHERE id=?");
      u.bind(1, storage::SelfOwner());
      u.bind(2, now);
      u.bind(3, run_id);
      u.exec();
      tx.commit();
      return true;
    });
    if (!taken) return taken.error();
    queue_.Hold(run_id);
    return Status();
  }

  Status ReleaseRun(int64_t run_id) override {
    queue_.Drop(run_id);
    return ClearOwner(run_id);
  }

  Status JoinRun(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Guard<bool>([&]() -> Result<bool> {
                            storage::SqliteJoinRun(*db_, run_id);
                            return true;
                          }).status());
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
    return Guard<SampleClaim>(
        [&] { return storage::SqliteClaimSamples(*db_, schema_version_, run_id, n); });
  }

  Result<FinishClaim> ClaimFinish(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    return Guard<FinishClaim>([&] { return storage::SqliteClaimFinish(*db_, run_id); });
  }

  Result<std::vector<std::string>> LiveWorkers(int64_t run_id) const override {
    if (schema_version_ < 6) return std::vector<std::string>();
    return Guard<std::vector<std::string>>(
        [&] { return storage::SqliteLiveWorkers(*db_, run_id); });
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
    // Lookups use their own read connection: in WAL mode it never waits for the writer
    // thread's transactions, which hold the main connection.
    std::lock_guard<std::mutex> lock(cache_mu_);
    try {
      if (!cache_db_) {
        cache_db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READONLY);
        cache_db_->setBusyTimeout(10'000);
        cache_get_ = std::make_unique<SQLite::Statement>(
            *cache_db_, "SELECT completion FROM cache WHERE key=?");
      }
      SQLite::Statement& q = *cache_get_;
      q.reset();
      q.bind(1, key);
      if (!q.executeStep()) return std::optional<Completion>();
      Completion c = CompletionFromJson(ParseStored(q.getColumn(0).getString()));
      c.cached = true;
      return std::optional<Completion>(std::move(c));
    } catch (const SQLite::Exception& e) {
      return DataLoss(fmt::format("results database '{}': {}", path_, e.what()));
    }
  }

  Status Flush() override { return queue_.Flush(); }

  Status LastWriteError() const override { return queue_.LastError(); }

  Status FinishRun(int64_t run_id, const std::string& status, const std::string& error,
                   const std::string& finished_at) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Statement q(
                 *db_, "UPDATE runs SET status=?, finished_at=?, error=?, owner='' WHERE id=?");
             q.bind(1, status);
             q.bind(2, status == "queued"     ? std::string()
                       : finished_at.empty() ? NowIso8601()
                                             : finished_at);
             q.bind(3, Redact(error));
             q.bind(4, run_id);
             q.exec();
             queue_.Drop(run_id);
             return true;
           })
        .status();
  }

  Result<Json> GetUsage(int64_t run_id) const override {
    return Guard<Json>([&]() -> Result<Json> {
      auto counts = [](SQLite::Statement& q) {
        Json c = {{"calls", q.getColumn(1).getInt64()},
                  {"cached", q.getColumn(2).getInt64()},
                  {"prompt_tokens", q.getColumn(3).getInt64()},
                  {"completion_tokens", q.getColumn(4).getInt64()}};
        // Of which through provider batches (priced as such).
        if (q.getColumn(5).getInt64() > 0) {
          c["batched"] = {{"calls", q.getColumn(5).getInt64()},
                          {"prompt_tokens", q.getColumn(6).getInt64()},
                          {"completion_tokens", q.getColumn(7).getInt64()}};
        }
        return c;
      };
      Json usage = {{"judges", Json::object()}};
      const char* batched = schema_version_ >= 5 ? "batched=1" : "0";
      SQLite::Statement m(
          *db_,
          fmt::format(
              "SELECT '', count(*) FILTER (WHERE cached=0), count(*) FILTER (WHERE cached=1), "
              "coalesce(sum(prompt_tokens) FILTER (WHERE cached=0), 0), "
              "coalesce(sum(completion_tokens) FILTER (WHERE cached=0), 0), "
              "count(*) FILTER (WHERE cached=0 AND {0}), "
              "coalesce(sum(prompt_tokens) FILTER (WHERE cached=0 AND {0}), 0), "
              "coalesce(sum(completion_tokens) FILTER (WHERE cached=0 AND {0}), 0) "
              "FROM responses WHERE run_id=? AND status='ok'",
              batched));
      m.bind(1, run_id);
      m.executeStep();
      usage["model"] = counts(m);
      // Judgments carry their own tokens; a panel's aggregate row does not, so nothing counts
      // twice.
      SQLite::Statement j(
          *db_,
          "SELECT json_extract(details, '$.judge') AS judge, "
          "count(*) FILTER (WHERE coalesce(json_extract(details, '$.cached'), 0) = 0), "
          "count(*) FILTER (WHERE coalesce(json_extract(details, '$.cached'), 0) = 1), "
          "coalesce(sum(json_extract(details, '$.prompt_tokens')) FILTER (WHERE "
          "coalesce(json_extract(details, '$.cached'), 0) = 0), 0), "
          "coalesce(sum(json_extract(details, '$.completion_tokens')) FILTER (WHERE "
          "coalesce(json_extract(details, '$.cached'), 0) = 0), 0), "
          "count(*) FILTER (WHERE coalesce(json_extract(details, '$.batched'), 0) = 1), "
          "coalesce(sum(json_extract(details, '$.prompt_tokens')) FILTER (WHERE "
          "coalesce(json_extract(details, '$.batched'), 0) = 1), 0), "
          "coalesce(sum(json_extract(details, '$.completion_tokens')) FILTER (WHERE "
          "coalesce(json_extract(details, '$.batched'), 0) = 1), 0) "
          "FROM scores WHERE run_id=? AND json_extract(details, '$.prompt_tokens') IS NOT NULL "
          "GROUP BY judge");
      j.bind(1, run_id);
      while (j.executeStep()) usage["judges"][j.getColumn(0).getString()] = counts(j);
      return usage;
    });
  }

  Status PutBatch(BatchRecord& b) override {
    return Guard<bool>([&]() -> Result<bool> {
             std::string now = NowIso8601();
             Json ids = b.custom_ids;
             if (b.id == 0) {
               b.created_at = now;
               SQLite::Statement q(*db_,
                                   "INSERT INTO batches (run_id, role, provider, state, info, "
                                   "custom_ids, resubmits, created_at, updated_at) "
                                   "VALUES (?,?,?,?,?,?,?,?,?)");
               q.bind(1, b.run_id);
               q.bind(2, b.role);
               q.bind(3, b.provider);
               q.bind(4, b.state);
               q.bind(5, DumpJson(b.info));
               q.bind(6, DumpJson(ids));
               q.bind(7, b.resubmits);
               q.bind(8, now);
               q.bind(9, now);
               q.exec();
               b.id = db_->getLastInsertRowid();
             } else {
               SQLite::Statement q(*db_,
                                   "UPDATE batches SET state=?, info=?, resubmits=?, "
                                   "updated_at=? WHERE id=?");
               q.bind(1, b.state);
               q.bind(2, DumpJson(b.info));
               q.bind(3, b.resubmits);
               q.bind(4, now);
               q.bind(5, b.id);
               q.exec();
             }
             b.updated_at = now;
             return true;
           })
        .status();
  }

  Result<std::vector<BatchRecord>> GetBatches(int64_t run_id) const override {
    return Guard<std::vector<BatchRecord>>([&]() -> Result<std::vector<BatchRecord>> {
      std::vector<BatchRecord> out;
      if (schema_version_ < 5) return out;
      SQLite::Statement q(*db_,
                          "SELECT id, run_id, role, provider, state, info, custom_ids, "
                          "resubmits, created_at, updated_at FROM batches WHERE run_id=? "
                          "ORDER BY id");
      q.bind(1, run_id);
      while (q.executeStep()) {
        BatchRecord b;
        b.id = q.getColumn(0).getInt64();
        b.run_id = q.getColumn(1).getInt64();
        b.role = q.getColumn(2).getString();
        b.provider = q.getColumn(3).getString();
        b.state = q.getColumn(4).getString();
        b.info = ParseStored(q.getColumn(5).getString());
        Json ids = ParseStored(q.getColumn(6).getString());
        if (ids.is_array())
          for (const auto& id : ids)
            if (id.is_string()) b.custom_ids.push_back(id.get<std::string>());
        b.resubmits = q.getColumn(7).getInt();
        b.created_at = q.getColumn(8).getString();
        b.updated_at = q.getColumn(9).getString();
        if (!b.info.is_object()) b.info = Json::object();
        out.push_back(std::move(b));
      }
      return out;
    });
  }

  Status PutUsage(int64_t run_id, const Json& usage) override {
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Statement q(*db_, "UPDATE runs SET usage=? WHERE id=?");
             q.bind(1, DumpJson(usage));
             q.bind(2, run_id);
             q.exec();
             return true;
           })
        .status();
  }

  Status ReopenRun(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Statement q(
                 *db_,
                 "UPDATE runs SET status='running', finished_at='', error='', finisher='' WHERE "
                 "id=?");
             q.bind(1, run_id);
             q.exec();
             return true;
           })
        .status();
  }

  Result<int64_t> ResetErroredSamples(int64_t run_id) override {
    PLUMB_RETURN_IF_ERROR(Flush());
    return Guard<int64_t>([&]() -> Result<int64_t> {
      SQLite::Transaction tx(*db_);
      for (const char* table : {"responses", "scores"}) {
        SQLite::Statement del(
            *db_,
            fmt::format("DELETE FROM {} WHERE run_id=? AND (item_id, epoch) IN "
                        "(SELECT item_id, epoch FROM samples WHERE run_id=? AND status='error')",
                        table));
        del.bind(1, run_id);
        del.bind(2, run_id);
        del.exec();
      }
      SQLite::Statement q(*db_,
                          "UPDATE samples SET status='pending' WHERE run_id=? AND status='error'");
      q.bind(1, run_id);
      int64_t n = q.exec();
      tx.commit();
      return n;
    });
  }

  Status PutMetrics(int64_t run_id, const std::vector<Metric>& metrics) override {
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Transaction tx(*db_);
             SQLite::Statement del(*db_, "DELETE FROM metrics WHERE run_id=?");
             del.bind(1, run_id);
             del.exec();
             SQLite::Statement q(*db_,
                                 "INSERT INTO metrics (run_id, name, category, value, ci_low, "
                                 "ci_high, n, k, ci_method, details) VALUES (?,?,?,?,?,?,?,?,?,?)");
             for (const auto& m : metrics) {
               q.bind(1, run_id);
               q.bind(2, m.name);
               q.bind(3, m.category);
               BindOpt(q, 4, m.value);
               BindOpt(q, 5, m.ci_low);
               BindOpt(q, 6, m.ci_high);
               q.bind(7, m.n);
               BindOpt(q, 8, m.k);
               q.bind(9, m.ci_method);
               q.bind(10, DumpJson(m.details));
               q.exec();
               q.reset();
             }
             tx.commit();
             return true;
           })
        .status();
  }

  Result<RunRecord> GetRun(int64_t run_id) const override {
    PLUMB_ASSIGN_OR_RETURN(auto runs, QueryRuns("WHERE id = ?", {std::to_string(run_id)}));
    if (runs.empty()) return NotFound(fmt::format("run {} not found in '{}'", run_id, path_));
    return runs.front();
  }

  Result<int64_t> LatestRunId() const override {
    return Guard<int64_t>([&]() -> Result<int64_t> {
      SQLite::Statement q(*db_, "SELECT max(id) FROM runs");
      if (!q.executeStep() || q.getColumn(0).isNull()) {
        return NotFound(fmt::format("no runs in '{}' yet (start one with plumb run)", path_));
      }
      return q.getColumn(0).getInt64();
    });
  }

  Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) const override {
    std::string where = "WHERE 1=1";
    std::vector<std::string> args;
    if (!filter.suite_id.empty()) {
      where += " AND suite_id = ?";
      args.push_back(filter.suite_id);
    }
    if (!filter.status.empty()) {
      where += " AND status = ?";
      args.push_back(filter.status);
    }
    return QueryRuns(where + " ORDER BY id", args);
  }

  Result<std::vector<SampleRecord>> GetSamples(int64_t run_id, bool with_responses, int64_t offset,
                                               int64_t limit) const override {
    return Guard<std::vector<SampleRecord>>([&]() -> Result<std::vector<SampleRecord>> {
      return ReadSamples(*db_, schema_version_, run_id, with_responses, offset, limit);
    });
  }

  Status ScanSamples(int64_t run_id, const SampleScan& what,
                     const std::function<bool(SampleRecord&&)>& visit) const override {
    return Guard<bool>([&]() -> Result<bool> {
             ScanSampleRows(*db_, schema_version_, run_id, what, visit);
             return true;
           })
        .status();
  }

  Result<SampleCounts> CountSamples(int64_t run_id) const override {
    return Guard<SampleCounts>([&]() -> Result<SampleCounts> {
      SampleCounts c;
      SQLite::Statement q(*db_,
                          "SELECT status, count(*) FROM samples WHERE run_id=? GROUP BY status");
      q.bind(1, run_id);
      while (q.executeStep()) {
        std::string status = q.getColumn(0).getString();
        int64_t n = q.getColumn(1).getInt64();
        c.planned += n;
        if (status == "pending") c.pending = n;
        if (status == "done") c.done = n;
        if (status == "error") c.error = n;
      }
      return c;
    });
  }

  Result<std::vector<Metric>> GetMetrics(int64_t run_id) const override {
    return Guard<std::vector<Metric>>([&]() -> Result<std::vector<Metric>> {
      std::vector<Metric> out;
      SQLite::Statement q(*db_,
                          "SELECT name, category, value, ci_low, ci_high, n, k, ci_method, details "
                          "FROM metrics WHERE run_id=? ORDER BY category <> '', name, category");
      q.bind(1, run_id);
      while (q.executeStep()) {
        Metric m;
        m.name = q.getColumn(0).getString();
        m.category = q.getColumn(1).getString();
        m.value = OptDouble(q.getColumn(2));
        m.ci_low = OptDouble(q.getColumn(3));
        m.ci_high = OptDouble(q.getColumn(4));
        m.n = q.getColumn(5).getInt64();
        m.k = OptInt64(q.getColumn(6));
        m.ci_method = q.getColumn(7).getString();
        m.details = ParseStored(q.getColumn(8).getString());
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  Result<std::vector<Item>> GetItems(int64_t run_id) const override {
    return Guard<std::vector<Item>>([&]() -> Result<std::vector<Item>> {
      SQLite::Statement q(*db_,
                          "SELECT item_id, category, line, fields, metadata, scored FROM items "
                          "WHERE run_id=? ORDER BY line, item_id");
      q.bind(1, run_id);
      std::vector<Item> out;
      while (q.executeStep()) {
        Item item;
        item.id = q.getColumn(0).getString();
        item.category = q.getColumn(1).getString();
        item.line = q.getColumn(2).getInt();
        item.fields = ParseStored(q.getColumn(3).getString());
        item.metadata = ParseStored(q.getColumn(4).getString());
        item.scored = q.getColumn(5).getInt() != 0;
        out.push_back(std::move(item));
      }
      return out;
    });
  }

  Status SetTag(const std::string& name, int64_t run_id) override {
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Statement q(*db_,
                                 "INSERT OR REPLACE INTO tags (name, suite_id, run_id, created_at) "
                                 "SELECT ?, suite_id, id, ? FROM runs WHERE id=?");
             q.bind(1, name);
             q.bind(2, NowIso8601());
             q.bind(3, run_id);
             if (q.exec() == 0)
               return NotFound(fmt::format("run {} not found in '{}'", run_id, path_));
             return true;
           })
        .status();
  }

  Result<std::optional<std::vector<Metric>>> GetBaseline(const std::string& key) const override {
    return Guard<std::optional<std::vector<Metric>>>(
        [&]() -> Result<std::optional<std::vector<Metric>>> {
          if (!db_->tableExists("baselines")) return std::optional<std::vector<Metric>>();
          SQLite::Statement q(*db_, "SELECT metrics FROM baselines WHERE key=?");
          q.bind(1, key);
          if (!q.executeStep()) return std::optional<std::vector<Metric>>();
          std::vector<Metric> out;
          for (const auto& j : ParseStored(q.getColumn(0).getString()))
            out.push_back(MetricFromJson(j));
          return std::optional<std::vector<Metric>>(std::move(out));
        });
  }

  Status PutBaseline(const std::string& key, const std::string& suite_id,
                     const std::string& model_spec, const std::vector<Metric>& metrics) override {
    Json list = Json::array();
    for (const auto& m : metrics) list.push_back(MetricToJson(m));
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Statement q(*db_,
                                 "INSERT OR REPLACE INTO baselines (key, suite_id, model_spec, "
                                 "metrics, created_at) "
                                 "VALUES (?,?,?,?,?)");
             q.bind(1, key);
             q.bind(2, suite_id);
             q.bind(3, model_spec);
             q.bind(4, DumpJson(list));
             q.bind(5, NowIso8601());
             q.exec();
             return true;
           })
        .status();
  }

  Result<std::vector<TagRecord>> ListTags() const override {
    return Guard<std::vector<TagRecord>>([&]() -> Result<std::vector<TagRecord>> {
      std::vector<TagRecord> out;
      // A version 1 database opened read-only has no tags table yet (and so no tags).
      if (!db_->tableExists("tags")) return out;
      SQLite::Statement q(
          *db_, "SELECT name, suite_id, run_id, created_at FROM tags ORDER BY name, suite_id");
      while (q.executeStep()) {
        out.push_back(TagRecord{q.getColumn(0).getString(), q.getColumn(1).getString(),
                                q.getColumn(2).getInt64(), q.getColumn(3).getString()});
      }
      return out;
    });
  }

 private:
  // Runs `fn` under the connection lock and turns SQLite exceptions into kDataLoss.
  template <typename T, typename Fn>
  Result<T> Guard(Fn fn) const {
    std::lock_guard<std::mutex> lock(db_mu_);
    try {
      return fn();
    } catch (const SQLite::Exception& e) {
      return StorageError(e);
    } catch (const std::exception& e) {
      return DataLoss(fmt::format("results database '{}': {}", path_, e.what()));
    }
  }

  // A failed statement, with what to do about it when the disk is the cause.
  Status StorageError(const SQLite::Exception& e) const {
    int code = e.getErrorCode() & 0xff;
    if (code == SQLITE_FULL) {
      return DataLoss(fmt::format("results database '{}': the disk is full ({}); free some space",
                                  path_, e.what()));
    }
    if (code == SQLITE_IOERR) {
      return DataLoss(
          fmt::format("results database '{}': I/O error ({}); check the disk and its free space",
                      path_, e.what()));
    }
    if (code == SQLITE_READONLY) {
      return DataLoss(
          fmt::format("results database '{}' cannot be written ({}); use a --db you may write",
                      path_, e.what()));
    }
    return DataLoss(fmt::format("results database '{}': {}", path_, e.what()));
  }

  Status ClearOwner(int64_t run_id) {
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Statement q(*db_, "UPDATE runs SET owner='' WHERE id=? AND owner=?");
             q.bind(1, run_id);
             q.bind(2, storage::SelfOwner());
             q.exec();
             return true;
           })
        .status();
  }

  Status Leave(int64_t run_id) {
    return Guard<bool>([&]() -> Result<bool> {
             storage::SqliteLeaveRun(*db_, run_id);
             return true;
           })
        .status();
  }

  // Renews the heartbeat of the runs this store holds and works on (on the writer thread).
  Status Heartbeat(const std::set<int64_t>& held, const std::set<int64_t>& joined) {
    return Guard<bool>([&]() -> Result<bool> {
             storage::SqliteHeartbeatWorkers(*db_, joined);
             SQLite::Statement q(*db_, "UPDATE runs SET heartbeat_at=? WHERE id=? AND owner=?");
             for (int64_t id : held) {
               q.bind(1, storage::UnixNow());
               q.bind(2, id);
               q.bind(3, storage::SelfOwner());
               q.exec();
               q.reset();
             }
             return true;
           })
        .status();
  }

  Result<std::vector<RunRecord>> QueryRuns(const std::string& where,
                                           const std::vector<std::string>& args) const {
    return Guard<std::vector<RunRecord>>([&]() -> Result<std::vector<RunRecord>> {
      SQLite::Statement q(*db_,
                          "SELECT id, started_at, finished_at, status, plumb_version, git_sha, "
                          "suite_id, suite_version, suite_hash, model_spec, backend_id, params, "
                          "seed, concurrency, epochs, item_limit, n_samples, error, settings, "
                          "primary_metric, higher_is_better, parent_run_id, usage, " +
                              std::string(schema_version_ >= 3 ? "owner, heartbeat_at" : "'', 0") +
                              (schema_version_ >= 5 ? ", uuid" : ", ''") +
                              " FROM runs " + where);
      for (size_t i = 0; i < args.size(); ++i) q.bind(static_cast<int>(i + 1), args[i]);
      std::vector<RunRecord> out;
      const double now = storage::UnixNow();
      while (q.executeStep()) {
        RunRecord r;
        r.id = q.getColumn(0).getInt64();
        r.started_at = q.getColumn(1).getString();
        r.finished_at = q.getColumn(2).getString();
        r.status = q.getColumn(3).getString();
        r.plumb_version = q.getColumn(4).getString();
        r.git_sha = q.getColumn(5).getString();
        r.suite_id = q.getColumn(6).getString();
        r.suite_version = q.getColumn(7).getInt();
        r.suite_hash = q.getColumn(8).getString();
        r.model_spec = q.getColumn(9).getString();
        r.backend_id = q.getColumn(10).getString();
        r.params = ParseStored(q.getColumn(11).getString());
        r.seed = static_cast<uint64_t>(q.getColumn(12).getInt64());
        r.concurrency = q.getColumn(13).getInt();
        r.epochs = q.getColumn(14).getInt();
        r.limit = OptInt64(q.getColumn(15));
        r.n_samples = q.getColumn(16).getInt64();
        r.error = q.getColumn(17).getString();
        r.settings = ParseStored(q.getColumn(18).getString());
        r.primary_metric = q.getColumn(19).getString();
        r.higher_is_better = q.getColumn(20).getInt() != 0;
        r.parent_run_id = OptInt64(q.getColumn(21));
        r.usage = ParseStored(q.getColumn(22).getString());
        r.owner = q.getColumn(23).getString();
        r.heartbeat_at = q.getColumn(24).getDouble();
        r.uuid = q.getColumn(25).getString();
        if (r.status == "running" && !storage::OwnerAlive(r.owner, r.heartbeat_at, now) &&
            (schema_version_ < 6 || storage::SqliteLiveWorkers(*db_, r.id).empty())) {
          // Its processes died (killed, crashed, the machine went down): what they finished is
          // kept.
          r.status = "interrupted";
          r.stale_owner = r.owner.empty() ? "unknown" : r.owner;
        }
        out.push_back(std::move(r));
      }
      return out;
    });
  }

  Status WriteBatch(const std::vector<WriteJob>& batch) {
    return Guard<bool>([&]() -> Result<bool> {
             SQLite::Transaction tx(*db_);
             WriteJobs(*db_, batch);
             tx.commit();
             return true;
           })
        .status();
  }

  mutable std::mutex db_mu_;
  std::unique_ptr<SQLite::Database> db_;
  std::string path_;

  // The cache's read connection and statement, opened on first use, under cache_mu_.
  mutable std::mutex cache_mu_;
  mutable std::unique_ptr<SQLite::Database> cache_db_;
  mutable std::unique_ptr<SQLite::Statement> cache_get_;
  int schema_version_ = 0;
  // Last: its writer thread uses the members above, and stops first.
  storage::WriteQueue queue_;
};

// A URL is never a file name: a caller that meant OpenStore gets an error, not a folder named
// "postgresql:" with a SQLite file in it.
Status NotAUrl(const std::filesystem::path& path) {
  if (path.string().find("://") == std::string::npos) return Status();
  return InvalidArgument(fmt::format("'{}' is a URL, not a SQLite file path (see --db)",
                                     StoreDisplayName(path.string())));
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& path) {
  PLUMB_RETURN_IF_ERROR(NotAUrl(path));
  try {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    auto db = std::make_unique<SQLite::Database>(path.string(),
                                                 SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db->setBusyTimeout(10'000);
    db->exec("PRAGMA journal_mode=WAL");
    db->exec("PRAGMA synchronous=NORMAL");
    db->exec("PRAGMA foreign_keys=ON");
    PLUMB_RETURN_IF_ERROR(storage::Migrate(*db, path.string()));
    return std::unique_ptr<Store>(
        std::make_unique<SqliteStore>(std::move(db), path.string(), true));
  } catch (const SQLite::Exception& e) {
    return DataLoss(
        fmt::format("cannot open results database '{}': {} (see --db)", path.string(), e.what()));
  }
}

namespace {

// "file:/a%20b.db?immutable=1": a URI for a path (percent-encoding what URIs reserve).
std::string ImmutableUri(const std::filesystem::path& path) {
  std::string abs = std::filesystem::absolute(path).string();
  std::string out = "file:";
  for (char c : abs) {
    if (c == '%' || c == '?' || c == '#' || c == ' ')
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else
      out += c;
  }
  return out + "?immutable=1";
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStoreReadOnly(const std::filesystem::path& path) {
  PLUMB_RETURN_IF_ERROR(NotAUrl(path));
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFound(fmt::format(
        "results database '{}' does not exist (run plumb run first, or see --db)", path.string()));
  }
  try {
    auto db = std::make_unique<SQLite::Database>(path.string(), SQLite::OPEN_READONLY);
    db->setBusyTimeout(10'000);
    try {
      (void)storage::UserVersion(*db);
    } catch (const SQLite::Exception& e) {
      int code = e.getErrorCode() & 0xff;
      if (code != SQLITE_READONLY && code != SQLITE_CANTOPEN) throw;
      // A WAL database needs its -shm file; where the user may not create it (a read-only
      // folder), read the file as it is instead: nothing is written, and nothing else may be
      // writing it (the user cannot, and a writer elsewhere would keep the -shm in place).
      db = std::make_unique<SQLite::Database>(ImmutableUri(path),
                                              SQLite::OPEN_READONLY | SQLite::OPEN_URI);
    }
    PLUMB_RETURN_IF_ERROR(storage::CheckReadable(*db, path.string()));
    return std::unique_ptr<Store>(
        std::make_unique<SqliteStore>(std::move(db), path.string(), false));
  } catch (const SQLite::Exception& e) {
    return DataLoss(fmt::format("cannot open results database '{}': {}", path.string(), e.what()));
  }
}

}  // namespace plumb
