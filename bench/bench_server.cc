// The event-driven benchmark server.
#include "bench_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>

namespace plumb::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string HttpOk(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: keep-alive\r\n\r\n" + body;
}

const std::string& ModelReply() {
  static const std::string r = HttpOk(
      R"({"id":"bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Answer: B\nThe safe option protects people."},"finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":12,"total_tokens":72}})");
  return r;
}

// A judge call (logprobs requested): one token "90" with its top logprobs.
const std::string& JudgeReply() {
  static const std::string r = HttpOk(
      R"({"id":"bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"90"},"finish_reason":"stop","logprobs":{"content":[{"token":"90","logprob":-0.1,"top_logprobs":[{"token":"90","logprob":-0.1},{"token":"85","logprob":-2.5}]}]}}],"usage":{"prompt_tokens":300,"completion_tokens":1,"total_tokens":301}})");
  return r;
}

struct Connection {
  std::string in;
  std::string out;
  size_t out_sent = 0;
  int pending = 0;        // requests read and not yet answered
  bool want_out = false;  // EPOLLOUT registered
};

struct Due {
  Clock::time_point at;
  int fd;
  uint64_t generation;  // of the connection when the request was read
  bool judge;
};

}  // namespace

BenchServer::BenchServer(int latency_ms) : latency_ms_(latency_ms) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen(listen_fd_, 4096);
  epoll_fd_ = epoll_create1(0);
  wake_fd_ = eventfd(0, EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  thread_ = std::thread([this] { Loop(); });
}

BenchServer::~BenchServer() {
  stop_ = true;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
  close(listen_fd_);
  close(epoll_fd_);
  close(wake_fd_);
}

std::string BenchServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

void BenchServer::Loop() {
  std::unordered_map<int, Connection> conns;
  std::unordered_map<int, uint64_t> generations;
  std::deque<Due> due;
  int in_flight = 0;
  const auto latency = std::chrono::milliseconds(latency_ms_);
  auto flush = [&](int fd, Connection& c) {
    while (c.out_sent < c.out.size()) {
      ssize_t n = send(fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      c.out_sent += static_cast<size_t>(n);
    }
    if (c.out_sent == c.out.size()) {
      c.out.clear();
      c.out_sent = 0;
    }
    bool want = !c.out.empty();
    if (want == c.want_out) return;
    c.want_out = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  };
  auto drop = [&](int fd) {
    in_flight -= conns[fd].pending;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
    generations[fd]++;
  };
  epoll_event events[256];
  while (!stop_) {
    int timeout = -1;
    if (!due.empty()) {
      auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(due.front().at - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, wait.count()));
    }
    int n = epoll_wait(epoll_fd_, events, 256, timeout);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) continue;
      if (fd == listen_fd_) {
        while (true) {
          int c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = c;
          epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c, &ev);
          conns[c] = Connection{};
          ++connections_;
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Connection& c = it->second;
      if (events[i].events & EPOLLOUT) flush(fd, c);
      if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      char buf[65536];
      bool eof = false;
      while (true) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        eof = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
      }
      // Every complete request in the buffer is due after the latency.
      while (true) {
        size_t head = c.in.find("\r\n\r\n");
        if (head == std::string::npos) break;
        size_t length = 0;
        for (size_t p = 0; p < head;) {
          size_t e = c.in.find("\r\n", p);
          if (e == std::string::npos || e > head) e = head;
          if (e - p > 15 && strncasecmp(c.in.data() + p, "content-length:", 15) == 0)
            length = std::stoul(c.in.substr(p + 15, e - p - 15));
          p = e + 2;
        }
        if (c.in.size() < head + 4 + length) break;
        bool judge = c.in.find("\"logprobs\":true", head) < head + 4 + length;
        c.in.erase(0, head + 4 + length);
        ++requests_;
        ++c.pending;
        ++in_flight;
        if (in_flight > max_in_flight_) max_in_flight_ = in_flight;
        due.push_back(Due{Clock::now() + latency, fd, generations[fd], judge});
      }
      if (eof) drop(fd);
    }
    auto now = Clock::now();
    while (!due.empty() && due.front().at <= now) {
      Due d = due.front();
      due.pop_front();
      auto it = conns.find(d.fd);
      if (it == conns.end() || generations[d.fd] != d.generation) continue;
      Connection& c = it->second;
      c.out += d.judge ? JudgeReply() : ModelReply();
      --c.pending;
      --in_flight;
      flush(d.fd, c);
    }
  }
  for (auto& [fd, _] : conns) close(fd);
}

}  // namespace plumb::bench
