// The PostgreSQL results schema, its version (table plumb_schema) and its migrations;
// docs/results-schema.md. The tables and columns mean what SQLite schema 5's do.
#ifndef PLUMB_STORAGE_POSTGRES_SCHEMA_H_
#define PLUMB_STORAGE_POSTGRES_SCHEMA_H_

#include "plumb/result.h"
#include "storage/postgres_conn.h"

namespace plumb::storage {

// The version of the PostgreSQL schema (its own ladder, not SQLite's user_version).
inline constexpr int kPostgresSchemaVersion = 2;

// Brings an empty or older database up to kPostgresSchemaVersion in one transaction; processes
// opening the same database at once wait for each other (an advisory lock). kFailedPrecondition
// when the database is newer than this binary, holds other tables but no plumb results, or
// is not in UTF-8.
Status PostgresMigrate(PgConn& conn);

// Checks a database opened read-only: kNotFound when it holds no plumb results yet,
// kFailedPrecondition when it holds something else or a newer schema.
Status PostgresCheckReadable(PgConn& conn);

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_POSTGRES_SCHEMA_H_
