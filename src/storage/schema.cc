// The schema (version 1 and the steps to later versions) and the migration ladder.
#include "storage/schema.h"

#include <fmt/format.h>

#include "plumb/store.h"

namespace plumb::storage {
namespace {

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at    TEXT NOT NULL,
  finished_at   TEXT NOT NULL DEFAULT '',
  status        TEXT NOT NULL,
  plumb_version TEXT NOT NULL,
  git_sha       TEXT NOT NULL,
  suite_id      TEXT NOT NULL,
  suite_version INTEGER NOT NULL,
  suite_hash    TEXT NOT NULL,
  primary_metric TEXT NOT NULL,
  higher_is_better INTEGER NOT NULL,
  model_spec    TEXT NOT NULL,
  backend_id    TEXT NOT NULL,
  params        TEXT NOT NULL,
  seed          INTEGER NOT NULL,
  concurrency   INTEGER NOT NULL,
  epochs        INTEGER NOT NULL,
  item_limit    INTEGER,
  n_samples     INTEGER NOT NULL,
  error         TEXT NOT NULL DEFAULT '',
  settings      TEXT NOT NULL DEFAULT '{}',
  parent_run_id INTEGER REFERENCES runs(id),
  usage         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_suite_model ON runs(suite_id, model_spec, id);

CREATE TABLE items (
  run_id   INTEGER NOT NULL REFERENCES runs(id),
  item_id  TEXT NOT NULL,
  category TEXT NOT NULL,
  line     INTEGER NOT NULL,
  fields   TEXT NOT NULL,
  metadata TEXT NOT NULL,
  scored   INTEGER NOT NULL,
  PRIMARY KEY (run_id, item_id)
) WITHOUT ROWID;

CREATE TABLE samples (
  run_id       INTEGER NOT NULL REFERENCES runs(id),
  item_id      TEXT NOT NULL,
  epoch        INTEGER NOT NULL,
  presentation TEXT NOT NULL,
  status       TEXT NOT NULL,
  PRIMARY KEY (run_id, item_id, epoch)
) WITHOUT ROWID;

CREATE TABLE responses (
  run_id            INTEGER NOT NULL REFERENCES runs(id),
  item_id           TEXT NOT NULL,
  epoch             INTEGER NOT NULL,
  turn              INTEGER NOT NULL,
  request           TEXT NOT NULL,
  status            TEXT NOT NULL,
  text              TEXT,
  finish_reason     TEXT,
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  latency_ms        REAL,
  attempts          INTEGER NOT NULL,
  cached            INTEGER NOT NULL DEFAULT 0,
  error_code        TEXT,
  error_message     TEXT,
  created_at        TEXT NOT NULL,
  PRIMARY KEY (run_id, item_id, epoch, turn)
) WITHOUT ROWID;

CREATE TABLE scores (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  item_id TEXT NOT NULL,
  epoch   INTEGER NOT NULL,
  grader  TEXT NOT NULL,
  status  TEXT NOT NULL,
  value   REAL,
  label   TEXT NOT NULL,
  details TEXT NOT NULL,
  error   TEXT NOT NULL,
  PRIMARY KEY (run_id, item_id, epoch, grader)
) WITHOUT ROWID;

CREATE TABLE cache (
  key        TEXT PRIMARY KEY,
  backend    TEXT NOT NULL,
  completion TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE metrics (
  run_id    INTEGER NOT NULL REFERENCES runs(id),
  name      TEXT NOT NULL,
  category  TEXT NOT NULL,
  value     REAL,
  ci_low    REAL,
  ci_high   REAL,
  n         INTEGER NOT NULL,
  k         INTEGER,
  ci_method TEXT NOT NULL,
  details   TEXT NOT NULL,
  PRIMARY KEY (run_id, name, category)
) WITHOUT ROWID;
)sql";

// Version 2: labels on runs (plumb tag) and the built-in baselines' cached metrics.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE tags (
  name       TEXT NOT NULL,
  suite_id   TEXT NOT NULL,
  run_id     INTEGER NOT NULL REFERENCES runs(id),
  created_at TEXT NOT NULL,
  PRIMARY KEY (name, suite_id)
) WITHOUT ROWID;
CREATE TABLE baselines (
  key        TEXT PRIMARY KEY,
  suite_id   TEXT NOT NULL,
  model_spec TEXT NOT NULL,
  metrics    TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// Version 3: run leases (the process executing a run, and its heartbeat).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN heartbeat_at REAL NOT NULL DEFAULT 0;
)sql";

// Version 4: the tool calls of a reply (agents), as JSON.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE responses ADD COLUMN tool_calls TEXT;
)sql";

// Version 5: batch mode and endpoint pools. Replies that came back from a provider batch (priced
// as such) or from one endpoint of a pool, and the batches of each run, kept before they are
// waited on.
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE responses ADD COLUMN batched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE responses ADD COLUMN endpoint TEXT;
ALTER TABLE runs ADD COLUMN uuid TEXT NOT NULL DEFAULT '';
UPDATE runs SET uuid = lower(hex(randomblob(16))) WHERE uuid = '';
CREATE INDEX runs_uuid ON runs(uuid);
CREATE TABLE batches (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  role        TEXT NOT NULL,
  provider    TEXT NOT NULL,
  state       TEXT NOT NULL,
  info        TEXT NOT NULL,
  custom_ids  TEXT NOT NULL,
  resubmits   INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE INDEX batches_run ON batches(run_id);
)sql";

// Version 6: cooperating workers. The processes executing a run (each with its heartbeat), the
// worker each pending sample is leased to, the worker computing the run's metrics, and an index
// of the pending samples that claims read.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE workers (
  run_id       INTEGER NOT NULL REFERENCES runs(id),
  worker       TEXT NOT NULL,
  heartbeat_at REAL NOT NULL,
  joined_at    TEXT NOT NULL,
  PRIMARY KEY (run_id, worker)
) WITHOUT ROWID;
ALTER TABLE samples ADD COLUMN worker TEXT;
ALTER TABLE runs ADD COLUMN finisher TEXT NOT NULL DEFAULT '';
CREATE INDEX samples_pending ON samples(run_id, item_id, epoch) WHERE status = 'pending';
)sql";

}  // namespace

int UserVersion(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }

Status Migrate(SQLite::Database& db, const std::string& path) {
  try {
    int version = UserVersion(db);
    if (version > kSchemaVersion) {
      return FailedPrecondition(fmt::format(
          "results database '{}' has schema version {}, newer than this plumb supports ({}); "
          "upgrade plumb or use another --db",
          path, version, kSchemaVersion));
    }
    if (version == kSchemaVersion) return Status();
    SQLite::Transaction tx(db);
    if (version == 0) {
      int tables = db.execAndGet("SELECT count(*) FROM sqlite_master WHERE type='table'").getInt();
      if (tables != 0) {
        return FailedPrecondition(fmt::format(
            "'{}' is a SQLite database but not a plumb results database (see --db)", path));
      }
      db.exec(kSchemaV1);
    }
    if (version < 2) db.exec(kSchemaV2);
    if (version < 3) db.exec(kSchemaV3);
    if (version < 4) db.exec(kSchemaV4);
    if (version < 5) db.exec(kSchemaV5);
    if (version < 6) db.exec(kSchemaV6);
    // Later versions add their steps here: if (version < 7) { ... }
    db.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
    tx.commit();
    return Status();
  } catch (const SQLite::Exception& e) {
    return DataLoss(fmt::format("results database '{}': {}", path, e.what()));
  }
}

Status CheckReadable(SQLite::Database& db, const std::string& path) {
  try {
    int version = UserVersion(db);
    if (version == 0) {
      return FailedPrecondition(
          fmt::format("'{}' is not a plumb results database (see --db)", path));
    }
    if (version > kSchemaVersion) {
      return FailedPrecondition(fmt::format(
          "results database '{}' has schema version {}, newer than this plumb supports ({}); "
          "upgrade plumb",
          path, version, kSchemaVersion));
    }
    return Status();
  } catch (const SQLite::Exception& e) {
    return DataLoss(fmt::format("results database '{}': {}", path, e.what()));
  }
}

}  // namespace plumb::storage
