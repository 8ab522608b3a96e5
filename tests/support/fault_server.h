// A loopback OpenAI-compatible server that misbehaves on purpose, written on raw sockets so it
// can do what no well-behaved HTTP library lets a server do: reset a connection mid-body, lie in
// Content-Length, trickle bytes, hang, send invalid UTF-8. Each request is answered well or with
// the fault its plan picks; the plan sees the request's prompt and how often that prompt was
// asked, so tests can make faults deterministic and transient.
#ifndef PLUMB_TESTS_SUPPORT_FAULT_SERVER_H_
#define PLUMB_TESTS_SUPPORT_FAULT_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace plumb::testing {

enum class Fault {
  kNone,
  kResetMidBody,   // headers and half the body, then a TCP reset
  kTruncatedBody,  // Content-Length promises more than is sent, then the connection closes
  kMalformedJson,  // 200 with a body that is not JSON
  kHtml502,        // 502 with an HTML error page
  kHtml200,        // 200 with an HTML page (a captive portal, a misrouted proxy)
  kEmptyChoices,   // {"choices": []}
  kNullContent,    // choices[0].message.content is null
  kHang,           // reads the request and never answers
  kSlowTrickle,    // a correct reply, a few bytes at a time
  kWrongLength,    // Content-Length shorter than the body (the rest pollutes the connection)
  kInvalidUtf8,    // a JSON body whose content holds a byte that is not UTF-8
  kHugeReply,      // a correct reply whose text is 2 MB long, the answer at the end
};

const char* FaultName(Fault f);
// Every fault but kNone.
std::vector<Fault> AllFaults();

class FaultServer {
 public:
  // (prompt, 0-based attempt for that prompt) -> the fault to play.
  using Plan = std::function<Fault(const std::string& prompt, int attempt)>;
  // The text of a good reply to `prompt`.
  using Answer = std::function<std::string(const std::string& prompt)>;

  FaultServer(Plan plan, Answer answer);
  ~FaultServer();
  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  std::string base_url() const;  // "http://127.0.0.1:<port>/v1"
  // Good replies sent per prompt (a prompt answered twice was sent twice).
  std::map<std::string, int> good_replies() const;
  // Faults played, by fault.
  std::map<Fault, int> faults() const;
  int requests() const { return requests_.load(); }

 private:
  void AcceptLoop();
  void Serve(int fd);
  Plan plan_;
  Answer answer_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> connections_;
  std::vector<int> open_fds_;
  std::map<std::string, int> attempts_;
  std::map<std::string, int> good_;
  std::map<Fault, int> played_;
};

}  // namespace plumb::testing

#endif  // PLUMB_TESTS_SUPPORT_FAULT_SERVER_H_
