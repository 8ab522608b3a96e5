// Owner identity and liveness of run leases.
#include "storage/lease.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <vector>

namespace plumb::storage {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); "" when the process does
// not exist.
std::string StartTime(long pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return "";
  size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return "";
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

struct Parsed {
  std::string host;
  long pid = 0;
  std::string start;
};

bool Parse(const std::string& owner, Parsed& p) {
  size_t b = owner.rfind(':');
  if (b == std::string::npos || b == 0) return false;
  size_t a = owner.rfind(':', b - 1);
  if (a == std::string::npos) return false;
  p.host = owner.substr(0, a);
  try {
    p.pid = std::stol(owner.substr(a + 1, b - a - 1));
  } catch (const std::exception&) {
    return false;
  }
  p.start = owner.substr(b + 1);
  return true;
}

}  // namespace

const std::string& SelfOwner() {
  static const std::string owner =
      fmt::format("{}:{}:{}", HostName(), static_cast<long>(getpid()), StartTime(getpid()));
  return owner;
}

std::string NewRunUuid() {
  // std::random_device reads the kernel's entropy source on Linux.
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", rd());
  return out;
}

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool OwnerAlive(const std::string& owner, double heartbeat_at, double now) {
  if (owner.empty()) return false;
  if (owner == SelfOwner()) return true;
  Parsed p;
  if (Parse(owner, p) && p.host == HostName()) {
    std::string start = StartTime(p.pid);
    return !start.empty() && start == p.start;
  }
  return now - heartbeat_at < static_cast<double>(kLeaseTimeout.count());
}

std::string DescribeOwner(const std::string& owner) {
  Parsed p;
  if (!Parse(owner, p)) return fmt::format("'{}'", owner);
  return fmt::format("process {} on host '{}'", p.pid, p.host);
}

}  // namespace plumb::storage
