// Rows of the PostgreSQL tables: the writer thread's batched upserts of samples, responses and
// scores, the reads of a run's samples, and the records of the other tables as read back.
// Internal to the PostgreSQL store.
#ifndef PLUMB_STORAGE_POSTGRES_ROWS_H_
#define PLUMB_STORAGE_POSTGRES_ROWS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "plumb/batch.h"
#include "plumb/store.h"
#include "storage/postgres_conn.h"
#include "storage/write_queue.h"

namespace plumb::storage {

// Writes the jobs' planned samples, cache entries, responses, scores and sample statuses (error
// texts redacted) as a few multi-row statements, with the outcome of writing them one by one in
// order: a sample planned twice is kept once, a later response or score of a pending sample
// replaces an earlier one, and a sample takes only its first result (later results of an ended
// sample are dropped). Rows are written in key order, so that concurrent writers take their row
// locks in one order. The caller holds the transaction.
Status PostgresWriteJobs(PgConn& conn, const std::vector<WriteJob>& batch);

// A run's samples in (epoch, item id) order with their grades, and their responses (by turn)
// unless `with_responses` is false; with `limit` >= 0 at most that many from `offset` on. Reads
// one snapshot.
Result<std::vector<SampleRecord>> PostgresReadSamples(PgConn& conn, int64_t run_id,
                                                      bool with_responses, int64_t offset,
                                                      int64_t limit);

// Each sample of a run in (item id, epoch) order, one at a time, through cursors on one
// snapshot (see Store::ScanSamples).
Status PostgresScanSamples(PgConn& conn, int64_t run_id, const SampleScan& what,
                           const std::function<bool(SampleRecord&&)>& visit);

// The columns each of these reads, in their order.
inline constexpr const char* kRunColumns =
    "id, started_at, finished_at, status, plumb_version, git_sha, suite_id, suite_version, "
    "suite_hash, model_spec, backend_id, params, seed, concurrency, epochs, item_limit, "
    "n_samples, error, settings, primary_metric, higher_is_better, parent_run_id, usage, owner, "
    "heartbeat_at, uuid";
inline constexpr const char* kResponseColumns =
    "item_id, epoch, turn, request, status, text, finish_reason, prompt_tokens, "
    "completion_tokens, latency_ms, attempts, error_code, error_message, cached, tool_calls, "
    "batched, endpoint";
inline constexpr const char* kMetricColumns =
    "name, category, value, ci_low, ci_high, n, k, ci_method, details";
inline constexpr const char* kItemColumns = "item_id, category, line, fields, metadata, scored";
inline constexpr const char* kBatchColumns =
    "id, run_id, role, provider, state, info, custom_ids, resubmits, created_at, updated_at";

// The run as stored: its status as written (the store judges its owner's liveness).
RunRecord RunFromRow(const PgResult& r, int row);
Metric MetricFromRow(const PgResult& r, int row);
ResponseRecord ResponseFromRow(const PgResult& r, int row);
Item ItemFromRow(const PgResult& r, int row);
BatchRecord BatchFromRow(const PgResult& r, int row);

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_POSTGRES_ROWS_H_
