// A throwaway PostgreSQL server for tests (see postgres_server.h).
#include "postgres_server.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

namespace plumb::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(15);

std::string FindInPath(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    fs::path candidate = fs::path(path.substr(start, end - start)) / name;
    if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return "";
}

// The folder holding initdb and postgres: the newest /usr/lib/postgresql/N/bin (Debian keeps the
// server off PATH), else PATH.
std::string FindServerBin() {
  std::error_code ec;
  int best = -1;
  std::string found;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = entry.path() / "bin";
    if (access((bin / "postgres").c_str(), X_OK) != 0 || access((bin / "initdb").c_str(), X_OK))
      continue;
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best) {
      best = version;
      found = bin.string();
    }
  }
  if (!found.empty()) return found;
  std::string postgres = FindInPath("postgres");
  if (postgres.empty()) return "";
  fs::path bin = fs::path(postgres).parent_path();
  return access((bin / "initdb").c_str(), X_OK) == 0 ? bin.string() : "";
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string Tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

bool PostgresRequired() {
  const char* v = std::getenv("PLUMB_REQUIRE_POSTGRES");
  return v != nullptr && std::string(v) == "1";
}

PostgresServer* PostgresServer::Shared(std::string* why) {
  static std::mutex mu;
  static std::unique_ptr<PostgresServer> server;
  static std::string error;
  static bool tried = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!tried) {
    tried = true;
    std::unique_ptr<PostgresServer> s(new PostgresServer());
    error = s->Start();
    if (error.empty()) server = std::move(s);
  }
  if (why) *why = error;
  return server.get();
}

PostgresServer::~PostgresServer() { Stop(); }

std::string PostgresServer::UrlFor(const std::string& db, const std::string& user,
                                   const std::string& password) const {
  return "postgresql://" + user + (password.empty() ? "" : ":" + password) +
         "@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

std::string PostgresServer::NewDatabaseName(const std::string& owner) {
  std::string name = "plumb_t" + std::to_string(++databases_);
  std::string error = Exec("postgres", "CREATE DATABASE " + name + " OWNER " + owner);
  if (!error.empty()) return "cannot-create-" + name;  // the test fails connecting to it
  return name;
}

std::string PostgresServer::Exec(const std::string& db, const std::string& sql,
                                 std::string* value) const {
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + db +
                         " user=postgres connect_timeout=10";
  PGconn* conn = PQconnectdb(conninfo.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(conn, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(r);
    } else if (value != nullptr) {
      *value = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    }
    PQclear(r);
  }
  PQfinish(conn);
  return error;
}

std::string PostgresServer::Start() {
  std::string bin = FindServerBin();
  if (bin.empty()) {
    return "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin "
           "or on PATH";
  }
  // initdb and postgres refuse to run as root: as root they run as the postgres user.
  std::vector<std::string> as_user;
  if (geteuid() == 0) {
    struct passwd* pw = getpwnam("postgres");
    std::string runuser = FindInPath("runuser");
    if (pw == nullptr || runuser.empty())
      return "running as root, but there is no 'postgres' user or no runuser to start PostgreSQL";
    if (chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
      return "cannot chown " + dir_.path() + " to the postgres user";
    as_user = {runuser, "-u", "postgres", "--"};
  }
  data_ = dir_.path() + "/data";
  std::vector<std::string> initdb = as_user;
  initdb.push_back(bin + "/initdb");
  for (const std::string& a :
       {std::string("-D"), data_, std::string("-U"), std::string("postgres"), std::string("-A"),
        std::string("trust"), std::string("-E"), std::string("UTF8"), std::string("--no-locale"),
        std::string("--no-sync")}) {
    initdb.push_back(a);
  }
  Spawned init = Spawn(initdb);
  if (init.exit_code != 0)
    return "initdb failed (exit " + std::to_string(init.exit_code) + "): " + Tail(init.err);
  // Passwords are checked for one role, over TCP, so that tests can log in with one.
  std::ofstream(data_ + "/pg_hba.conf", std::ios::trunc)
      << "local all all trust\n"
      << "host all " << kPasswordUser << " 127.0.0.1/32 scram-sha-256\n"
      << "host all all 127.0.0.1/32 trust\n";

  // The server dies with this process even when it is killed (a test timeout): the parent-death
  // signal of runuser, and of postgres itself through setpriv.
  std::vector<std::string> server = as_user;
  std::string setpriv = FindInPath("setpriv");
  if (!as_user.empty() && !setpriv.empty()) {
    for (const std::string& a : {setpriv, std::string("--pdeathsig"), std::string("KILL")})
      server.push_back(a);
  }
  server.push_back(bin + "/postgres");
  const size_t port_arg = server.size() + 3;
  for (const std::string& a :
       {std::string("-D"), data_, std::string("-p"), std::string("0"), std::string("-k"),
        dir_.path(), std::string("-c"), std::string("listen_addresses=127.0.0.1"),
        std::string("-c"), std::string("fsync=off"), std::string("-c"),
        std::string("synchronous_commit=off"), std::string("-c"),
        std::string("full_page_writes=off")}) {
    server.push_back(a);
  }
  std::string log = dir_.path() + "/server.log";
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {  // another process may take the port first
    port_ = FreePort();
    server[port_arg] = std::to_string(port_);
    std::vector<char*> argv;
    for (auto& s : server) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    child_ = pid;
    std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                       " dbname=postgres user=postgres connect_timeout=2";
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    bool up = false, exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(ping.c_str()) == PQPING_OK) {
        up = true;
        break;
      }
      int status = 0;
      if (waitpid(child_, &status, WNOHANG) == child_) {
        exited = true;
        child_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (up) break;
    last_error = std::string(exited ? "postgres exited" : "postgres did not start in time") + ": " +
                 Tail(ReadFile(log));
    Stop();
  }
  if (child_ < 0) return last_error;
  std::string error = Exec("postgres", "CREATE DATABASE plumb_test");
  if (error.empty()) {
    error = Exec("postgres", std::string("CREATE ROLE ") + kPasswordUser + " LOGIN PASSWORD '" +
                                 kPassword + "'");
  }
  return error.empty() ? "" : "setting up the test server: " + error;
}

void PostgresServer::Stop() {
  if (child_ <= 0) return;
  // SIGINT is PostgreSQL's fast shutdown; its pid is the first line of postmaster.pid.
  pid_t postmaster = 0;
  {
    std::ifstream in(data_ + "/postmaster.pid");
    long pid = 0;
    if (in >> pid) postmaster = static_cast<pid_t>(pid);
  }
  kill(postmaster > 0 ? postmaster : child_, SIGINT);
  auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  int status = 0;
  while (waitpid(child_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      if (postmaster > 0) kill(postmaster, SIGKILL);
      kill(child_, SIGKILL);
      waitpid(child_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  child_ = -1;
}

}  // namespace plumb::testing
