// The benchmark's loopback OpenAI-compatible server: one thread, epoll, non-blocking sockets,
// HTTP/1.1 keep-alive, every reply held for a fixed latency by a timer queue (constant latency,
// so the queue is FIFO). It answers every chat request with the same canned completion (a
// logprob-scored judge verdict when the request asks for logprobs), so it does almost no work
// per request and sustains tens of thousands of requests per second on one core: the bench
// measures plumb, not the server. Written by hand: cpp-httplib, the only HTTP server among
// plumb's dependencies, uses a thread per connection, which at 1024 connections is the
// bottleneck.
#ifndef PLUMB_BENCH_BENCH_SERVER_H_
#define PLUMB_BENCH_BENCH_SERVER_H_

#include <atomic>
#include <string>
#include <thread>

namespace plumb::bench {

class BenchServer {
 public:
  // Starts listening on 127.0.0.1 (a free port) on its own thread.
  explicit BenchServer(int latency_ms);
  ~BenchServer();
  BenchServer(const BenchServer&) = delete;
  BenchServer& operator=(const BenchServer&) = delete;

  int port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:<port>/v1
  long requests() const { return requests_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  int connections() const { return connections_.load(); }

 private:
  void Loop();
  int latency_ms_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<long> requests_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace plumb::bench

#endif  // PLUMB_BENCH_BENCH_SERVER_H_
