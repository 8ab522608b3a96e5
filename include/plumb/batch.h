// Batch mode (plumb run --batch): calls collected into the providers' batch APIs (half price,
// their own rate limits), submitted, polled and read back. A protocol's batch format is a set of
// pure functions beside its synchronous ones (BatchApi); the batching backend (src/runner)
// drives them through the scheduler and keeps every batch in the store before waiting on it.
#ifndef PLUMB_BATCH_H_
#define PLUMB_BATCH_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/http.h"
#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

class Store;

// A provider's limits per batch.
struct BatchLimits {
  int64_t max_requests = 0;
  int64_t max_bytes = 0;
};

// Where a batch stands at the provider.
struct BatchProgress {
  std::string state;    // the provider's own word: validating, in_progress, ended, BATCH_STATE_...
  bool ended = false;   // results (or their absence) are final
  bool failed = false;  // ended without results for any request (the message says why)
  std::string message;
  int64_t total = 0, succeeded = 0, failed_requests = 0;
};

// The outcome of one request inside a batch.
struct BatchLineResult {
  std::string custom_id;
  enum class Kind { kOk, kError, kExpired, kCancelled } kind = Kind::kOk;
  Completion completion;  // kOk
  Status error;           // kError: the provider's message
};

// A protocol's batch format: pure functions (request in, bytes out) as HttpBackend's are. The
// batch's own record (`info`, persisted in the store) carries what the steps learn: file ids,
// the provider's batch id ("id"), where the results are.
class BatchApi {
 public:
  virtual ~BatchApi() = default;
  virtual std::string BatchProvider() const = 0;  // "openai", "anthropic", "google"
  virtual BatchLimits DefaultBatchLimits() const = 0;
  // One call as it goes into a batch (a JSONL line or a list element); its size counts toward
  // the byte limit.
  virtual Result<Json> BatchLine(const std::string& custom_id, const ModelCall& call) const = 0;
  // Submission is a few steps (upload a file, create the batch): the next request given what
  // earlier steps put in `info`, or nullopt once info["id"] is set.
  virtual Result<std::optional<HttpRequest>> SubmitStep(const std::vector<Json>& lines,
                                                        const Json& info) const = 0;
  virtual Status ReadSubmitStep(const HttpResponse& response, Json& info) const = 0;
  virtual HttpRequest StatusRequest(const Json& info) const = 0;
  // Reads a status reply into progress; keeps what later steps need in `info`.
  virtual Result<BatchProgress> ReadStatus(const HttpResponse& response, Json& info) const = 0;
  // The downloads that hold an ended batch's results (none when they came with the status).
  virtual std::vector<HttpRequest> ResultRequests(const Json& info) const = 0;
  // Results from a download's body (or, without downloads, the last status body).
  virtual Result<std::vector<BatchLineResult>> ReadResults(const std::string& body,
                                                           const Json& info) const = 0;
  virtual HttpRequest CancelRequest(const Json& info) const = 0;
  // The error of a failed batch step (any non-2xx reply), by HTTP status.
  virtual Status BatchHttpError(const HttpResponse& response, const std::string& what) const = 0;
};

// One batch as the store keeps it.
struct BatchRecord {
  int64_t id = 0;  // the store's
  int64_t run_id = 0;
  std::string role;      // "model" or the judge's spec
  std::string provider;  // BatchApi::BatchProvider()
  std::string state;     // submitting | submitted | ended | collected | failed | cancelling
  Json info = Json::object();
  std::vector<std::string> custom_ids;
  int resubmits = 0;  // of expired requests: at most one
  std::string created_at, updated_at;
};

struct BatchOptions {
  bool enabled = false;
  std::chrono::milliseconds poll{30'000};       // first poll interval, growing 1.5x ...
  std::chrono::milliseconds max_poll{300'000};  // ... up to this
  std::chrono::milliseconds max_wait{std::chrono::hours(25)};  // per batch, then its requests fail
  // Calls are collected until none arrives for this long (or a batch is full).
  std::chrono::milliseconds gather{1'000};
  BatchLimits limits;     // 0: the provider's
  std::string file_only;  // write the batch files under this folder instead of submitting
  // Answer from this results file (the provider's output format, e.g. vLLM's run_batch output
  // for a --batch-file-only file) instead of submitting; calls not in it stay unsent.
  std::string results_file;
  bool cancel = false;  // cancel the run's batches at the provider (resume --cancel-batches)
};

// Worst-case cost check before a batch is submitted: OK to go ahead, else why not (the batch is
// not submitted and its calls end kCancelled, left pending for a resume).
using BatchBudget = std::function<Status(const std::string& role, int64_t prompt_tokens,
                                         int64_t completion_tokens)>;

// Progress of the batches of a session, for the progress display.
struct BatchActivity {
  int64_t batches = 0, waiting = 0, requests = 0, done = 0;
  std::string states;  // "in_progress 2, finalizing 1"
  double waited_s = 0;
};

// Wraps `inner` (an HTTP backend that implements BatchApi) so that its calls go out in batches.
// `role` names the caller in custom ids and the store ("model" or a judge spec). Batches are
// recorded in `store` before they are waited on; calls matching a batch the run already
// submitted (by custom id: a hash of the role and the request) are answered from it instead of
// being sent again. kInvalidArgument when `inner` has no batch API.
Result<std::shared_ptr<Backend>> MakeBatchingBackend(Backend& inner, HttpScheduler& scheduler,
                                                     Store& store, int64_t run_id, std::string role,
                                                     const BatchOptions& options,
                                                     BatchBudget budget);

// The activity of every batching backend alive (summed), for progress lines.
BatchActivity CurrentBatchActivity();

// Whether a backend can batch (implements BatchApi).
inline const BatchApi* AsBatchApi(const Backend& b) { return dynamic_cast<const BatchApi*>(&b); }

}  // namespace plumb

#endif  // PLUMB_BATCH_H_
