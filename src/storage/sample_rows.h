// Rows of the samples, responses and scores tables: the writer thread's batched inserts and the
// read of a run's samples, plus the column helpers the SQLite store shares. Internal to the
// store; SQLite errors are thrown as SQLite::Exception for the store to turn into a Status.
#ifndef PLUMB_STORAGE_SAMPLE_ROWS_H_
#define PLUMB_STORAGE_SAMPLE_ROWS_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plumb/store.h"
#include "storage/write_queue.h"

namespace plumb {

template <typename T>
inline void BindOpt(SQLite::Statement& q, int i, const std::optional<T>& v) {
  if (v)
    q.bind(i, *v);
  else
    q.bind(i);
}

inline std::optional<double> OptDouble(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getDouble();
}

inline std::optional<int64_t> OptInt64(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

inline Json ParseStored(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

using storage::GradeStatusFromName;
using storage::WriteJob;

// Writes the jobs' responses, scores, sample statuses and cache entries (error texts redacted).
// The caller holds the transaction.
void WriteJobs(SQLite::Database& db, const std::vector<WriteJob>& batch);

// The responses' columns for ResponseFromRow; a database before schema 4 (read-only, not
// migrated) has no tool_calls, before 5 no batched.
std::string ResponseColumns(int schema);
// A response from a row of those columns.
ResponseRecord ResponseFromRow(SQLite::Statement& r);

// A run's samples in (epoch, item id) order with their grades, and their responses (by turn)
// unless `with_responses` is false; with `limit` >= 0 at most that many from `offset` on.
// `schema` is the database's PRAGMA user_version.
std::vector<SampleRecord> ReadSamples(SQLite::Database& db, int schema, int64_t run_id,
                                      bool with_responses, int64_t offset = 0, int64_t limit = -1);

// Each sample of a run in (item id, epoch) order, one at a time (see Store::ScanSamples).
void ScanSampleRows(SQLite::Database& db, int schema, int64_t run_id, const SampleScan& what,
                    const std::function<bool(SampleRecord&&)>& visit);

}  // namespace plumb

#endif  // PLUMB_STORAGE_SAMPLE_ROWS_H_
