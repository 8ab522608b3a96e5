// The loopback fake API server (cpp-httplib).
#include "fake_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <set>

namespace plumb::testing {

std::string LastUserMessage(const Json& body) {
  if (!body.is_object() || !body.contains("messages")) return "";
  std::string out;
  for (const auto& m : body["messages"]) {
    if (m.value("role", "") == "user") out = m.value("content", "");
  }
  return out;
}

std::string ChatCompletionBody(const std::string& text, const std::string& finish_reason,
                               int prompt_tokens, int completion_tokens) {
  Json j = {{"id", "chatcmpl-test"},
            {"object", "chat.completion"},
            {"choices",
             {{{"index", 0},
               {"message", {{"role", "assistant"}, {"content", text}}},
               {"finish_reason", finish_reason}}}},
            {"usage",
             {{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}}}};
  return j.dump();
}

std::string LogprobBody(const std::string& text,
                        const std::vector<std::pair<std::string, double>>& top) {
  Json tops = Json::array();
  for (const auto& [t, p] : top) tops.push_back({{"token", t}, {"logprob", std::log(p)}});
  Json j = Json::parse(ChatCompletionBody(text));
  j["choices"][0]["logprobs"] = {
      {"content", {{{"token", text}, {"logprob", -0.01}, {"top_logprobs", tops}}}}};
  return j.dump();
}

namespace {

// Debian's cpp-httplib is a compiled library whose listen backlog is 5, so dozens of clients
// connecting at once see SYN drops and 1 s retransmits that no real API server would cause. The
// server socket is private, so find it by its port and raise the backlog (Linux lets listen()
// be called again on a listening socket).
void RaiseListenBacklog(int port) {
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (addr.sin_family != AF_INET || ntohs(addr.sin_port) != port) continue;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) {
      listen(fd, 1024);
      return;
    }
  }
}

}  // namespace

struct FakeServer::Impl {
  httplib::Server server;
  std::thread thread;
  Handler handler;
  mutable std::mutex mu;
  std::vector<FakeRequest> requests;
  std::set<int> client_ports;
};

FakeServer::FakeServer(Handler handler, int threads) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl_->server.set_keep_alive_max_count(100000);
  impl_->server.set_keep_alive_timeout(30);
  // httplib writes headers and body separately; without TCP_NODELAY, Nagle's algorithm and the
  // client's delayed ACK add about 40 ms to every response. Accepted sockets inherit the option.
  impl_->server.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  });
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    // The fake serves a fixed latency; httplib would otherwise gzip or brotli-compress every
    // reply for a client that accepts it (curl does), adding milliseconds of server CPU that
    // a benchmark would blame on plumb. The Request object is not const at its origin, so
    // removing the header here is well defined.
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    int now = ++active_;
    int prev = max_concurrent_.load();
    while (now > prev && !max_concurrent_.compare_exchange_weak(prev, now)) {
    }
    FakeRequest fr;
    fr.method = req.method;
    fr.path = req.path;
    for (const auto& [k, v] : req.headers) {
      std::string key = k;
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      fr.headers[key] = v;
    }
    fr.body = req.body;
    fr.json = Json::parse(req.body, nullptr, false);
    if (fr.json.is_discarded()) fr.json = Json();
    int index;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      index = count_++;
      impl_->requests.push_back(fr);
      impl_->client_ports.insert(req.remote_port);
    }
    FakeReply reply = impl_->handler(fr, index);
    if (reply.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    --active_;
    if (reply.drop) {
      // Promise a body, then abort: the client sees the connection close mid-response.
      res.set_content_provider(1000, "application/json",
                               [](size_t, size_t, httplib::DataSink&) { return false; });
      return;
    }
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k, v);
    std::string body = reply.body;
    if (body.empty() && reply.status == 200) body = ChatCompletionBody(reply.text);
    res.set_content(body, "application/json");
  };
  impl_->server.Post(R"(.*)", handle);
  impl_->server.Get(R"(.*)", handle);
  port_ = impl_->server.bind_to_any_port("127.0.0.1");
  RaiseListenBacklog(port_);
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  while (!impl_->server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeServer::~FakeServer() {
  impl_->server.stop();
  impl_->thread.join();
}

std::string FakeServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::vector<FakeRequest> FakeServer::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

int FakeServer::connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->client_ports.size());
}

}  // namespace plumb::testing
