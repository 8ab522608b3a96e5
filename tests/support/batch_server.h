// A loopback HTTP server that plays the batch APIs of OpenAI (Files + Batches), Anthropic
// (Message Batches) and Gemini (Batch Mode + resumable Files upload) for tests, with the wire
// formats the providers document (tests/support/BATCH_FORMATS.md). Each request line of a batch
// is answered by a test-supplied function when the batch is created; status polls count down
// to the end. Everything the server saw is recorded.
#ifndef PLUMB_TESTS_SUPPORT_BATCH_SERVER_H_
#define PLUMB_TESTS_SUPPORT_BATCH_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fake_server.h"
#include "plumb/types.h"

namespace plumb::testing {

// The outcome of one request inside a batch.
struct BatchLine {
  enum class Kind { kOk, kError, kExpired, kCancelled } kind = Kind::kOk;
  // kOk: the synchronous API's reply body for that provider: a chat completion (OpenAI), a
  // Message (Anthropic) or a GenerateContentResponse (Gemini).
  Json body;
  std::string error_message = "simulated failure";  // kError
};

// A minimal successful reply body of `provider` ("openai", "anthropic", "gemini") whose text is
// `text`, the body the server uses when no answer function is set.
Json BatchReplyBody(const std::string& provider, const std::string& text);

struct BatchFakeOptions {
  // Called once per request line when a batch is created: `provider` is "openai", "anthropic"
  // or "gemini"; `request` is the line's request (OpenAI `body`, Anthropic `params`, Gemini
  // `request`); `custom_id` its id (OpenAI/Anthropic `custom_id`, Gemini key: `metadata.key`
  // inline, `key` in a file; "" when absent). Called without the server's lock held. When
  // empty, every line succeeds with BatchReplyBody(provider, "Answer: A").
  std::function<BatchLine(const std::string& provider, const Json& request,
                          const std::string& custom_id)>
      answer;
  // Status GETs of a batch that report an unfinished state; the next one reports it ended.
  int polls_to_finish = 2;
  // Batches end expired instead of completed: lines in the first half (index < n/2) keep their
  // answer, the rest expire. Gemini documents that an expired job has no results, so a Gemini
  // batch then delivers nothing.
  bool expire_batches = false;
  int delay_ms = 0;  // every reply is delayed this long
};

// Thread-safe. Unknown routes, missing credentials, malformed bodies and unknown ids are
// answered with the provider's documented error shape (400, 401/403 or 404), so a client bug
// shows up as an error rather than a silently accepted request.
class BatchFakeServer {
 public:
  // Starts listening on 127.0.0.1 on a free port.
  explicit BatchFakeServer(BatchFakeOptions options);
  ~BatchFakeServer();
  BatchFakeServer(const BatchFakeServer&) = delete;
  BatchFakeServer& operator=(const BatchFakeServer&) = delete;

  int port() const;
  std::string root() const;  // "http://127.0.0.1:<port>", the base URL of all three APIs

  int creations(const std::string& provider) const;  // batches created (accepted) by provider
  int uploads() const;                               // files uploaded (OpenAI + Gemini)
  int status_polls() const;                          // status GETs of known batches
  int cancels() const;                               // cancel calls on known batches
  // Batch ids as the client sees them ("batch_…", "msgbatch_…", "batches/…"), creation order.
  std::vector<std::string> batch_ids() const;
  std::vector<std::vector<std::string>> custom_ids_per_batch() const;  // in creation order
  // The request of each line of `batch_id`, as answer() received it (empty when unknown).
  std::vector<Json> request_bodies_of(const std::string& batch_id) const;
  // (method, path) of every request, in arrival order.
  std::vector<std::pair<std::string, std::string>> log() const;
  // Every request with its lower-cased headers and body, in arrival order.
  std::vector<FakeRequest> requests() const;

  // Replaces the options (between sessions of a test). Batches already created keep their
  // answers; polls_to_finish and expire_batches apply to their next polls.
  void set_options(BatchFakeOptions options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plumb::testing

#endif  // PLUMB_TESTS_SUPPORT_BATCH_SERVER_H_
