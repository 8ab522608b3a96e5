// A thin layer over libpq for the PostgreSQL store: connection URLs (parsed, shown without their
// password), parameterized statements with text parameters, results, and libpq errors as
// Status. postgres_conn.cc is the only file of plumb_core that includes libpq-fe.h.
#ifndef PLUMB_STORAGE_POSTGRES_CONN_H_
#define PLUMB_STORAGE_POSTGRES_CONN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plumb/result.h"
#include "plumb/types.h"

struct pg_conn;
struct pg_result;

namespace plumb::storage {

// `url` as it may be printed or stored: "postgresql://user@host:port/dbname", without the
// password and the query string (which may hold one too).
std::string DisplayPostgresUrl(std::string_view url);

// The parameters of one statement, in libpq's text format: a value or NULL each. Text is made
// valid UTF-8 without NUL bytes (which PostgreSQL cannot store): each offending byte becomes
// U+FFFD. JSON is written with any \u0000 escape replaced likewise (jsonb refuses it).
class PgParams {
 public:
  PgParams& Add(std::string_view text);
  PgParams& Add(const char* text) { return Add(std::string_view(text)); }
  PgParams& Add(const std::string& text) { return Add(std::string_view(text)); }
  PgParams& Add(int64_t v);
  PgParams& Add(int v) { return Add(static_cast<int64_t>(v)); }
  PgParams& Add(double v);  // NaN is NULL, as SQLite stores it
  PgParams& Add(bool v);
  PgParams& AddJson(const Json& j);
  // Text already dumped as JSON (the cache's completions).
  PgParams& AddJsonText(std::string_view json);
  PgParams& AddNull();
  template <typename T>
  PgParams& Add(const std::optional<T>& v) {
    return v ? Add(*v) : AddNull();
  }

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers into this object, valid while it lives and is not changed.
  std::vector<const char*> Pointers() const;

 private:
  std::vector<std::string> values_;
  std::vector<bool> null_;
};

// "($1,$2,$3),($4,$5,$6)": the VALUES list of a multi-row statement of `rows` x `columns`
// parameters numbered from `first`, each cast to its column's type from `casts` when given
// ("::jsonb"), so that the statement stays parameterized however many rows it has.
std::string ValuesList(int rows, int columns, int first = 1,
                       const std::vector<const char*>& casts = {});

// A statement's result, owned.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* r);
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  int rows() const;
  // Rows a command changed (UPDATE, DELETE, INSERT).
  int64_t affected() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;  // "" for NULL
  int64_t Int64(int row, int col) const;     // 0 for NULL
  int Int(int row, int col) const { return static_cast<int>(Int64(row, col)); }
  double Double(int row, int col) const;  // 0 for NULL
  bool Bool(int row, int col) const;
  std::optional<int64_t> OptInt64(int row, int col) const;
  std::optional<double> OptDouble(int row, int col) const;
  Json JsonAt(int row, int col) const;  // null for NULL or unparsable text

 private:
  pg_result* r_ = nullptr;
};

// One connection. Not thread-safe: the store guards each with a mutex.
class PgConn {
 public:
  // Connects to `url` (the password from the URL, PGPASSWORD or ~/.pgpass, as libpq does).
  // kUnavailable when the server cannot be reached, kUnauthenticated when the credentials are
  // missing or wrong, kNotFound when the database does not exist; messages name the URL without
  // its password. `read_only` makes every transaction of the connection read-only.
  static Result<std::unique_ptr<PgConn>> Connect(const std::string& url, bool read_only);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs one statement with parameters. Errors as Status (see ErrorOf in postgres_conn.cc).
  Result<PgResult> Exec(const std::string& sql, const PgParams& params = PgParams());
  // Runs statements without parameters (schema scripts, BEGIN, COMMIT).
  Status Run(const std::string& sql);
  // Rolls back a transaction left open by a failed step (errors ignored: the connection may be
  // gone, and the next statement says so).
  void Rollback();
  // Whether the connection is lost; Reset() reconnects.
  bool Broken() const;
  bool Reset();

  // The URL without its password, for messages.
  const std::string& where() const { return where_; }

 private:
  PgConn(pg_conn* conn, std::string where) : conn_(conn), where_(std::move(where)) {}
  Status ErrorOf(pg_result* r) const;

  pg_conn* conn_;
  std::string where_;
};

// Runs `sql_head` VALUES (...),(...) `sql_tail` over `rows`, as many rows per statement as stay
// well under PostgreSQL's 65535 parameters; `add(params, row)` appends one row's `columns`
// parameters, and `seen` is called with each statement's result.
template <typename Rows, typename AddRow, typename Seen>
Status ForEachChunk(PgConn& conn, const std::string& head, const std::string& tail, int columns,
                    const std::vector<const char*>& casts, const Rows& rows, AddRow add,
                    Seen seen) {
  constexpr int kMaxParams = 16'000;
  const int per_statement = kMaxParams / columns > 0 ? kMaxParams / columns : 1;
  auto it = rows.begin();
  while (it != rows.end()) {
    PgParams params;
    int n = 0;
    for (; it != rows.end() && n < per_statement; ++it, ++n) add(params, *it);
    PLUMB_ASSIGN_OR_RETURN(PgResult r,
                           conn.Exec(head + " VALUES " + ValuesList(n, columns, 1, casts) + " " +
                                         tail,
                                     params));
    seen(r);
  }
  return Status();
}

// The same for a command whose results are not read.
template <typename Rows, typename AddRow>
Status InsertRows(PgConn& conn, const std::string& head, const std::string& tail, int columns,
                  const std::vector<const char*>& casts, const Rows& rows, AddRow add) {
  return ForEachChunk(conn, head, tail, columns, casts, rows, add, [](const PgResult&) {});
}

inline constexpr const char* kBegin = "BEGIN";
// A read of several statements that see one state of the database.
inline constexpr const char* kSnapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

// Runs `body` (returning Status) in a transaction begun with `begin`: committed when it
// succeeds, rolled back when it fails.
template <typename Body>
Status InTransaction(PgConn& conn, const char* begin, Body body) {
  PLUMB_RETURN_IF_ERROR(conn.Run(begin));
  Status s = body();
  if (s.ok()) s = conn.Run("COMMIT");
  if (!s.ok()) conn.Rollback();
  return s;
}

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_POSTGRES_CONN_H_
