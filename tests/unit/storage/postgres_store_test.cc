// The PostgreSQL store's own concerns: its schema version and migrations, connection URLs and
// errors, passwords, text PostgreSQL cannot hold, and a lost connection. The Store contract
// itself is checked against both engines in store_test.cc.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "plumb/log.h"
#include "plumb/store.h"
#include "postgres_server.h"

namespace plumb {
namespace {

using testing::PostgresServer;

RunRecord ARun() {
  RunRecord r;
  r.started_at = "2026-01-01T00:00:00Z";
  r.status = "running";
  r.suite_id = "demo";
  r.model_spec = "builtin/first";
  return r;
}

// Sets an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(PostgresStore, SchemaIsVersionedAndMigratedOnceUnderConcurrentOpens) {
  PLUMB_POSTGRES_OR_SKIP(server);
  std::string db = server->NewDatabaseName();
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = OpenStore(server->UrlFor(db)).status(); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.message();
  std::string version, tables;
  ASSERT_EQ(server->Exec(db, "SELECT string_agg(version::text, ',') FROM plumb_schema", &version),
            "");
  EXPECT_EQ(version, "2") << "one row, written once";
  ASSERT_EQ(server->Exec(db,
                         "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                         "WHERE schemaname = 'public'",
                         &tables),
            "");
  EXPECT_EQ(
      tables,
      "baselines,batches,cache,items,metrics,plumb_schema,responses,runs,samples,scores,tags,"
      "workers");
  std::string details_type;
  ASSERT_EQ(server->Exec(db,
                         "SELECT data_type FROM information_schema.columns WHERE table_name = "
                         "'scores' AND column_name = 'details'",
                         &details_type),
            "");
  EXPECT_EQ(details_type, "jsonb");
}

TEST(PostgresStore, RefusesNewerSchemasAndForeignDatabases) {
  PLUMB_POSTGRES_OR_SKIP(server);
  std::string db = server->NewDatabaseName();
  ASSERT_TRUE(OpenStore(server->UrlFor(db)).has_value());
  ASSERT_EQ(server->Exec(db, "UPDATE plumb_schema SET version = 99"), "");
  std::string where = server->UrlFor(db);
  auto newer = OpenStore(where);
  ASSERT_FALSE(newer.has_value());
  EXPECT_EQ(newer.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(newer.error().message(),
            "results database '" + where +
                "' has PostgreSQL schema version 99, newer than this plumb supports (2); upgrade "
                "plumb or use another --db");
  EXPECT_EQ(OpenStoreReadOnly(where).error().code(), StatusCode::kFailedPrecondition);

  std::string foreign = server->NewDatabaseName();
  ASSERT_EQ(server->Exec(foreign, "CREATE TABLE t (x int)"), "");
  auto other = OpenStore(server->UrlFor(foreign));
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.error().message().find("not a plumb results database"), std::string::npos)
      << other.error().message();
  std::string tables;
  ASSERT_EQ(
      server->Exec(foreign, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &tables),
      "");
  EXPECT_EQ(tables, "1") << "nothing was created beside the foreign table";
}

TEST(PostgresStore, ConnectionFailuresNameTheServerAndDatabase) {
  PLUMB_POSTGRES_OR_SKIP(server);
  // A port nothing listens on: the server's own port with the server gone is not safe to pick,
  // so take port 1 (privileged, never a PostgreSQL server in tests).
  auto down = OpenStore("postgresql://postgres@127.0.0.1:1/results");
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.error().message().rfind("cannot connect to results database "
                                         "'postgresql://postgres@127.0.0.1:1/results' (host "
                                         "127.0.0.1, port 1, database 'results', user "
                                         "'postgres'): ",
                                         0),
            0u)
      << down.error().message();
  EXPECT_NE(down.error().message().find("is the server running? (see --db)"), std::string::npos);

  auto missing = OpenStore(server->UrlFor("no_such_db"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound) << missing.error().message();
  EXPECT_NE(missing.error().message().find("database \"no_such_db\" does not exist"),
            std::string::npos)
      << missing.error().message();
  EXPECT_EQ(OpenStoreReadOnly(server->UrlFor("no_such_db")).error().code(), StatusCode::kNotFound);

  auto malformed = OpenStore("postgresql://postgres:hunter2-secret@127.0.0.1:abc/results");
  ASSERT_FALSE(malformed.has_value());
  EXPECT_EQ(malformed.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(malformed.error().message(),
            "results database 'postgresql://postgres@127.0.0.1:abc/results': invalid integer value "
            "\"abc\" for connection option \"port\" (see --db: "
            "postgresql://user[:password]@host:port/dbname)");

  auto scheme = OpenStore("mysql://root:hunter2-secret@db/results");
  ASSERT_FALSE(scheme.has_value());
  EXPECT_EQ(scheme.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(scheme.error().message(),
            "--db 'mysql://root@db/results': unknown scheme 'mysql://' (a SQLite file path, or "
            "postgresql://user[:password]@host:port/dbname)");
}

TEST(PostgresStore, PasswordsComeFromTheUrlOrPgpasswordAndAreNeverShown) {
  PLUMB_POSTGRES_OR_SKIP(server);
  ScopedEnv no_pgpass("PGPASSFILE", "/nonexistent/pgpass");
  ScopedEnv no_password("PGPASSWORD", nullptr);
  const std::string user = PostgresServer::kPasswordUser;
  const std::string password = PostgresServer::kPassword;
  std::string db = server->NewDatabaseName(user);
  std::string with_password = server->UrlFor(db, user, password);
  std::string shown =
      "postgresql://" + user + "@127.0.0.1:" + std::to_string(server->port()) + "/" + db;
  EXPECT_EQ(StoreDisplayName(with_password), shown);
  EXPECT_EQ(StoreDisplayName(with_password + "?sslmode=disable&password=x"), shown);
  EXPECT_EQ(StoreDisplayName("results/plumb.db"), "results/plumb.db");

  auto store = OpenStore(with_password);
  ASSERT_TRUE(store.has_value()) << store.error().message();
  int64_t id = *(*store)->CreateRun(ARun(), {});
  EXPECT_EQ(Redact("connecting with " + with_password).find(password), std::string::npos)
      << "the password is registered as a secret";
  auto run = (*store)->GetRun(id);
  EXPECT_EQ(run->settings.dump().find(password), std::string::npos);

  auto wrong = OpenStore(server->UrlFor(db, user, "not-the-password-42"));
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(wrong.error().message().find("password authentication failed"), std::string::npos)
      << wrong.error().message();
  EXPECT_EQ(wrong.error().message().find("not-the-password-42"), std::string::npos);

  auto none = OpenStore(server->UrlFor(db, user));
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(none.error().message().find("give it in the URL, PGPASSWORD or ~/.pgpass"),
            std::string::npos)
      << none.error().message();

  ScopedEnv env("PGPASSWORD", PostgresServer::kPassword);
  auto from_env = OpenStoreReadOnly(server->UrlFor(db, user));
  ASSERT_TRUE(from_env.has_value()) << from_env.error().message();
  EXPECT_EQ((*from_env)->GetRun(id)->suite_id, "demo");
  // A read-only store writes nothing.
  EXPECT_EQ((*from_env)->SetTag("x", id).code(), StatusCode::kDataLoss);
}

TEST(PostgresStore, TextPostgresCannotHoldIsStoredWithReplacementCharacters) {
  PLUMB_POSTGRES_OR_SKIP(server);
  auto store = std::move(OpenStore(server->NewDatabase())).value();
  int64_t id = *store->CreateRun(ARun(), {}, {{"a", 0}}, {});
  SampleResult s;
  s.item_id = "a";
  s.ok = true;
  ResponseRecord rr;
  rr.item_id = "a";
  rr.ok = true;
  rr.completion.text = std::string("nul\0byte and \xff bad", 18);
  rr.request = Json::array({{{"role", "user"}, {"content", std::string("x\0y", 3)}}});
  s.responses.push_back(rr);
  store->Enqueue(id, s);
  ASSERT_TRUE(store->Flush().ok()) << store->LastWriteError().message();
  auto samples = store->GetSamples(id);
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].responses[0].completion.text, "nul\uFFFDbyte and \uFFFD bad");
  EXPECT_EQ((*samples)[0].responses[0].request[0]["content"], "x\uFFFDy");
}

TEST(PostgresStore, WritesAndReadsSurviveALostConnection) {
  PLUMB_POSTGRES_OR_SKIP(server);
  std::string db = server->NewDatabaseName();
  auto store = std::move(OpenStore(server->UrlFor(db))).value();
  int64_t id = *store->CreateRun(ARun(), {}, {{"a", 0}, {"b", 0}}, {});
  // The server ends every connection of the store (a restart, a failover, an idle timeout).
  ASSERT_EQ(server->Exec(db,
                         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                         "datname = current_database() AND pid <> pg_backend_pid()"),
            "");
  SampleResult a;
  a.item_id = "a";
  a.ok = true;
  store->Enqueue(id, a);
  Status flushed = store->Flush();
  EXPECT_TRUE(flushed.ok()) << flushed.message();
  auto counts = store->CountSamples(id);
  ASSERT_TRUE(counts.has_value()) << counts.error().message();
  EXPECT_EQ(counts->done, 1);
}

}  // namespace
}  // namespace plumb
