// A throwaway PostgreSQL server for tests: initdb into a fresh temporary folder, a free port on
// 127.0.0.1, a database per test. One server per test process, started on first use.
#ifndef PLUMB_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define PLUMB_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "subprocess.h"

namespace plumb::testing {

class PostgresServer {
 public:
  // A role that logs in with a password (scram-sha-256 over TCP); every other role is trusted.
  static constexpr const char* kPasswordUser = "plumb_pw";
  static constexpr const char* kPassword = "pg-secret-7f3a9c";

  // The server of this process, started on first use and stopped at exit. Null, with the
  // reason in `why`, when it cannot start (no server binaries in /usr/lib/postgresql/*/bin or
  // on PATH, or initdb or postgres failed).
  static PostgresServer* Shared(std::string* why);

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:PORT/plumb_test
  std::string url() const { return UrlFor("plumb_test"); }
  // The URL of database `db` as `user` (with `password`, when given).
  std::string UrlFor(const std::string& db, const std::string& user = "postgres",
                     const std::string& password = "") const;
  // Creates an empty database of its own (owned by `owner`) and returns its name.
  std::string NewDatabaseName(const std::string& owner = "postgres");
  // The URL of a new empty database, for a test that must not see another's rows.
  std::string NewDatabase() { return UrlFor(NewDatabaseName()); }
  // Runs `sql` as the superuser in database `db`: "" when it succeeded, else the error. With
  // `value`, the first column of the first row is stored there.
  std::string Exec(const std::string& db, const std::string& sql,
                   std::string* value = nullptr) const;

 private:
  PostgresServer() = default;
  // "" when the server is up, else why not.
  std::string Start();
  void Stop();

  TempDir dir_;  // first: removed after the server has stopped
  std::string data_;
  int port_ = 0;
  pid_t child_ = -1;
  int databases_ = 0;
};

// PLUMB_REQUIRE_POSTGRES=1: a test that needs PostgreSQL fails instead of skipping without it.
bool PostgresRequired();

}  // namespace plumb::testing

// Declares `PostgresServer* var` (the shared server), or skips the test (fails it when
// PLUMB_REQUIRE_POSTGRES=1) when none can be started.
#define PLUMB_POSTGRES_OR_SKIP(var)                                                              \
  std::string var##_why_;                                                                        \
  ::plumb::testing::PostgresServer* var = ::plumb::testing::PostgresServer::Shared(&var##_why_); \
  if (var == nullptr) {                                                                          \
    if (::plumb::testing::PostgresRequired()) {                                                  \
      FAIL() << var##_why_ << " (PLUMB_REQUIRE_POSTGRES=1)";                                     \
    }                                                                                            \
    GTEST_SKIP() << var##_why_                                                                   \
                 << " (install postgresql, or set PLUMB_REQUIRE_POSTGRES=1 "                     \
                    "to fail instead)";                                                          \
  }

#endif  // PLUMB_TESTS_SUPPORT_POSTGRES_SERVER_H_
