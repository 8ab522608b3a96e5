// The writer thread every store engine shares: queued sample results, planned samples and cache
// entries committed in batches, Flush, the first write error, and the heartbeat of the runs the
// store holds. Internal to the store engines.
#ifndef PLUMB_STORAGE_WRITE_QUEUE_H_
#define PLUMB_STORAGE_WRITE_QUEUE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "plumb/json.h"
#include "plumb/status.h"
#include "plumb/store.h"

namespace plumb::storage {

// GradeStatusName's inverse, for stored rows (anything unknown reads as an error).
inline GradeStatus GradeStatusFromName(const std::string& s) {
  if (s == "scored") return GradeStatus::kScored;
  if (s == "unscored") return GradeStatus::kUnscored;
  return GradeStatus::kError;
}

// A queued write: a finished sample, planned samples (when `planned` is not empty), or (when
// cache_key is set) a cache entry.
struct WriteJob {
  int64_t run_id = 0;
  SampleResult result;
  std::string cache_key;
  std::string cache_backend;
  std::string cache_completion;
  std::vector<PlannedSample> planned;
};

class WriteQueue {
 public:
  // Commits a batch of jobs in one transaction (called on the writer thread only).
  using WriteFn = std::function<Status(const std::vector<WriteJob>&)>;
  // Renews the heartbeat of the runs held (run leases) and of those joined as a worker (on the
  // writer thread, every kHeartbeatInterval).
  using HeartbeatFn =
      std::function<Status(const std::set<int64_t>& held, const std::set<int64_t>& joined)>;

  WriteQueue(WriteFn write, HeartbeatFn heartbeat);
  // Stop()s.
  ~WriteQueue();
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Starts the writer thread (a store opened for writing). Without it nothing queued is written
  // and Flush returns at once only when nothing was queued.
  void Start();
  // Commits what is queued, then ends the writer thread. The store calls it in its destructor,
  // before the connections the callbacks use go away.
  void Stop();

  // Queues a job; waits while the queue is full (backpressure bounds memory by the queue).
  void Push(WriteJob job);
  // The three kinds of job, as every store queues them.
  void PushResult(int64_t run_id, SampleResult result) {
    Push(WriteJob{run_id, std::move(result), {}, {}, {}, {}});
  }
  void PushPlanned(int64_t run_id, std::vector<PlannedSample> samples) {
    if (!samples.empty()) Push(WriteJob{run_id, {}, {}, {}, {}, std::move(samples)});
  }
  void PushCache(const std::string& key, const std::string& backend, const Completion& c) {
    Push(WriteJob{0, {}, key, backend, DumpJson(CompletionToJson(c)), {}});
  }
  // Waits until everything queued so far is committed; the first write error, if any.
  Status Flush();
  Status LastError() const;
  // Logs a write error once (with -v); the user sees it through Flush and LastError.
  void ReportError(const Status& s);

  // The runs whose lease is renewed.
  void Hold(int64_t run_id);
  void Drop(int64_t run_id);
  std::set<int64_t> TakeHeld();  // empties the set
  // The runs this process works on as one of their workers (JoinRun).
  void Join(int64_t run_id);
  void Leave(int64_t run_id);
  std::set<int64_t> TakeJoined();  // empties the set

 private:
  void Loop();

  WriteFn write_;
  HeartbeatFn heartbeat_;
  mutable std::mutex mu_;
  std::condition_variable queue_cv_;
  std::condition_variable done_cv_;
  std::condition_variable space_cv_;
  std::deque<WriteJob> queue_;
  uint64_t enqueued_ = 0;
  uint64_t committed_ = 0;
  Status error_;
  std::atomic<bool> error_reported_{false};
  bool stop_ = false;
  std::set<int64_t> held_;
  std::set<int64_t> joined_;
  std::thread thread_;
};

}  // namespace plumb::storage

#endif  // PLUMB_STORAGE_WRITE_QUEUE_H_
