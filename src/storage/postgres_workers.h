// Cooperating workers in PostgreSQL (see JoinRun in plumb/store.h): the workers table, sample
// leases (samples.worker, claimed with SELECT ... FOR UPDATE SKIP LOCKED, so that workers on
// any number of machines never wait for each other's claims) and the claim of a run's finish.
// Internal to the PostgreSQL store; each function runs its own transaction on `conn`.
#ifndef PLUMB_STORAGE_POSTGRES_WORKERS_H_
#define PLUMB_STORAGE_POSTGRES_WORKERS_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "plumb/store.h"
#include "storage/postgres_conn.h"

namespace plumb::storage {

// Registers this process as a worker of the run (again: renews its heartbeat). Runs in the
// caller's transaction when there is one.
Status PostgresJoinRun(PgConn& conn, int64_t run_id);
Status PostgresLeaveRun(PgConn& conn, int64_t run_id);
Status PostgresHeartbeatWorkers(PgConn& conn, const std::set<int64_t>& runs);
Result<SampleClaim> PostgresClaimSamples(PgConn& conn, int64_t run_id, int64_t n);
Result<FinishClaim> PostgresClaimFinish(PgConn& conn, int64_t run_id);
Result<std::vector<std::string>> PostgresLiveWorkers(PgConn& conn, int64_t run_id);

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_POSTGRES_WORKERS_H_
