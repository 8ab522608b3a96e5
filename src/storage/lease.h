// Run leases: which process executes a run, and whether it is still alive. Shared by the store
// engines; docs/results-schema.md describes the columns.
#ifndef PLUMB_STORAGE_LEASE_H_
#define PLUMB_STORAGE_LEASE_H_

#include <chrono>
#include <string>

namespace plumb::storage {

// A process that owns a run renews its heartbeat this often...
inline constexpr std::chrono::seconds kHeartbeatInterval{5};
// ...and one whose heartbeat is older than this, on another host, is presumed dead. On the same
// host liveness is checked at once from the process table.
inline constexpr std::chrono::seconds kLeaseTimeout{30};

// This process as an owner: "host:pid:start" (start is the process's start time in clock ticks
// since boot, so a reused pid is not mistaken for the owner).
const std::string& SelfOwner();

// Seconds since the Unix epoch.
double UnixNow();

// A new run's UUID: 128 random bits from the kernel, as 32 hex digits.
std::string NewRunUuid();

// Whether `owner` (as SelfOwner() writes it) still runs: on this host by its pid and start time,
// elsewhere by a heartbeat younger than kLeaseTimeout. "" is no owner.
bool OwnerAlive(const std::string& owner, double heartbeat_at, double now);

// "process 1234 on host 'ci-7'" for messages.
std::string DescribeOwner(const std::string& owner);

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_LEASE_H_
