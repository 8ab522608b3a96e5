// The results schema and its migrations (PRAGMA user_version); docs/results-schema.md.
#ifndef PLUMB_STORAGE_SCHEMA_H_
#define PLUMB_STORAGE_SCHEMA_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include "plumb/status.h"

namespace plumb::storage {

// Brings an empty or older database up to kSchemaVersion inside one transaction.
// kFailedPrecondition when the database is newer than this binary.
Status Migrate(SQLite::Database& db, const std::string& path);

// PRAGMA user_version.
int UserVersion(SQLite::Database& db);

// Checks the schema version of a database opened read-only.
Status CheckReadable(SQLite::Database& db, const std::string& path);

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_SCHEMA_H_
