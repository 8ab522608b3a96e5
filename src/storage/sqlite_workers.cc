// Cooperating workers in SQLite (see sqlite_workers.h).
#include "storage/sqlite_workers.h"

#include <fmt/format.h>

#include "plumb/text.h"
#include "storage/lease.h"
#include "storage/sample_rows.h"

namespace plumb::storage {
namespace {

struct WorkerRow {
  std::string worker;
  double heartbeat_at = 0;
};

std::vector<WorkerRow> Workers(SQLite::Database& db, int64_t run_id) {
  SQLite::Statement q(db, "SELECT worker, heartbeat_at FROM workers WHERE run_id=?");
  q.bind(1, run_id);
  std::vector<WorkerRow> out;
  while (q.executeStep()) out.push_back({q.getColumn(0).getString(), q.getColumn(1).getDouble()});
  return out;
}

// Gives the leases of workers that died, and of workers no longer registered, back to the pool.
void ReleaseDeadLeases(SQLite::Database& db, int64_t run_id) {
  const double now = UnixNow();
  SQLite::Statement drop(db, "DELETE FROM workers WHERE run_id=? AND worker=?");
  for (const WorkerRow& w : Workers(db, run_id)) {
    if (OwnerAlive(w.worker, w.heartbeat_at, now)) continue;
    drop.bind(1, run_id);
    drop.bind(2, w.worker);
    drop.exec();
    drop.reset();
  }
  SQLite::Statement free(db,
                         "UPDATE samples INDEXED BY samples_pending SET worker=NULL WHERE run_id=? "
                         "AND status='pending' AND worker IS NOT NULL AND worker NOT IN (SELECT "
                         "worker FROM workers WHERE run_id=?)");
  free.bind(1, run_id);
  free.bind(2, run_id);
  free.exec();
}

// Up to `n` pending samples no one holds, leased to this process.
std::vector<SampleRecord> Lease(SQLite::Database& db, int schema, int64_t run_id, int64_t n) {
  std::vector<SampleRecord> out;
  SQLite::Statement q(db,
                      "SELECT item_id, epoch, presentation FROM samples INDEXED BY samples_pending "
                      "WHERE run_id=? AND status='pending' AND worker IS NULL ORDER BY item_id, "
                      "epoch LIMIT ?");
  q.bind(1, run_id);
  q.bind(2, n);
  while (q.executeStep()) {
    SampleRecord s;
    s.item_id = q.getColumn(0).getString();
    s.epoch = q.getColumn(1).getInt();
    s.presentation = ParseStored(q.getColumn(2).getString());
    s.status = "pending";
    out.push_back(std::move(s));
  }
  SQLite::Statement take(db, "UPDATE samples SET worker=? WHERE run_id=? AND item_id=? AND epoch=?");
  // The turns already stored of conversations that were under way.
  SQLite::Statement turns(db, fmt::format("SELECT {} FROM responses WHERE run_id=? AND item_id=? "
                                          "AND epoch=? AND status='ok' ORDER BY turn",
                                          ResponseColumns(schema)));
  for (SampleRecord& s : out) {
    take.bind(1, SelfOwner());
    take.bind(2, run_id);
    take.bind(3, s.item_id);
    take.bind(4, s.epoch);
    take.exec();
    take.reset();
    turns.bind(1, run_id);
    turns.bind(2, s.item_id);
    turns.bind(3, s.epoch);
    while (turns.executeStep()) s.responses.push_back(ResponseFromRow(turns));
    turns.reset();
  }
  return out;
}

int64_t HeldElsewhere(SQLite::Database& db, int64_t run_id) {
  SQLite::Statement q(db,
                      "SELECT count(*) FROM samples INDEXED BY samples_pending WHERE run_id=? AND "
                      "status='pending' AND worker IS NOT NULL AND worker<>?");
  q.bind(1, run_id);
  q.bind(2, SelfOwner());
  q.executeStep();
  return q.getColumn(0).getInt64();
}

}  // namespace

void SqliteJoinRun(SQLite::Database& db, int64_t run_id) {
  SQLite::Statement q(db,
                      "INSERT INTO workers (run_id, worker, heartbeat_at, joined_at) VALUES "
                      "(?,?,?,?) ON CONFLICT (run_id, worker) DO UPDATE SET heartbeat_at = "
                      "excluded.heartbeat_at");
  q.bind(1, run_id);
  q.bind(2, SelfOwner());
  q.bind(3, UnixNow());
  q.bind(4, NowIso8601());
  q.exec();
}

void SqliteLeaveRun(SQLite::Database& db, int64_t run_id) {
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement free(db,
                         "UPDATE samples INDEXED BY samples_pending SET worker=NULL WHERE run_id=? "
                         "AND status='pending' AND worker=?");
  free.bind(1, run_id);
  free.bind(2, SelfOwner());
  free.exec();
  SQLite::Statement drop(db, "DELETE FROM workers WHERE run_id=? AND worker=?");
  drop.bind(1, run_id);
  drop.bind(2, SelfOwner());
  drop.exec();
  tx.commit();
}

void SqliteHeartbeatWorkers(SQLite::Database& db, const std::set<int64_t>& runs) {
  SQLite::Statement q(db, "UPDATE workers SET heartbeat_at=? WHERE run_id=? AND worker=?");
  for (int64_t id : runs) {
    q.bind(1, UnixNow());
    q.bind(2, id);
    q.bind(3, SelfOwner());
    q.exec();
    q.reset();
  }
}

SampleClaim SqliteClaimSamples(SQLite::Database& db, int schema, int64_t run_id, int64_t n) {
  // IMMEDIATE: the write lock first, so that two processes never lease the same sample.
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  SampleClaim claim;
  claim.samples = Lease(db, schema, run_id, n);
  if (static_cast<int64_t>(claim.samples.size()) < n) {
    // The pool is running dry: the leases of workers that died return to it (checked here
    // rather than at every claim, so a dead worker's samples wait at most until the end).
    ReleaseDeadLeases(db, run_id);
    std::vector<SampleRecord> more =
        Lease(db, schema, run_id, n - static_cast<int64_t>(claim.samples.size()));
    for (auto& s : more) claim.samples.push_back(std::move(s));
    claim.held_elsewhere = HeldElsewhere(db, run_id);
  }
  tx.commit();
  return claim;
}

FinishClaim SqliteClaimFinish(SQLite::Database& db, int64_t run_id) {
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement r(db, "SELECT finisher, n_samples, status FROM runs WHERE id=?");
  r.bind(1, run_id);
  if (!r.executeStep()) return FinishClaim::kTaken;
  const std::string finisher = r.getColumn(0).getString();
  const int64_t n_samples = r.getColumn(1).getInt64();
  if (r.getColumn(2).getString() == "completed") return FinishClaim::kTaken;
  if (!finisher.empty() && finisher != SelfOwner()) {
    const double now = UnixNow();
    for (const WorkerRow& w : Workers(db, run_id)) {
      if (w.worker == finisher && OwnerAlive(w.worker, w.heartbeat_at, now))
        return FinishClaim::kTaken;
    }
  }
  SQLite::Statement c(db,
                      "SELECT count(*), (SELECT count(*) FROM samples INDEXED BY samples_pending "
                      "WHERE run_id=?1 AND status='pending') FROM samples WHERE run_id=?1");
  c.bind(1, run_id);
  c.executeStep();
  if (c.getColumn(0).getInt64() < n_samples || c.getColumn(1).getInt64() > 0)
    return FinishClaim::kNotYet;
  SQLite::Statement u(db, "UPDATE runs SET finisher=? WHERE id=?");
  u.bind(1, SelfOwner());
  u.bind(2, run_id);
  u.exec();
  tx.commit();
  return FinishClaim::kMine;
}

std::vector<std::string> SqliteLiveWorkers(SQLite::Database& db, int64_t run_id) {
  std::vector<std::string> out;
  const double now = UnixNow();
  for (const WorkerRow& w : Workers(db, run_id)) {
    if (OwnerAlive(w.worker, w.heartbeat_at, now)) out.push_back(w.worker);
  }
  return out;
}

}  // namespace plumb::storage
