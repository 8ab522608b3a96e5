// libpq connections, statements and errors for the PostgreSQL store (see postgres_conn.h).
#include "storage/postgres_conn.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "plumb/log.h"
#include "plumb/text.h"

namespace plumb::storage {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
// Seconds to wait for the server, unless the URL says otherwise (connect_timeout=N).
constexpr const char* kConnectTimeout = "10";

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one (or is NUL).
size_t Utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  size_t n = c >= 0xC2 && c <= 0xDF   ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c == 0xE0) lo = 0xA0;
  if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  if (c == 0xF0) lo = 0x90;
  if (c == 0xF4) hi = 0x8F;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

std::string ValidText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8Length(s, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// Dumped JSON with each \u0000 escape (which jsonb refuses) turned into \ufffd. Escapes occur only
// inside strings, so reading escape by escape is exact.
std::string JsonWithoutNul(std::string text) {
  if (text.find("\\u0000") == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    if (text.compare(i, 6, "\\u0000") == 0) {
      out += "\\ufffd";
      i += 5;
    } else {
      out += text[i];
      out += text[i + 1];
      ++i;
    }
  }
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int v = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct UrlParts {
  std::string scheme, user, password, hostport, path, query;
};

// Splits a URL as written, before libpq reads it: enough to show it without the password and
// to register the password for redaction even when libpq cannot parse the rest.
UrlParts SplitUrl(std::string_view url) {
  UrlParts p;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return p;
  p.scheme = std::string(url.substr(0, colon));
  std::string_view rest = url.substr(colon + 3);
  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    p.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t c = userinfo.find(':');
    p.user = std::string(userinfo.substr(0, c));
    if (c != std::string_view::npos) p.password = std::string(userinfo.substr(c + 1));
  }
  size_t slash = rest.find('/');
  p.hostport = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) p.path = std::string(rest.substr(slash + 1));
  return p;
}

// The passwords a URL holds (user:password@, ?password=) and PGPASSWORD are secrets.
void RegisterUrlSecrets(std::string_view url) {
  UrlParts p = SplitUrl(url);
  auto add = [](const std::string& secret) {
    if (secret.empty()) return;
    RegisterSecret(secret);
    RegisterSecret(PercentDecode(secret));
  };
  add(p.password);
  for (size_t start = 0; start <= p.query.size();) {
    size_t end = p.query.find('&', start);
    if (end == std::string::npos) end = p.query.size();
    std::string_view kv = std::string_view(p.query).substr(start, end - start);
    if (kv.substr(0, 9) == "password=") add(std::string(kv.substr(9)));
    start = end + 1;
  }
  if (const char* env = std::getenv("PGPASSWORD"); env && *env) RegisterSecret(env);
}

// The first line of a libpq message, without its "FATAL:  " or "ERROR:  " prefix.
std::string FirstLine(const char* message) {
  std::string m = message ? message : "";
  m = m.substr(0, m.find('\n'));
  for (const char* prefix : {"FATAL:  ", "ERROR:  "}) {
    if (m.rfind(prefix, 0) == 0) m = m.substr(std::string_view(prefix).size());
  }
  return Redact(Trim(m));
}

}  // namespace

std::string DisplayPostgresUrl(std::string_view url) {
  UrlParts p = SplitUrl(url);
  if (p.scheme.empty()) return Redact(url);
  std::string out = p.scheme + "://";
  if (!p.user.empty()) out += p.user + "@";
  out += p.hostport + "/" + p.path;
  return Redact(out);
}

PgParams& PgParams::Add(std::string_view text) {
  values_.push_back(ValidText(text));
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::Add(int64_t v) {
  values_.push_back(std::to_string(v));
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::Add(double v) {
  if (std::isnan(v)) return AddNull();
  if (std::isinf(v))
    values_.push_back(v > 0 ? "Infinity" : "-Infinity");
  else
    values_.push_back(fmt::format("{}", v));  // the shortest text that reads back as v
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::Add(bool v) {
  values_.push_back(v ? "true" : "false");
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::AddJson(const Json& j) { return AddJsonText(DumpJson(j)); }

PgParams& PgParams::AddJsonText(std::string_view json) {
  values_.push_back(JsonWithoutNul(ValidText(json)));
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::AddNull() {
  values_.emplace_back();
  null_.push_back(true);
  return *this;
}

std::vector<const char*> PgParams::Pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (size_t i = 0; i < values_.size(); ++i)
    out.push_back(null_[i] ? nullptr : values_[i].c_str());
  return out;
}

std::string ValuesList(int rows, int columns, int first, const std::vector<const char*>& casts) {
  std::string out;
  out.reserve(static_cast<size_t>(rows * columns) * 8);
  int n = first;
  for (int r = 0; r < rows; ++r) {
    out += r == 0 ? "(" : ",(";
    for (int c = 0; c < columns; ++c) {
      if (c > 0) out += ',';
      out += '$';
      out += std::to_string(n++);
      if (static_cast<size_t>(c) < casts.size() && casts[c] != nullptr) out += casts[c];
    }
    out += ')';
  }
  return out;
}

PgResult::PgResult(pg_result* r) : r_(r) {}
PgResult::~PgResult() {
  if (r_) PQclear(r_);
}
PgResult::PgResult(PgResult&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (r_) PQclear(r_);
    r_ = other.r_;
    other.r_ = nullptr;
  }
  return *this;
}

int PgResult::rows() const { return r_ ? PQntuples(r_) : 0; }

int64_t PgResult::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  int64_t v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

bool PgResult::IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }

std::string PgResult::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t PgResult::Int64(int row, int col) const {
  const char* s = PQgetvalue(r_, row, col);
  int64_t v = 0;
  std::from_chars(s, s + PQgetlength(r_, row, col), v);
  return v;
}

double PgResult::Double(int row, int col) const {
  if (IsNull(row, col)) return 0;
  const char* s = PQgetvalue(r_, row, col);
  double v = 0;
  std::from_chars(s, s + PQgetlength(r_, row, col), v);
  return v;
}

bool PgResult::Bool(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }

std::optional<int64_t> PgResult::OptInt64(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Int64(row, col);
}

std::optional<double> PgResult::OptDouble(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Double(row, col);
}

Json PgResult::JsonAt(int row, int col) const {
  if (IsNull(row, col)) return Json();
  const char* s = PQgetvalue(r_, row, col);
  Json j = Json::parse(s, s + PQgetlength(r_, row, col), nullptr, false);
  return j.is_discarded() ? Json() : j;
}

Result<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& url, bool read_only) {
  RegisterUrlSecrets(url);
  std::string where = DisplayPostgresUrl(url);
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error ? FirstLine(parse_error) : "out of memory";
    if (parse_error) PQfreemem(parse_error);
    return InvalidArgument(fmt::format(
        "results database '{}': {} (see --db: postgresql://user[:password]@host:port/dbname)",
        where, why));
  }
  PQconninfoFree(parsed);
  // Keywords are applied in order: the URL (dbname, expanded) may override the timeout and the
  // application name, never the encoding the store writes in.
  const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", "client_encoding",
                        nullptr};
  const char* values[] = {kConnectTimeout, "plumb", url.c_str(), "UTF8", nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr)
    return Unavailable(fmt::format("results database '{}': out of memory", where));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    std::string host = PQhost(conn) ? PQhost(conn) : "";
    std::string port = PQport(conn) ? PQport(conn) : "";
    std::string db = PQdb(conn) ? PQdb(conn) : "";
    std::string user = PQuser(conn) ? PQuser(conn) : "";
    bool needs_password = PQconnectionNeedsPassword(conn) != 0;
    PQfinish(conn);
    std::string why = FirstLine(message.c_str());
    // "connection to server at "h" (1.2.3.4), port 5432 failed: FATAL:  ...": the reason only.
    if (size_t f = why.find(" failed: "); f != std::string::npos) {
      why = FirstLine(why.substr(f + 9).c_str());
    }
    std::string at =
        fmt::format("host {}, port {}, database '{}', user '{}'", host, port, db, user);
    if (needs_password) {
      return Status(StatusCode::kUnauthenticated,
                    fmt::format("results database '{}' ({}): the server asks for a password; give "
                                "it in the URL, PGPASSWORD or ~/.pgpass",
                                where, at));
    }
    if (why.find("authentication failed") != std::string::npos) {
      return Status(StatusCode::kUnauthenticated,
                    fmt::format("results database '{}' ({}): {}; check the user and password "
                                "(URL, PGPASSWORD or ~/.pgpass)",
                                where, at, why));
    }
    if (why.rfind("invalid ", 0) == 0) {  // a malformed URL: "invalid integer value ..."
      return InvalidArgument(fmt::format(
          "results database '{}': {} (see --db: postgresql://user[:password]@host:port/dbname)",
          where, why));
    }
    if (why.find("does not exist") != std::string::npos) {
      return NotFound(fmt::format(
          "results database '{}' ({}): {} (create it with createdb, or see --db)", where, at, why));
    }
    return Unavailable(fmt::format(
        "cannot connect to results database '{}' ({}): {}; is the server running? (see --db)",
        where, at, why));
  }
  std::unique_ptr<PgConn> out(new PgConn(conn, where));
  // Notices (e.g. "relation already exists, skipping") are not for the user.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  if (read_only) PLUMB_RETURN_IF_ERROR(out->Run("SET default_transaction_read_only = on"));
  return out;
}

PgConn::~PgConn() { PQfinish(conn_); }

Result<PgResult> PgConn::Exec(const std::string& sql, const PgParams& params) {
  std::vector<const char*> values = params.Pointers();
  pg_result* r = PQexecParams(conn_, sql.c_str(), params.size(), nullptr, values.data(), nullptr,
                              nullptr, /*resultFormat=*/0);
  if (Status s = ErrorOf(r); !s.ok()) {
    if (r) PQclear(r);
    return s;
  }
  return PgResult(r);
}

Status PgConn::Run(const std::string& sql) {
  pg_result* r = PQexec(conn_, sql.c_str());
  Status s = ErrorOf(r);
  if (r) PQclear(r);
  return s;
}

void PgConn::Rollback() {
  if (PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
  (void)Run("ROLLBACK");
}

bool PgConn::Broken() const { return PQstatus(conn_) == CONNECTION_BAD; }

bool PgConn::Reset() {
  PQreset(conn_);
  if (Broken()) return false;
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  return true;
}

// By SQLSTATE: what may succeed later (a lost connection, a server shutting down, a deadlock)
// apart from what will not (a full disk, a read-only database, missing rights, anything else).
Status PgConn::ErrorOf(pg_result* r) const {
  ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Status();
  std::string state;
  std::string why;
  if (r) {
    const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    state = code ? code : "";
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    why = primary ? Redact(primary) : FirstLine(PQresultErrorMessage(r));
  }
  if (why.empty()) why = FirstLine(PQerrorMessage(conn_));
  if (Broken() || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
    return Unavailable(
        fmt::format("results database '{}': the connection to the server was lost "
                    "({}); is the server running? (see --db)",
                    where_, why));
  }
  if (state == "40001" || state == "40P01") {
    return Aborted(fmt::format("results database '{}': {}", where_, why));
  }
  if (state == "53100") {
    return DataLoss(fmt::format(
        "results database '{}': the server's disk is full ({}); free some space", where_, why));
  }
  if (state == "25006") {
    return DataLoss(
        fmt::format("results database '{}' cannot be written ({}); use a --db you may "
                    "write",
                    where_, why));
  }
  if (state == "42501") {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("results database '{}': {}; use a --db whose user may create and "
                              "write the tables",
                              where_, why));
  }
  return DataLoss(fmt::format("results database '{}': {}", where_, why));
}

}  // namespace plumb::storage
