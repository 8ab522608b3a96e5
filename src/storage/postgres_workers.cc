// Cooperating workers in PostgreSQL (see postgres_workers.h).
#include "storage/postgres_workers.h"

#include <fmt/format.h>

#include <map>

#include "plumb/text.h"
#include "storage/lease.h"
#include "storage/postgres_rows.h"

namespace plumb::storage {
namespace {

PgParams RunAndSelf(int64_t run_id) {
  PgParams p;
  p.Add(run_id).Add(SelfOwner());
  return p;
}

// Gives the leases of workers that died, and of workers no longer registered, back to the pool.
Status ReleaseDeadLeases(PgConn& conn, int64_t run_id) {
  PgParams run;
  run.Add(run_id);
  PLUMB_ASSIGN_OR_RETURN(
      PgResult w, conn.Exec("SELECT worker, heartbeat_at FROM workers WHERE run_id = $1", run));
  const double now = UnixNow();
  for (int i = 0; i < w.rows(); ++i) {
    if (OwnerAlive(w.Text(i, 0), w.Double(i, 1), now)) continue;
    PgParams p;
    p.Add(run_id).Add(w.Text(i, 0));
    PLUMB_RETURN_IF_ERROR(
        conn.Exec("DELETE FROM workers WHERE run_id = $1 AND worker = $2", p).status());
  }
  // The rows are locked in key order, so that two workers freeing the same dead worker's
  // samples at once wait for each other instead of deadlocking.
  return conn
      .Exec(
          "UPDATE samples AS s SET worker = NULL FROM (SELECT item_id, epoch FROM samples WHERE "
          "run_id = $1 AND status = 'pending' AND worker IS NOT NULL AND worker NOT IN (SELECT "
          "worker FROM workers WHERE run_id = $1) ORDER BY item_id, epoch FOR UPDATE) AS d WHERE "
          "s.run_id = $1 AND s.item_id = d.item_id AND s.epoch = d.epoch",
          run)
      .status();
}

// Up to `n` pending samples no one holds, leased to this process. SKIP LOCKED: rows another
// worker is claiming at this moment are passed over, not waited for; once its claim commits
// they hold its lease, which the WHERE sees.
Status Lease(PgConn& conn, int64_t run_id, int64_t n, std::vector<SampleRecord>& out) {
  PgParams p;
  p.Add(run_id).Add(SelfOwner()).Add(n);
  PLUMB_ASSIGN_OR_RETURN(
      PgResult q,
      conn.Exec("UPDATE samples AS s SET worker = $2 FROM (SELECT item_id, epoch FROM samples "
                "WHERE run_id = $1 AND status = 'pending' AND worker IS NULL ORDER BY item_id, "
                "epoch LIMIT $3 FOR UPDATE SKIP LOCKED) AS c WHERE s.run_id = $1 AND s.item_id "
                "= c.item_id AND s.epoch = c.epoch RETURNING s.item_id, s.epoch, s.presentation",
                p));
  std::map<std::pair<std::string, int>, size_t> index;
  const size_t first = out.size();
  for (int i = 0; i < q.rows(); ++i) {
    SampleRecord s;
    s.item_id = q.Text(i, 0);
    s.epoch = q.Int(i, 1);
    s.presentation = q.JsonAt(i, 2);
    s.status = "pending";
    out.push_back(std::move(s));
  }
  if (q.rows() == 0) return Status();
  // The turns already stored of conversations that were under way.
  PLUMB_ASSIGN_OR_RETURN(
      PgResult r,
      conn.Exec(fmt::format("SELECT {} FROM responses WHERE run_id = $1 AND status = 'ok' AND "
                            "(item_id, epoch) IN (SELECT item_id, epoch FROM samples WHERE "
                            "run_id = $1 AND status = 'pending' AND worker = $2) ORDER BY "
                            "item_id, epoch, turn",
                            kResponseColumns),
                RunAndSelf(run_id)));
  for (size_t i = first; i < out.size(); ++i) index[{out[i].item_id, out[i].epoch}] = i;
  for (int i = 0; i < r.rows(); ++i) {
    auto it = index.find({r.Text(i, 0), r.Int(i, 1)});
    if (it != index.end()) out[it->second].responses.push_back(ResponseFromRow(r, i));
  }
  return Status();
}

}  // namespace

Status PostgresJoinRun(PgConn& conn, int64_t run_id) {
  PgParams p = RunAndSelf(run_id);
  p.Add(UnixNow()).Add(NowIso8601());
  return conn
      .Exec(
          "INSERT INTO workers (run_id, worker, heartbeat_at, joined_at) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (run_id, worker) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
          p)
      .status();
}

Status PostgresLeaveRun(PgConn& conn, int64_t run_id) {
  return InTransaction(conn, kBegin, [&]() -> Status {
    PLUMB_RETURN_IF_ERROR(conn.Exec("UPDATE samples SET worker = NULL WHERE run_id = $1 AND "
                                    "status = 'pending' AND worker = $2",
                                    RunAndSelf(run_id))
                              .status());
    return conn.Exec("DELETE FROM workers WHERE run_id = $1 AND worker = $2", RunAndSelf(run_id))
        .status();
  });
}

Status PostgresHeartbeatWorkers(PgConn& conn, const std::set<int64_t>& runs) {
  if (runs.empty()) return Status();
  std::string ids = "{";
  for (int64_t id : runs) ids += (ids.size() > 1 ? "," : "") + std::to_string(id);
  PgParams p;
  p.Add(UnixNow()).Add(ids + "}").Add(SelfOwner());
  return conn
      .Exec(
          "UPDATE workers SET heartbeat_at = $1 WHERE run_id = ANY ($2::bigint[]) AND worker = "
          "$3",
          p)
      .status();
}

Result<SampleClaim> PostgresClaimSamples(PgConn& conn, int64_t run_id, int64_t n) {
  SampleClaim claim;
  Status s = InTransaction(conn, kBegin, [&]() -> Status {
    PLUMB_RETURN_IF_ERROR(Lease(conn, run_id, n, claim.samples));
    if (static_cast<int64_t>(claim.samples.size()) >= n) return Status();
    // The pool is running dry: the leases of workers that died return to it (checked here
    // rather than at every claim, so a dead worker's samples wait at most until the end).
    PLUMB_RETURN_IF_ERROR(ReleaseDeadLeases(conn, run_id));
    PLUMB_RETURN_IF_ERROR(
        Lease(conn, run_id, n - static_cast<int64_t>(claim.samples.size()), claim.samples));
    // Held elsewhere: leased to another worker, or free but passed over because another
    // worker's claim has it locked at this moment (its lease is not committed yet, so only the
    // free row is visible). Counting only committed leases, a worker claiming while the others'
    // claims are under way would find nothing and take the run for finished.
    PLUMB_ASSIGN_OR_RETURN(PgResult h, conn.Exec("SELECT count(*) FROM samples WHERE run_id = $1 "
                                                 "AND status = 'pending' AND (worker IS NULL OR "
                                                 "worker <> $2)",
                                                 RunAndSelf(run_id)));
    claim.held_elsewhere = h.Int64(0, 0);
    return Status();
  });
  if (!s.ok()) return s;
  return claim;
}

Result<FinishClaim> PostgresClaimFinish(PgConn& conn, int64_t run_id) {
  FinishClaim out = FinishClaim::kNotYet;
  Status s = InTransaction(conn, kBegin, [&]() -> Status {
    PgParams run;
    run.Add(run_id);
    // The run's row is locked: workers asking at once are answered one after the other.
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r,
        conn.Exec("SELECT finisher, n_samples, status FROM runs WHERE id = $1 FOR UPDATE", run));
    if (r.rows() == 0 || r.Text(0, 2) == "completed") {
      out = FinishClaim::kTaken;
      return Status();
    }
    const std::string finisher = r.Text(0, 0);
    if (!finisher.empty() && finisher != SelfOwner()) {
      PgParams p;
      p.Add(run_id).Add(finisher);
      PLUMB_ASSIGN_OR_RETURN(
          PgResult w,
          conn.Exec("SELECT heartbeat_at FROM workers WHERE run_id = $1 AND worker = $2", p));
      if (w.rows() > 0 && OwnerAlive(finisher, w.Double(0, 0), UnixNow())) {
        out = FinishClaim::kTaken;
        return Status();
      }
    }
    PLUMB_ASSIGN_OR_RETURN(PgResult c, conn.Exec("SELECT count(*), count(*) FILTER (WHERE status = "
                                                 "'pending') FROM samples WHERE run_id = $1",
                                                 run));
    if (c.Int64(0, 0) < r.Int64(0, 1) || c.Int64(0, 1) > 0) return Status();
    PgParams u;
    u.Add(SelfOwner()).Add(run_id);
    out = FinishClaim::kMine;
    return conn.Exec("UPDATE runs SET finisher = $1 WHERE id = $2", u).status();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<std::string>> PostgresLiveWorkers(PgConn& conn, int64_t run_id) {
  PgParams run;
  run.Add(run_id);
  PLUMB_ASSIGN_OR_RETURN(
      PgResult w, conn.Exec("SELECT worker, heartbeat_at FROM workers WHERE run_id = $1", run));
  std::vector<std::string> out;
  const double now = UnixNow();
  for (int i = 0; i < w.rows(); ++i) {
    if (OwnerAlive(w.Text(i, 0), w.Double(i, 1), now)) out.push_back(w.Text(i, 0));
  }
  return out;
}

}  // namespace plumb::storage
