// The results store: runs, items, samples, responses, scores and metrics, in SQLite (a file, the
// default) or PostgreSQL (a URL).
#ifndef PLUMB_STORE_H_
#define PLUMB_STORE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

struct BatchRecord;  // plumb/batch.h

// SQLite schema version written to PRAGMA user_version; see docs/results-schema.md. (The
// PostgreSQL store keeps its own version, in the table plumb_schema.)
inline constexpr int kSchemaVersion = 6;

struct RunRecord {
  int64_t id = 0;
  std::string started_at;   // ISO 8601 UTC
  std::string finished_at;  // "" while running
  std::string status;       // queued | running | completed | failed | interrupted
  std::string plumb_version;
  std::string git_sha;
  std::string suite_id;
  int suite_version = 0;
  std::string suite_hash;
  std::string primary_metric;  // the suite's headline metric, for leaderboards
  bool higher_is_better = true;
  std::string model_spec;        // as given: "openai/gpt-4o-mini"
  std::string backend_id;        // "openai-chat@1"
  Json params = Json::object();  // effective generation parameters
  uint64_t seed = 0;
  int concurrency = 0;
  int epochs = 1;
  std::optional<int64_t> limit;
  int64_t n_samples = 0;                 // planned
  std::string error;                     // why the run failed, when it did
  Json settings = Json::object();        // other settings (base URL, retries, timeout); no secrets
  std::optional<int64_t> parent_run_id;  // the run this one re-graded (plumb rescore)
  // Tokens and cost by role: {"model": {...}, "judges": {spec: {...}}} (see GetUsage).
  Json usage = Json::object();
  // The process executing the run ("host:pid:start"; "" when none) and its last heartbeat
  // (Unix seconds). A run read back as "running" has a live owner; one whose owner died reads
  // back as "interrupted" with `stale_owner` set.
  std::string owner;
  double heartbeat_at = 0;
  std::string stale_owner;
  // Stable across databases (plumb db copy): a copied run keeps it, so copying twice adds
  // nothing.
  std::string uuid;
};

// One turn's reply, or the error that ended the sample.
struct ResponseRecord {
  std::string item_id;
  int epoch = 0;
  int turn = 0;
  Json request = Json::array();  // the messages sent
  bool ok = false;
  Completion completion;   // when ok
  std::string error_code;  // StatusCodeName, when !ok
  std::string error_message;
};

// Everything recorded when a sample ends.
struct SampleResult {
  std::string item_id;
  int epoch = 0;
  bool ok = false;  // all turns answered
  // The turns of a conversation still going on (no grades): stored so a resume continues from
  // them; the sample stays pending.
  bool partial = false;
  std::vector<ResponseRecord> responses;
  std::vector<Grade> grades;
};

// A planned sample as stored.
struct SampleRecord {
  std::string item_id;
  int epoch = 0;
  Json presentation = Json::object();
  std::string status;  // pending | done | error
  std::vector<Grade> grades;
  std::vector<ResponseRecord> responses;
};

// A label on a run (plumb tag), unique per suite: "production" can name one run of each suite.
struct TagRecord {
  std::string name;
  std::string suite_id;
  int64_t run_id = 0;
  std::string created_at;
};

// A built-in baseline's metrics beside a run (see Baselines in runner.h).
struct BaselineScores {
  std::string model_spec;
  std::vector<Metric> metrics;
};

// A sample as planned when its run is created.
struct PlannedSample {
  std::string item_id;
  int epoch = 0;
  Json presentation = Json::object();
  // Leased to this process as it is written (a new run starts its first samples before they
  // are stored; see ClaimSamples).
  bool leased = false;
};

// What ClaimSamples took: pending samples (with the turns already stored of a conversation
// under way), and how many pending samples are not this process's (other workers hold them,
// or are claiming them at this moment).
struct SampleClaim {
  std::vector<SampleRecord> samples;
  int64_t held_elsewhere = 0;
};

// ClaimFinish's answer: this process computes the run's metrics; samples are still pending (or
// not planned yet); or another live worker is finishing the run (or has finished it).
enum class FinishClaim { kMine, kNotYet, kTaken };

// What ScanSamples reads of each sample.
struct SampleScan {
  bool grades = true;
  bool responses = false;
  std::string status;  // only samples with this status ("pending", ...); "" = all
  // Only samples after this (item id, epoch), and at most `limit` of them (< 0: all): a page.
  std::optional<std::pair<std::string, int>> after;
  int64_t limit = -1;
};

// How many of a run's samples are planned (rows written) and in each state.
struct SampleCounts {
  int64_t planned = 0, pending = 0, done = 0, error = 0;
};

struct RunFilter {
  std::string suite_id;  // "" = any
  std::string status;    // "" = any
};

// Thread-safe. Writes of sample results are queued and committed in batches by one writer
// thread; Flush() waits until everything queued is durable.
class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Creates the run row (status "running", held by this process) with its items, in one
  // transaction, and returns the new run id. Its samples are added with EnqueuePlanned.
  virtual Result<int64_t> CreateRun(const RunRecord& run, const std::vector<Item>& items) = 0;
  // Queues planned samples (status "pending") for the writer thread. Queued before the results
  // of the same samples, they are written first; a sample planned twice is kept once.
  virtual void EnqueuePlanned(int64_t run_id, std::vector<PlannedSample> samples) = 0;
  // Creates a run with all its samples and waits until they are written (a convenience for
  // small runs and tests).
  Result<int64_t> CreateRun(const RunRecord& run, const std::vector<Item>& items,
                            const std::vector<std::pair<std::string, int>>& samples,
                            const std::vector<Json>& presentations);
  // Queues a finished sample for the writer thread.
  virtual void Enqueue(int64_t run_id, SampleResult result) = 0;
  // Waits until queued results are committed; returns the first write error, if any.
  virtual Status Flush() = 0;
  // The first write error so far (OK while every write succeeded), without waiting: a run stops
  // sending once its results can no longer be stored.
  virtual Status LastWriteError() const = 0;
  // Sets the final status and releases the run's lease; `finished_at` "" means now (a copied
  // run keeps its own). Status "queued" (a run planned for workers, plumb run --workers-only)
  // leaves finished_at empty.
  virtual Status FinishRun(int64_t run_id, const std::string& status, const std::string& error,
                           const std::string& finished_at = "") = 0;
  // Marks a run as running again (resume): clears finished_at and the error. The caller holds
  // the run (AcquireRun).
  virtual Status ReopenRun(int64_t run_id) = 0;

  // Leases: one process executes a run at a time. CreateRun gives the new run to this process;
  // AcquireRun takes an existing one, or fails with kAborted naming the owner while another live
  // process holds it (taking a run this process holds is a no-op). The store renews the lease of
  // every run it holds by a heartbeat until FinishRun or ReleaseRun (or until it is destroyed).
  // A run whose owner died without finishing reads back as "interrupted", and can be acquired.
  virtual Status AcquireRun(int64_t run_id) = 0;
  virtual Status ReleaseRun(int64_t run_id) = 0;
  // Cooperating workers: any number of processes, on any number of machines, execute one run
  // together (plumb run, resume and work all do). Each registers with JoinRun (CreateRun
  // registers the creator) and is kept alive by the store's heartbeat until LeaveRun. Pending
  // samples are leased to one worker at a time by ClaimSamples; a sample's result, once written,
  // ends its lease, and only the first result written for a sample is kept (a later one, from a
  // worker that took over a lease it presumed dead, is dropped). The leases of a worker that
  // died (kill -9, a lost machine: judged as for run leases) return to the pool.
  virtual Status JoinRun(int64_t run_id) = 0;
  // Gives back this process's leases of the run and deregisters it.
  virtual Status LeaveRun(int64_t run_id) = 0;
  // Waits until everything queued is written, then leases up to `n` pending samples no live
  // worker holds to this process, in (item id, epoch) order.
  virtual Result<SampleClaim> ClaimSamples(int64_t run_id, int64_t n) = 0;
  // Whether this process computes the run's metrics: kMine for exactly one worker, once every
  // planned sample (the run's n_samples) has ended. A finisher that died is replaced.
  virtual Result<FinishClaim> ClaimFinish(int64_t run_id) = 0;
  // The live workers of a run ("host:pid:start" each), this process included when it joined.
  virtual Result<std::vector<std::string>> LiveWorkers(int64_t run_id) const = 0;

  // Turns the run's errored samples back into pending ones (their responses and scores are
  // deleted) so that a resume sends them again. Returns how many there were.
  virtual Result<int64_t> ResetErroredSamples(int64_t run_id) = 0;
  // Replaces the run's metrics.
  virtual Status PutMetrics(int64_t run_id, const std::vector<Metric>& metrics) = 0;
  // Token counts from the stored responses and judgments: {"model": {"calls", "cached",
  // "prompt_tokens", "completion_tokens"}, "judges": {spec: {...}}}. Cached answers count as
  // calls of their own kind and their tokens are not counted (nothing was spent).
  virtual Result<Json> GetUsage(int64_t run_id) const = 0;
  virtual Status PutUsage(int64_t run_id, const Json& usage) = 0;

  // Batch mode: a run's provider batches (plumb/batch.h). PutBatch inserts a record (id 0: the
  // new id is set) or updates it, durably, before it returns. GetBatches lists them by id.
  virtual Status PutBatch(BatchRecord& batch) = 0;
  virtual Result<std::vector<BatchRecord>> GetBatches(int64_t run_id) const = 0;

  virtual Result<RunRecord> GetRun(int64_t run_id) const = 0;
  // The newest run (highest id), kNotFound when there is none.
  virtual Result<int64_t> LatestRunId() const = 0;
  virtual Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) const = 0;
  // Samples in (epoch, item id) order with their grades, and their responses unless
  // `with_responses` is false; `limit` >= 0 reads at most that many, from `offset` on.
  virtual Result<std::vector<SampleRecord>> GetSamples(int64_t run_id, bool with_responses = true,
                                                       int64_t offset = 0,
                                                       int64_t limit = -1) const = 0;
  // Calls `visit` for each sample of a run in (item id, epoch) order, reading one at a time, so
  // that a run of any size is read in constant memory; `visit` returns false to stop. Must not
  // call back into the store.
  virtual Status ScanSamples(int64_t run_id, const SampleScan& what,
                             const std::function<bool(SampleRecord&&)>& visit) const = 0;
  virtual Result<SampleCounts> CountSamples(int64_t run_id) const = 0;
  virtual Result<std::vector<Metric>> GetMetrics(int64_t run_id) const = 0;
  // The items the run was planned with, in suite order.
  virtual Result<std::vector<Item>> GetItems(int64_t run_id) const = 0;

  // Puts tag `name` on a run, moving it from another run of the same suite if needed.
  virtual Status SetTag(const std::string& name, int64_t run_id) = 0;
  // Every tag, by name and suite.
  virtual Result<std::vector<TagRecord>> ListTags() const = 0;

  // The built-in baselines' metrics, cached by a key of what determines them (see Baselines).
  virtual Result<std::optional<std::vector<Metric>>> GetBaseline(const std::string& key) const = 0;
  virtual Status PutBaseline(const std::string& key, const std::string& suite_id,
                             const std::string& model_spec, const std::vector<Metric>& metrics) = 0;

  // The response cache: completions by content key (see the runner's cache policy).
  virtual Result<std::optional<Completion>> CacheGet(const std::string& key) const = 0;
  // Queued for the writer thread, like sample results.
  virtual void CachePut(const std::string& key, const std::string& backend,
                        const Completion& c) = 0;
};

// This process as the stores name an owner or worker: "host:pid:start".
const std::string& ThisProcess();

// Opens the results store `db` names, creating its tables when needed: a PostgreSQL database for
// a URL postgresql://user[:password]@host[:port]/dbname (or postgres://...), otherwise a SQLite
// file (see OpenSqliteStore). The password may also come from PGPASSWORD or ~/.pgpass; it is
// registered with Redact and never shown (see StoreDisplayName). kInvalidArgument for a URL of
// another scheme.
Result<std::unique_ptr<Store>> OpenStore(const std::string& db);
// Opens an existing store read-only; kNotFound when it holds no results yet.
Result<std::unique_ptr<Store>> OpenStoreReadOnly(const std::string& db);
// `db` as it may be printed or stored: a URL without its password (and query string), a path
// as given.
std::string StoreDisplayName(const std::string& db);

// Opens (creating the tables when needed) a PostgreSQL results database; errors name the URL
// without its password. kUnavailable when the server cannot be reached, kUnauthenticated for
// missing or wrong credentials, kNotFound when the database does not exist, kFailedPrecondition
// when its schema is newer than this binary or it holds other tables.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url);
// Opens an existing PostgreSQL results database read-only; kNotFound when it holds no results.
Result<std::unique_ptr<Store>> OpenPostgresStoreReadOnly(const std::string& url);

// Opens (creating when needed) a SQLite results database. kFailedPrecondition when its schema
// is newer than this binary.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& path);

// Opens an existing database read-only; kNotFound when the file does not exist.
Result<std::unique_ptr<Store>> OpenSqliteStoreReadOnly(const std::filesystem::path& path);

}  // namespace plumb

#endif  // PLUMB_STORE_H_
