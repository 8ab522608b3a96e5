// Cooperating workers in SQLite (see JoinRun in plumb/store.h): the workers table, sample leases
// (samples.worker) and the claim of a run's finish. Several processes on one machine share a
// run through the file's write lock: each claim is an IMMEDIATE transaction. Internal to the
// SQLite store; errors are thrown as SQLite::Exception. The caller serialises calls on `db`.
#ifndef PLUMB_STORAGE_SQLITE_WORKERS_H_
#define PLUMB_STORAGE_SQLITE_WORKERS_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "plumb/store.h"

namespace plumb::storage {

// Registers this process as a worker of the run (again: renews its heartbeat).
void SqliteJoinRun(SQLite::Database& db, int64_t run_id);
// Gives back this process's leases of the run and deregisters it.
void SqliteLeaveRun(SQLite::Database& db, int64_t run_id);
// Renews the heartbeat of this process in these runs.
void SqliteHeartbeatWorkers(SQLite::Database& db, const std::set<int64_t>& runs);
// See Store::ClaimSamples (the caller has written what was queued). `schema` is the database's
// user_version.
SampleClaim SqliteClaimSamples(SQLite::Database& db, int schema, int64_t run_id, int64_t n);
FinishClaim SqliteClaimFinish(SQLite::Database& db, int64_t run_id);
std::vector<std::string> SqliteLiveWorkers(SQLite::Database& db, int64_t run_id);

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_SQLITE_WORKERS_H_
