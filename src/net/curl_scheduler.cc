// The HTTP scheduler: one libcurl multi handle driven by one event-loop thread. It is the only
// code in plumb that includes curl. It owns concurrency limits per endpoint, timeouts, and
// retries with exponential backoff, full jitter and Retry-After.
//
// The loop uses curl_multi_socket_action with epoll rather than curl_multi_perform: perform
// visits every transfer on every wakeup, which with dozens of connections in flight made each
// completion cost a pass over all of them and delayed the next request by milliseconds.
#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/rate_limiter.h"
#include "plumb/hash.h"
#include "plumb/http.h"
#include "plumb/log.h"
#include "plumb/text.h"

namespace plumb {
namespace {

using Clock = std::chrono::steady_clock;

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// "https://api.openai.com/v1/chat" -> "https://api.openai.com".
std::string EndpointOf(const std::string& url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t slash = url.find('/', start);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

struct Call {
  HttpRequest request;
  HttpScheduler::Interpret interpret;
  HttpScheduler::Done done;
  std::string endpoint;
  int attempts = 0;
  Clock::time_point submitted;
  Clock::time_point attempt_start;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpResponse response;
  char error[CURL_ERROR_SIZE] = {0};
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<Call*>(user)->response.body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* call = static_cast<Call*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    call->response.headers.clear();  // a new response (after 100-continue or a redirect)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    call->response.headers[ToLower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return size * n;
}

// Maps a transport failure onto a Status code: connection problems are transient, a bad URL or
// an unknown host is not.
Status TransportStatus(CURLcode code, const Call& call) {
  std::string detail = call.error[0] ? call.error : curl_easy_strerror(code);
  std::string where = Redact(call.endpoint);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("{}: request timed out after {} ms (see --timeout)", where,
                                call.request.timeout.count()));
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Status(StatusCode::kNotFound,
                    fmt::format("{}: cannot resolve host: {} (check --base-url)", where, detail));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgument(fmt::format("{}: bad URL: {} (check --base-url)", where, detail));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
      return FailedPrecondition(fmt::format("{}: TLS verification failed: {}", where, detail));
    default:
      return Unavailable(fmt::format("{}: connection error: {}", where, detail));
  }
}

class CurlScheduler final : public HttpScheduler {
 public:
  explicit CurlScheduler(const SchedulerOptions& options)
      : options_(options),
        rng_(options.jitter_seed ? options.jitter_seed
                                 : static_cast<uint64_t>(Clock::now().time_since_epoch().count())) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                      static_cast<long>(2 * options_.max_concurrency_per_endpoint + 16));
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, OnSocket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, OnTimer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    loop_ = std::thread([this] { Loop(); });
  }

  ~CurlScheduler() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      cancel_requested_ = true;
    }
    Wake();
    loop_.join();
    for (CURL* e : free_handles_) curl_easy_cleanup(e);
    curl_multi_cleanup(multi_);
    close(wake_);
    close(epoll_);
  }

  void Submit(HttpRequest request, Interpret interpret, Done done) override {
    auto call = std::make_unique<Call>();
    call->endpoint = request.endpoint.empty() ? EndpointOf(request.url) : request.endpoint;
    if (!request.lane.empty()) call->endpoint += "#" + request.lane;
    call->request = std::move(request);
    call->interpret = std::move(interpret);
    call->done = std::move(done);
    call->submitted = Clock::now();
    Done done_now;  // set when the scheduler is already cancelled
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancel_requested_) {
        done_now = std::move(call->done);
      } else {
        inbox_.push_back(std::move(call));
        stats_queued_++;
      }
    }
    if (done_now) {
      done_now(Cancelled("request abandoned: the run was interrupted"), CallReport{});
      return;
    }
    Wake();
  }

  void Cancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_requested_ = true;
    }
    Wake();
  }

  SchedulerStats Stats() const override {
    SchedulerStats s;
    s.queued = stats_queued_.load();
    s.in_flight = stats_in_flight_.load();
    s.waiting_retry = stats_waiting_.load();
    s.rate_limited = stats_rate_limited_.load();
    s.retries = stats_retries_.load();
    return s;
  }

 private:
  struct Endpoint {
    int in_flight = 0;
    bool configured = false;  // by the first request to the endpoint
    net::RateLimiter limiter;
    std::deque<Call*> ready;
    std::optional<Clock::time_point> held_until;  // ready calls wait for the rate limits
  };

  void Wake() {
    uint64_t one = 1;
    ssize_t n = write(wake_, &one, sizeof one);
    (void)n;  // a full counter already means "wake up"
  }

  // curl asks to watch (or stop watching) a socket.
  static int OnSocket(CURL*, curl_socket_t sock, int what, void* self, void*) {
    auto* s = static_cast<CurlScheduler*>(self);
    epoll_event ev{};
    ev.data.fd = sock;
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(s->epoll_, EPOLL_CTL_DEL, sock, nullptr);
      return 0;
    }
    if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
    if (epoll_ctl(s->epoll_, EPOLL_CTL_MOD, sock, &ev) != 0) {
      epoll_ctl(s->epoll_, EPOLL_CTL_ADD, sock, &ev);
    }
    return 0;
  }

  // curl asks to be called back after `ms` (-1: no timer).
  static int OnTimer(CURLM*, long ms, void* self) {
    auto* s = static_cast<CurlScheduler*>(self);
    s->curl_deadline_ =
        ms < 0 ? std::nullopt
               : std::optional<Clock::time_point>(Clock::now() + std::chrono::milliseconds(ms));
    return 0;
  }

  void Loop() {
    epoll_event events[64];
    while (true) {
      bool cancel;
      bool stop;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& c : inbox_) {
          Call* raw = c.get();
          calls_[raw] = std::move(c);
          Endpoint& ep = endpoints_[raw->endpoint];
          if (!ep.configured) {
            const HttpRequest& r = raw->request;
            ep.limiter.Configure(
                r.max_concurrency > 0 ? r.max_concurrency : options_.max_concurrency_per_endpoint,
                r.rpm, r.tpm);
            ep.configured = true;
          }
          ep.ready.push_back(raw);
        }
        inbox_.clear();
        cancel = cancel_requested_;
        stop = stop_;
      }
      if (cancel) CancelAll();
      if (stop && calls_.empty()) return;

      FireTimers();
      StartReady();

      auto now = Clock::now();
      int timeout_ms = 1000;
      if (curl_deadline_) timeout_ms = std::min(timeout_ms, CeilMs(*curl_deadline_ - now));
      if (!timers_.empty()) timeout_ms = std::min(timeout_ms, CeilMs(timers_.begin()->first - now));
      for (const auto& [_, ep] : endpoints_) {
        if (ep.held_until && !ep.ready.empty())
          timeout_ms = std::min(timeout_ms, CeilMs(*ep.held_until - now));
      }
      int n = epoll_wait(epoll_, events, 64, std::max(timeout_ms, 0));
      int running = 0;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_) {
          uint64_t count;
          while (read(wake_, &count, sizeof count) > 0) {
          }
          continue;
        }
        int flags = 0;
        if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi_, fd, flags, &running);
      }
      if (curl_deadline_ && *curl_deadline_ <= Clock::now()) {
        curl_deadline_.reset();
        curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
      }
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Call* call = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
        FinishAttempt(call, msg->data.result);
      }
    }
  }

  static int CeilMs(Clock::duration d) {
    return static_cast<int>(std::ceil(std::chrono::duration<double, std::milli>(d).count()));
  }

  void FireTimers() {
    auto now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      Call* call = timers_.begin()->second;
      timers_.erase(timers_.begin());
      stats_waiting_--;
      stats_queued_++;
      // Retries go to the front: they are the oldest work.
      endpoints_[call->endpoint].ready.push_front(call);
    }
  }

  // Starts queued calls up to each endpoint's limit.
  void StartReady() {
    auto now = Clock::now();
    int64_t held = 0;
    for (auto& [name, ep] : endpoints_) {
      ep.held_until.reset();
      while (ep.in_flight < ep.limiter.concurrency() && !ep.ready.empty()) {
        Call* call = ep.ready.front();
        if (now - call->submitted > options_.max_wait) {  // waited too long in the queue
          ep.ready.pop_front();
          stats_queued_--;
          Complete(call, GaveUpWaiting(call, now), now);
          continue;
        }
        Clock::time_point when = ep.limiter.NextStart(now, call->request.estimated_tokens);
        if (when > now) {
          ep.held_until = when;
          held += static_cast<int64_t>(ep.ready.size());
          break;
        }
        ep.ready.pop_front();
        stats_queued_--;
        ep.limiter.OnStart(now, call->request.estimated_tokens);
        Start(call);
        ep.in_flight++;
      }
    }
    stats_rate_limited_ = held;
  }

  Status GaveUpWaiting(const Call* call, Clock::time_point now) const {
    return Status(
        StatusCode::kDeadlineExceeded,
        fmt::format(
            "{}: gave up after waiting {:.0f} s for rate limits and retries (see --max-wait)",
            Redact(call->endpoint), MsBetween(call->submitted, now) / 1000));
  }

  CURL* TakeHandle() {
    if (free_handles_.empty()) return curl_easy_init();
    CURL* e = free_handles_.back();
    free_handles_.pop_back();
    curl_easy_reset(e);
    return e;
  }

  void Start(Call* call) {
    call->attempts++;
    call->attempt_start = Clock::now();
    call->response = HttpResponse{};
    call->error[0] = 0;
    CURL* e = TakeHandle();
    call->easy = e;
    const HttpRequest& r = call->request;
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    if (r.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    } else if (r.method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if (call->headers == nullptr) {
      for (const auto& [k, v] : r.headers) {
        call->headers = curl_slist_append(call->headers, (k + ": " + v).c_str());
      }
      // No "Expect: 100-continue" round trip for larger bodies.
      call->headers = curl_slist_append(call->headers, "Expect:");
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min<int64_t>(r.timeout.count(), 30'000)));
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    if (r.url.rfind("https://", 0) == 0) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_multi_add_handle(multi_, e);
    stats_in_flight_++;
  }

  void ReleaseHandle(Call* call) {
    curl_multi_remove_handle(multi_, call->easy);
    free_handles_.push_back(call->easy);
    call->easy = nullptr;
    stats_in_flight_--;
    endpoints_[call->endpoint].in_flight--;
  }

  void FinishAttempt(Call* call, CURLcode code) {
    auto now = Clock::now();
    call->response.elapsed_ms = MsBetween(call->attempt_start, now);
    long http_status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &http_status);
    ReleaseHandle(call);
    Status status;
    if (code != CURLE_OK) {
      status = TransportStatus(code, *call);
    } else {
      call->response.status = static_cast<int>(http_status);
      status = call->interpret(call->response);
      endpoints_[call->endpoint].limiter.OnResponse(
          now, status.code() == StatusCode::kResourceExhausted, call->response.headers);
    }
    if (!status.ok() && IsRetryable(status.code()) &&
        call->attempts <= options_.retry.max_retries) {
      LogInfo("{}: attempt {} failed ({}); retrying", Redact(call->endpoint), call->attempts,
              status.message());
      ScheduleRetry(call, now, status);
      return;
    }
    if (!status.ok() && IsRetryable(status.code())) {
      status =
          Status(status.code(), fmt::format("{} (gave up after {} attempts; see --max-retries)",
                                            status.message(), call->attempts));
    }
    Complete(call, status, now);
  }

  void ScheduleRetry(Call* call, Clock::time_point now, const Status& last) {
    double delay_ms = -1;
    auto& h = call->response.headers;
    if (auto it = h.find("retry-after-ms"); it != h.end()) {
      try {
        delay_ms = std::stod(it->second);
      } catch (...) {
      }
    }
    if (delay_ms < 0) {
      if (auto it = h.find("retry-after"); it != h.end()) {
        double s = ParseRetryAfterSeconds(it->second);
        if (s >= 0) delay_ms = 1000 * s;
      }
    }
    if (delay_ms < 0) {
      double cap = std::min<double>(static_cast<double>(kMaxRetryDelay.count()),
                                    static_cast<double>(options_.retry.base_delay.count()) *
                                        std::pow(2.0, call->attempts - 1));
      delay_ms = rng_.Uniform() * cap;
    }
    delay_ms = std::min<double>(delay_ms, 10 * static_cast<double>(kMaxRetryDelay.count()));
    if (MsBetween(call->submitted, now) + delay_ms >
        static_cast<double>(options_.max_wait.count())) {
      Status gave_up = GaveUpWaiting(call, now);
      Complete(call, Status(gave_up.code(), gave_up.message() + "; last: " + last.message()), now);
      return;
    }
    stats_retries_++;
    stats_waiting_++;
    timers_.emplace(now + std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000)), call);
  }

  void Complete(Call* call, const Status& status, Clock::time_point now) {
    CallReport report;
    report.attempts = call->attempts;
    report.latency_ms = call->response.elapsed_ms;
    report.total_ms = MsBetween(call->submitted, now);
    auto owned = std::move(calls_[call]);
    calls_.erase(call);
    if (owned->headers) curl_slist_free_all(owned->headers);
    owned->done(status, report);
  }

  void CancelAll() {
    auto now = Clock::now();
    Status cancelled = Cancelled("request abandoned: the run was interrupted");
    std::vector<Call*> all;
    for (auto& [raw, _] : calls_) all.push_back(raw);
    for (Call* call : all) {
      if (call->easy) ReleaseHandle(call);
      Complete(call, cancelled, now);
    }
    for (auto& [_, ep] : endpoints_) ep.ready.clear();
    timers_.clear();
    stats_queued_ = 0;
    stats_waiting_ = 0;
  }

  SchedulerOptions options_;
  Rng rng_;
  CURLM* multi_ = nullptr;
  int epoll_ = -1;
  int wake_ = -1;  // eventfd: Submit and Cancel wake the loop through it
  std::optional<Clock::time_point> curl_deadline_;  // when curl wants socket_action(TIMEOUT)
  std::thread loop_;

  std::mutex mu_;
  std::vector<std::unique_ptr<Call>> inbox_;
  bool cancel_requested_ = false;
  bool stop_ = false;

  // Event-loop thread only.
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
  std::map<std::string, Endpoint> endpoints_;
  std::multimap<Clock::time_point, Call*> timers_;
  std::vector<CURL*> free_handles_;

  std::atomic<int64_t> stats_queued_{0};
  std::atomic<int64_t> stats_in_flight_{0};
  std::atomic<int64_t> stats_waiting_{0};
  std::atomic<int64_t> stats_retries_{0};
  std::atomic<int64_t> stats_rate_limited_{0};
};

}  // namespace

double ParseRetryAfterSeconds(const std::string& value) {
  std::string v = Trim(value);
  if (v.empty()) return -1;
  char* end = nullptr;
  double s = std::strtod(v.c_str(), &end);
  if (end && *end == '\0') return s >= 0 ? s : -1;
  time_t when = curl_getdate(v.c_str(), nullptr);
  if (when < 0) return -1;
  double diff = std::difftime(when, std::time(nullptr));
  return diff > 0 ? diff : 0;
}

std::unique_ptr<HttpScheduler> MakeCurlScheduler(const SchedulerOptions& options) {
  return std::make_unique<CurlScheduler>(options);
}

}  // namespace plumb
