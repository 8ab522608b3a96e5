// A loopback HTTP server that plays an OpenAI-compatible API for tests and benchmarks. Each
// request is answered by a test-supplied handler; requests and concurrency are recorded.
#ifndef PLUMB_TESTS_SUPPORT_FAKE_SERVER_H_
#define PLUMB_TESTS_SUPPORT_FAKE_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plumb/types.h"

namespace plumb::testing {

struct FakeRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  Json json;  // the parsed body (null when it is not JSON)
};

struct FakeReply {
  int status = 200;
  // The body; when empty and status is 200, an OpenAI chat completion with `text` is sent.
  std::string body;
  std::string text = "Answer: A";
  std::vector<std::pair<std::string, std::string>> headers;
  int delay_ms = 0;
  bool drop = false;  // close the connection in the middle of the response
};

// The content of the last user message of a chat request ("" when absent).
std::string LastUserMessage(const Json& body);

// {"choices":[{"message":{"role":"assistant","content":text},"finish_reason":...}],"usage":...}
std::string ChatCompletionBody(const std::string& text, const std::string& finish_reason = "stop",
                               int prompt_tokens = 10, int completion_tokens = 3);

// A chat completion whose first token is `text` and carries `top` (token, probability) as top
// logprobs, as a logprob-scoring judge receives.
std::string LogprobBody(const std::string& text,
                        const std::vector<std::pair<std::string, double>>& top);

class FakeServer {
 public:
  // `index` counts requests from 0 in arrival order.
  using Handler = std::function<FakeReply(const FakeRequest& request, int index)>;

  // Starts listening on 127.0.0.1 on a free port with `threads` worker threads.
  explicit FakeServer(Handler handler, int threads = 64);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port>/v1"
  std::string base_url() const;
  std::vector<FakeRequest> requests() const;
  int request_count() const { return count_.load(); }
  int max_concurrent() const { return max_concurrent_.load(); }
  int connections() const;  // distinct client ports seen

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::atomic<int> count_{0};
  std::atomic<int> active_{0};
  std::atomic<int> max_concurrent_{0};
};

}  // namespace plumb::testing

#endif  // PLUMB_TESTS_SUPPORT_FAKE_SERVER_H_
