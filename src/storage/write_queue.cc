// The store engines' writer thread (see write_queue.h).
#include "storage/write_queue.h"

#include "plumb/log.h"
#include "storage/lease.h"

namespace plumb::storage {
namespace {

constexpr size_t kMaxBatch = 512;
// Queued writes at most (see Push).
constexpr size_t kMaxQueued = 2048;

}  // namespace

WriteQueue::WriteQueue(WriteFn write, HeartbeatFn heartbeat)
    : write_(std::move(write)), heartbeat_(std::move(heartbeat)) {}

WriteQueue::~WriteQueue() { Stop(); }

void WriteQueue::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void WriteQueue::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  space_cv_.notify_all();
  thread_.join();
}

void WriteQueue::Push(WriteJob job) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Backpressure: when results come faster than the database takes them (a local server at
    // zero latency), the producer waits, so memory is bounded by this queue, not by the run.
    space_cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || stop_; });
    queue_.push_back(std::move(job));
    ++enqueued_;
  }
  queue_cv_.notify_all();
}

Status WriteQueue::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = enqueued_;
  queue_cv_.notify_all();
  done_cv_.wait(lock, [&] { return committed_ >= target || !error_.ok(); });
  return error_;
}

Status WriteQueue::LastError() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

// A full disk fails every later batch the same way: the log has it once.
void WriteQueue::ReportError(const Status& s) {
  if (error_reported_.exchange(true)) return;
  LogInfo("{}", s.message());
}

void WriteQueue::Hold(int64_t run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  held_.insert(run_id);
}

void WriteQueue::Drop(int64_t run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  held_.erase(run_id);
}

std::set<int64_t> WriteQueue::TakeHeld() {
  std::set<int64_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(held_);
  return out;
}

void WriteQueue::Join(int64_t run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  joined_.insert(run_id);
}

void WriteQueue::Leave(int64_t run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  joined_.erase(run_id);
}

std::set<int64_t> WriteQueue::TakeJoined() {
  std::set<int64_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(joined_);
  return out;
}

void WriteQueue::Loop() {
  auto last_heartbeat = std::chrono::steady_clock::now();
  while (true) {
    std::vector<WriteJob> batch;
    std::set<int64_t> held, joined;
    {
      std::unique_lock<std::mutex> lock(mu_);
      queue_cv_.wait_for(lock, kHeartbeatInterval, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      held = held_;
      joined = joined_;
    }
    space_cv_.notify_all();
    if (std::chrono::steady_clock::now() - last_heartbeat >= kHeartbeatInterval) {
      if (!held.empty() || !joined.empty()) {
        if (Status s = heartbeat_(held, joined); !s.ok()) ReportError(s);
      }
      last_heartbeat = std::chrono::steady_clock::now();
    }
    if (batch.empty()) continue;
    Status s = write_(batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      committed_ += batch.size();
      if (!s.ok() && error_.ok()) error_ = s;
    }
    if (!s.ok()) ReportError(s);
    done_cv_.notify_all();
  }
}

}  // namespace plumb::storage
