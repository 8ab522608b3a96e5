// The PostgreSQL schema (version 2 = SQLite schema 6) and the migration ladder.
#include "storage/postgres_schema.h"

#include <fmt/format.h>

namespace plumb::storage {
namespace {

// Keys and every column that is sorted on compare byte by byte (COLLATE "C"), as in SQLite, so
// that orders, pages and the merge in ScanSamples do not depend on the database's locale.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE plumb_schema (
  version INTEGER NOT NULL
);
CREATE TABLE runs (
  id               BIGSERIAL PRIMARY KEY,
  started_at       TEXT NOT NULL,
  finished_at      TEXT NOT NULL DEFAULT '',
  status           TEXT NOT NULL,
  plumb_version    TEXT NOT NULL,
  git_sha          TEXT NOT NULL,
  suite_id         TEXT COLLATE "C" NOT NULL,
  suite_version    INTEGER NOT NULL,
  suite_hash       TEXT NOT NULL,
  primary_metric   TEXT NOT NULL,
  higher_is_better BOOLEAN NOT NULL,
  model_spec       TEXT COLLATE "C" NOT NULL,
  backend_id       TEXT NOT NULL,
  params           JSONB NOT NULL,
  seed             BIGINT NOT NULL,
  concurrency      INTEGER NOT NULL,
  epochs           INTEGER NOT NULL,
  item_limit       BIGINT,
  n_samples        BIGINT NOT NULL,
  error            TEXT NOT NULL DEFAULT '',
  settings         JSONB NOT NULL DEFAULT '{}',
  parent_run_id    BIGINT REFERENCES runs(id),
  usage            JSONB NOT NULL DEFAULT '{}',
  owner            TEXT NOT NULL DEFAULT '',
  heartbeat_at     DOUBLE PRECISION NOT NULL DEFAULT 0,
  uuid             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_suite_model ON runs(suite_id, model_spec, id);
CREATE INDEX runs_by_uuid ON runs(uuid);

CREATE TABLE items (
  run_id   BIGINT NOT NULL REFERENCES runs(id),
  item_id  TEXT COLLATE "C" NOT NULL,
  category TEXT NOT NULL,
  line     INTEGER NOT NULL,
  fields   JSONB NOT NULL,
  metadata JSONB NOT NULL,
  scored   BOOLEAN NOT NULL,
  PRIMARY KEY (run_id, item_id)
);

CREATE TABLE samples (
  run_id       BIGINT NOT NULL REFERENCES runs(id),
  item_id      TEXT COLLATE "C" NOT NULL,
  epoch        INTEGER NOT NULL,
  presentation JSONB NOT NULL,
  status       TEXT NOT NULL,
  PRIMARY KEY (run_id, item_id, epoch)
);

CREATE TABLE responses (
  run_id            BIGINT NOT NULL REFERENCES runs(id),
  item_id           TEXT COLLATE "C" NOT NULL,
  epoch             INTEGER NOT NULL,
  turn              INTEGER NOT NULL,
  request           JSONB NOT NULL,
  status            TEXT NOT NULL,
  text              TEXT,
  finish_reason     TEXT,
  prompt_tokens     BIGINT,
  completion_tokens BIGINT,
  latency_ms        DOUBLE PRECISION,
  attempts          INTEGER NOT NULL,
  cached            BOOLEAN NOT NULL DEFAULT false,
  error_code        TEXT,
  error_message     TEXT,
  created_at        TEXT NOT NULL,
  tool_calls        JSONB,
  batched           BOOLEAN NOT NULL DEFAULT false,
  endpoint          TEXT,
  PRIMARY KEY (run_id, item_id, epoch, turn)
);

CREATE TABLE scores (
  run_id  BIGINT NOT NULL REFERENCES runs(id),
  item_id TEXT COLLATE "C" NOT NULL,
  epoch   INTEGER NOT NULL,
  grader  TEXT COLLATE "C" NOT NULL,
  status  TEXT NOT NULL,
  value   DOUBLE PRECISION,
  label   TEXT NOT NULL,
  details JSONB NOT NULL,
  error   TEXT NOT NULL,
  PRIMARY KEY (run_id, item_id, epoch, grader)
);

CREATE TABLE cache (
  key        TEXT COLLATE "C" PRIMARY KEY,
  backend    TEXT NOT NULL,
  completion JSONB NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE metrics (
  run_id    BIGINT NOT NULL REFERENCES runs(id),
  name      TEXT COLLATE "C" NOT NULL,
  category  TEXT COLLATE "C" NOT NULL,
  value     DOUBLE PRECISION,
  ci_low    DOUBLE PRECISION,
  ci_high   DOUBLE PRECISION,
  n         BIGINT NOT NULL,
  k         BIGINT,
  ci_method TEXT NOT NULL,
  details   JSONB NOT NULL,
  PRIMARY KEY (run_id, name, category)
);

CREATE TABLE tags (
  name       TEXT COLLATE "C" NOT NULL,
  suite_id   TEXT COLLATE "C" NOT NULL,
  run_id     BIGINT NOT NULL REFERENCES runs(id),
  created_at TEXT NOT NULL,
  PRIMARY KEY (name, suite_id)
);

CREATE TABLE baselines (
  key        TEXT COLLATE "C" PRIMARY KEY,
  suite_id   TEXT NOT NULL,
  model_spec TEXT NOT NULL,
  metrics    JSONB NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE batches (
  id         BIGSERIAL PRIMARY KEY,
  run_id     BIGINT NOT NULL REFERENCES runs(id),
  role       TEXT NOT NULL,
  provider   TEXT NOT NULL,
  state      TEXT NOT NULL,
  info       JSONB NOT NULL,
  custom_ids JSONB NOT NULL,
  resubmits  INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX batches_run ON batches(run_id, id);
)sql";

// Version 2 (= SQLite schema 6): cooperating workers, as in SQLite.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE workers (
  run_id       BIGINT NOT NULL REFERENCES runs(id),
  worker       TEXT COLLATE "C" NOT NULL,
  heartbeat_at DOUBLE PRECISION NOT NULL,
  joined_at    TEXT NOT NULL,
  PRIMARY KEY (run_id, worker)
);
ALTER TABLE samples ADD COLUMN worker TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN finisher TEXT NOT NULL DEFAULT '';
CREATE INDEX samples_pending ON samples (run_id, item_id, epoch) WHERE status = 'pending';
)sql";

// Serialises migrations of one database across processes ('plumb' in ASCII).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(482184553826)";

// The schema version; 0 when the database has no plumb_schema table. The catalog is read as a
// table (not through to_regclass, whose cached "no such table" outlives another process's
// migration while this one waited for the lock).
Result<int> Version(PgConn& conn) {
  PLUMB_ASSIGN_OR_RETURN(PgResult t, conn.Exec("SELECT count(*) FROM pg_catalog.pg_tables WHERE "
                                               "schemaname = current_schema() AND tablename = "
                                               "'plumb_schema'"));
  if (t.Int64(0, 0) == 0) return 0;
  PLUMB_ASSIGN_OR_RETURN(PgResult v, conn.Exec("SELECT max(version) FROM plumb_schema"));
  return v.rows() == 0 || v.IsNull(0, 0) ? 0 : v.Int(0, 0);
}

// Tables in the schema the store writes to (current_schema()).
Result<int64_t> TableCount(PgConn& conn) {
  PLUMB_ASSIGN_OR_RETURN(PgResult r, conn.Exec("SELECT count(*) FROM pg_tables WHERE "
                                               "schemaname = current_schema()"));
  return r.Int64(0, 0);
}

Status CheckEncoding(PgConn& conn) {
  PLUMB_ASSIGN_OR_RETURN(PgResult r, conn.Exec("SHOW server_encoding"));
  std::string encoding = r.Text(0, 0);
  if (encoding == "UTF8" || encoding == "SQL_ASCII") return Status();
  return FailedPrecondition(
      fmt::format("results database '{}' has encoding {}: plumb stores text in UTF-8; create the "
                  "database with ENCODING 'UTF8'",
                  conn.where(), encoding));
}

Status NewerThanThis(PgConn& conn, int version, const char* what_to_do) {
  return FailedPrecondition(fmt::format(
      "results database '{}' has PostgreSQL schema version {}, newer than this plumb supports "
      "({}); {}",
      conn.where(), version, kPostgresSchemaVersion, what_to_do));
}

Status MigrateLocked(PgConn& conn) {
  PLUMB_RETURN_IF_ERROR(conn.Run(kMigrationLock));
  PLUMB_ASSIGN_OR_RETURN(int version, Version(conn));  // again: another process may have done it
  if (version > kPostgresSchemaVersion)
    return NewerThanThis(conn, version, "upgrade plumb or use another --db");
  if (version == kPostgresSchemaVersion) return Status();
  if (version == 0) {
    PLUMB_ASSIGN_OR_RETURN(int64_t tables, TableCount(conn));
    if (tables != 0) {
      return FailedPrecondition(fmt::format(
          "'{}' is a PostgreSQL database with other tables, not a plumb results database (use "
          "another database, or a schema of its own with ?options=-csearch_path%3DNAME; see --db)",
          conn.where()));
    }
    PLUMB_RETURN_IF_ERROR(conn.Run(kSchemaV1));
  }
  if (version < 2) PLUMB_RETURN_IF_ERROR(conn.Run(kSchemaV2));
  // Later versions add their steps here: if (version < 3) { ... }
  PLUMB_RETURN_IF_ERROR(conn.Run("DELETE FROM plumb_schema"));
  PgParams p;
  p.Add(kPostgresSchemaVersion);
  return conn.Exec("INSERT INTO plumb_schema (version) VALUES ($1)", p).status();
}

}  // namespace

Status PostgresMigrate(PgConn& conn) {
  PLUMB_RETURN_IF_ERROR(CheckEncoding(conn));
  PLUMB_ASSIGN_OR_RETURN(int version, Version(conn));
  if (version == kPostgresSchemaVersion) return Status();  // the common case takes no lock
  return InTransaction(conn, kBegin, [&] { return MigrateLocked(conn); });
}

Status PostgresCheckReadable(PgConn& conn) {
  PLUMB_ASSIGN_OR_RETURN(int version, Version(conn));
  if (version > kPostgresSchemaVersion) return NewerThanThis(conn, version, "upgrade plumb");
  if (version > 0) return Status();
  PLUMB_ASSIGN_OR_RETURN(int64_t tables, TableCount(conn));
  if (tables != 0) {
    return FailedPrecondition(
        fmt::format("'{}' is not a plumb results database (see --db)", conn.where()));
  }
  return NotFound(
      fmt::format("results database '{}' holds no results yet (run plumb run first, or see --db)",
                  conn.where()));
}

}  // namespace plumb::storage
