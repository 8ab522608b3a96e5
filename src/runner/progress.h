// Progress display: a redrawn bar on a terminal, plain periodic lines otherwise.
#ifndef PLUMB_RUNNER_PROGRESS_H_
#define PLUMB_RUNNER_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "plumb/runner.h"

namespace plumb::runner {

struct ProgressState {
  int64_t done = 0;
  int64_t total = 0;
  int64_t errors = 0;
  int64_t retrying = 0;      // calls sleeping before a retry
  int64_t rate_limited = 0;  // calls held back by rate limits
  // Batch mode: batches of this session, their states, requests and the longest wait so far.
  int64_t batches = 0;
  std::string batch_states;
  int64_t batch_requests = 0, batch_done = 0;
  double batch_waited_s = 0;
};

class Progress {
 public:
  // Writes to `out` (stderr). kAuto picks the bar when `out` is a terminal.
  Progress(ProgressMode mode, FILE* out);
  // Whether Update would draw now (so the caller can skip gathering the state).
  bool Due() const;
  // Redraws at most every 100 ms (bar) or 10 s (lines).
  void Update(const ProgressState& s);
  // Final line.
  void Finish(const ProgressState& s);

 private:
  std::string Render(const ProgressState& s, bool bar) const;

  ProgressMode mode_;
  FILE* out_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
};

}  // namespace plumb::runner

#endif  // PLUMB_RUNNER_PROGRESS_H_
