// What every store engine shares: the engine chosen by the scheme of --db, and conveniences
// built on the Store interface.
#include "plumb/store.h"

#include <fmt/format.h>

#include <string_view>

#include "storage/lease.h"
#include "storage/postgres_conn.h"

namespace plumb {
namespace {

using Opener = Result<std::unique_ptr<Store>> (*)(const std::string&);

// The engines named by URL scheme; anything that is not a URL is a SQLite file.
struct Engine {
  std::string_view scheme;
  Opener open;
  Opener open_read_only;
  std::string (*display)(std::string_view db);
};
const Engine kEngines[] = {
    {"postgresql://", OpenPostgresStore, OpenPostgresStoreReadOnly, storage::DisplayPostgresUrl},
    {"postgres://", OpenPostgresStore, OpenPostgresStoreReadOnly, storage::DisplayPostgresUrl},
};

// "scheme://" of a URL; "" for a path.
std::string_view SchemeOf(std::string_view db) {
  size_t end = db.find("://");
  if (end == std::string_view::npos || end == 0) return "";
  for (char c : db.substr(0, end)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.';
    if (!ok) return "";
  }
  return db.substr(0, end + 3);
}

Result<const Engine*> EngineOf(const std::string& db) {
  std::string_view scheme = SchemeOf(db);
  if (scheme.empty()) return static_cast<const Engine*>(nullptr);
  for (const Engine& e : kEngines) {
    if (e.scheme == scheme) return &e;
  }
  return InvalidArgument(
      fmt::format("--db '{}': unknown scheme '{}' (a SQLite file path, or "
                  "postgresql://user[:password]@host:port/dbname)",
                  StoreDisplayName(db), scheme));
}

}  // namespace

const std::string& ThisProcess() { return storage::SelfOwner(); }

Result<std::unique_ptr<Store>> OpenStore(const std::string& db) {
  PLUMB_ASSIGN_OR_RETURN(const Engine* engine, EngineOf(db));
  if (engine == nullptr) return OpenSqliteStore(db);
  return engine->open(db);
}

Result<std::unique_ptr<Store>> OpenStoreReadOnly(const std::string& db) {
  PLUMB_ASSIGN_OR_RETURN(const Engine* engine, EngineOf(db));
  if (engine == nullptr) return OpenSqliteStoreReadOnly(db);
  return engine->open_read_only(db);
}

std::string StoreDisplayName(const std::string& db) {
  std::string_view scheme = SchemeOf(db);
  if (scheme.empty()) return db;
  for (const Engine& e : kEngines) {
    if (e.scheme == scheme) return e.display(db);
  }
  // An unknown scheme may still carry a password: shown the way a PostgreSQL URL is.
  return storage::DisplayPostgresUrl(db);
}

Result<int64_t> Store::CreateRun(const RunRecord& run, const std::vector<Item>& items,
                                 const std::vector<std::pair<std::string, int>>& samples,
                                 const std::vector<Json>& presentations) {
  PLUMB_ASSIGN_OR_RETURN(int64_t id, CreateRun(run, items));
  std::vector<PlannedSample> planned;
  planned.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    planned.push_back(PlannedSample{samples[i].first, samples[i].second,
                                    i < presentations.size() ? presentations[i] : Json::object()});
  }
  EnqueuePlanned(id, std::move(planned));
  PLUMB_RETURN_IF_ERROR(Flush());
  return id;
}

}  // namespace plumb
