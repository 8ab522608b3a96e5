// exec/<command>: a long-lived subprocess (run with /bin/sh -c) that answers JSON lines on
// stdin/stdout, for local models and custom code. Each request is one line
//   {"id": "17", "item_id": "...", "epoch": 0, "turn": 0, "messages": [...], "params": {...}}
// and each answer one line {"id": "17", "text": "..."} (optional "finish_reason",
// "prompt_tokens", "completion_tokens") or {"id": "17", "error": "why"}. Several processes
// (--backend-option processes=N) give concurrency; a process that dies is restarted and its
// unanswered requests are sent again; its stderr goes to the log.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "backends/backends.h"
#include "plumb/json.h"
#include "plumb/log.h"

extern char** environ;

namespace plumb::backends {
namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  std::string line;  // the request, ready to write
  Backend::Done done;
  int attempts = 0;
  std::string item_id;
  Clock::time_point deadline;
};

struct Process {
  int index = 0;
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;  // our ends of its stdin, stdout, stderr
  bool alive = false;
  int restarts = 0;
  std::map<uint64_t, Pending> inflight;
  std::deque<std::string> last_stderr;  // shown when it dies
};

class ExecBackend final : public Backend {
 public:
  ExecBackend(std::string command, int processes, int max_restarts,
              std::chrono::milliseconds timeout)
      : command_(std::move(command)), max_restarts_(max_restarts), timeout_(timeout) {
    signal(SIGPIPE, SIG_IGN);  // a dead child's stdin must give EPIPE, not kill plumb
    for (int i = 0; i < processes; ++i) {
      procs_.emplace_back();
      procs_.back().index = i + 1;
    }
  }

  ~ExecBackend() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Cancel();
    if (io_.joinable()) io_.join();
    for (auto& p : procs_) Stop(p);
  }

  std::string Id() const override { return "exec@1"; }

  // Starts the processes; an error names the command.
  Status Start() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : procs_) PLUMB_RETURN_IF_ERROR(Spawn(p));
    io_ = std::thread([this] { IoLoop(); });
    return Status();
  }

  void Submit(ModelCall call, Done done) override {
    Json req = {{"item_id", call.hints.item_id},
                {"epoch", call.hints.epoch},
                {"turn", call.hints.turn},
                {"messages", MessagesToJson(call.messages)},
                {"params", call.params.ToJson()}};
    if (!call.tools.empty()) {
      Json tools = Json::array();
      for (const auto& t : call.tools) {
        tools.push_back(
            {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}});
      }
      req["tools"] = std::move(tools);
      req["tool_choice"] = call.tool_choice.empty() ? "auto" : call.tool_choice;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cancelled_ || failed_) {
      Status s = cancelled_ ? Cancelled("request abandoned: the run was interrupted") : failure_;
      lock.unlock();
      done(s, CallReport{0, 0, 0});
      return;
    }
    uint64_t id = ++next_id_;
    req["id"] = std::to_string(id);
    queue_.emplace_back(id,
                        Pending{DumpJson(req) + "\n", std::move(done), 0, call.hints.item_id, {}});
    Dispatch();
  }

  void Cancel() override {
    std::vector<Backend::Done> abandoned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      for (auto& [id, p] : queue_) abandoned.push_back(std::move(p.done));
      queue_.clear();
      for (auto& proc : procs_) {
        for (auto& [id, p] : proc.inflight) abandoned.push_back(std::move(p.done));
        proc.inflight.clear();
      }
    }
    for (auto& d : abandoned)
      d(Cancelled("request abandoned: the run was interrupted"), CallReport{0, 0, 0});
  }

 private:
  Status Spawn(Process& p) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
      return Unavailable(fmt::format("exec: cannot create pipes for '{}'", command_));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    const char* argv[] = {"/bin/sh", "-c", command_.c_str(), nullptr};
    int rc = posix_spawn(&p.pid, "/bin/sh", &fa, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
      close(in[1]), close(out[0]), close(err[0]);
      return Unavailable(fmt::format("exec: cannot start '{}'", command_));
    }
    p.in = in[1];
    p.out = out[0];
    p.err = err[0];
    // Reads never block the I/O thread (it holds the lock): a descriptor number may be reused
    // by a restarted process while an old readiness event is still being handled.
    fcntl(p.out, F_SETFL, fcntl(p.out, F_GETFL) | O_NONBLOCK);
    fcntl(p.err, F_SETFL, fcntl(p.err, F_GETFL) | O_NONBLOCK);
    p.alive = true;
    out_buffers_[p.out].clear();
    out_buffers_[p.err].clear();
    return Status();
  }

  void Stop(Process& p) {
    if (p.in >= 0) close(p.in), p.in = -1;
    if (p.pid > 0) {
      for (int i = 0; i < 20 && waitpid(p.pid, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (i == 10) kill(p.pid, SIGTERM);
      }
      if (waitpid(p.pid, nullptr, WNOHANG) == 0) {
        kill(p.pid, SIGKILL);
        waitpid(p.pid, nullptr, 0);
      }
      p.pid = -1;
    }
    if (p.out >= 0) close(p.out), p.out = -1;
    if (p.err >= 0) close(p.err), p.err = -1;
    p.alive = false;
  }

  // Hands queued requests to the least busy live process (one request in flight each). Must
  // hold mu_.
  void Dispatch() {
    while (!queue_.empty()) {
      Process* best = nullptr;
      for (auto& p : procs_) {
        if (p.alive && p.inflight.empty()) {
          best = &p;
          break;
        }
      }
      if (best == nullptr) return;
      auto [id, pending] = std::move(queue_.front());
      queue_.pop_front();
      pending.attempts++;
      pending.deadline = Clock::now() + timeout_;
      const std::string line = pending.line;
      best->inflight.emplace(id, std::move(pending));
      size_t written = 0;
      while (written < line.size()) {
        ssize_t n = write(best->in, line.data() + written, line.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // a dead process: its reader sees EOF and restarts it
        written += static_cast<size_t>(n);
      }
    }
  }

  // One thread reads every process's stdout and stderr, restarts processes that died and
  // times out requests that took too long.
  void IoLoop() {
    while (true) {
      std::vector<pollfd> fds;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        for (auto& p : procs_) {
          if (!p.alive) continue;
          fds.push_back(pollfd{p.out, POLLIN, 0});
          fds.push_back(pollfd{p.err, POLLIN, 0});
        }
      }
      poll(fds.data(), fds.size(), 100);
      std::vector<std::pair<Backend::Done, Result<Completion>>> finished;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& f : fds) {
          if (!(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
          Process* p = FindByFd(f.fd);
          if (p == nullptr || !p->alive) continue;
          char buf[65536];
          ssize_t n = read(f.fd, buf, sizeof buf);
          if (n < 0) continue;  // EAGAIN: nothing after all
          if (n == 0) {
            if (f.fd == p->out) {
              Died(*p, finished);
              break;  // descriptors changed: poll again
            }
            continue;
          }
          std::string& acc = out_buffers_[f.fd];
          acc.append(buf, static_cast<size_t>(n));
          for (size_t nl = acc.find('\n'); nl != std::string::npos; nl = acc.find('\n')) {
            std::string line = acc.substr(0, nl);
            acc.erase(0, nl + 1);
            if (f.fd == p->err) {
              LogInfo("exec[{}]: {}", p->index, line);
              p->last_stderr.push_back(line);
              if (p->last_stderr.size() > 5) p->last_stderr.pop_front();
            } else {
              Answer(*p, line, finished);
            }
          }
        }
        auto now = Clock::now();
        for (auto& p : procs_) {
          for (auto it = p.inflight.begin(); it != p.inflight.end();) {
            if (now < it->second.deadline) {
              ++it;
              continue;
            }
            // A late answer for this id will be ignored.
            finished.emplace_back(
                std::move(it->second.done),
                Status(StatusCode::kDeadlineExceeded,
                       fmt::format("exec: no answer from '{}' within {} ms (see --timeout)",
                                   command_, timeout_.count())));
            it = p.inflight.erase(it);
          }
        }
        Dispatch();
      }
      for (auto& [done, result] : finished) done(std::move(result), CallReport{1, 0, 0});
    }
  }

  Process* FindByFd(int fd) {
    for (auto& p : procs_) {
      if (p.out == fd || p.err == fd) return &p;
    }
    return nullptr;
  }

  // Parses one answer line. Must hold mu_.
  void Answer(Process& p, const std::string& line,
              std::vector<std::pair<Backend::Done, Result<Completion>>>& finished) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("id")) {
      LogWarning("exec[{}]: ignored a line that is not an answer: {}", p.index,
                 line.substr(0, 200));
      return;
    }
    std::string id_text = j["id"].is_string() ? j["id"].get<std::string>() : DumpJson(j["id"]);
    uint64_t id = 0;
    try {
      id = std::stoull(id_text);
    } catch (const std::exception&) {
    }
    auto it = p.inflight.find(id);
    if (it == p.inflight.end()) return;  // timed out earlier, or not ours
    Pending pending = std::move(it->second);
    p.inflight.erase(it);
    if (j.contains("error")) {
      finished.emplace_back(
          std::move(pending.done),
          InvalidArgument(fmt::format(
              "exec: item '{}': {}", pending.item_id,
              j["error"].is_string() ? j["error"].get<std::string>() : DumpJson(j["error"]))));
      return;
    }
    // tool_calls: a list of calls, each {"id"?, "name", "arguments"} (or OpenAI's shape).
    std::vector<ToolCall> calls;
    if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
      const Json& list = j["tool_calls"];
      std::string bad;
      if (!list.is_array()) bad = "'tool_calls' is not a list";
      for (size_t i = 0; bad.empty() && i < list.size(); ++i) {
        std::optional<ToolCall> call = LooseToolCall(list[i], i);
        if (!call) bad = fmt::format("tool call {} has no string 'name'", i);
        if (call) calls.push_back(std::move(*call));
      }
      if (!bad.empty()) {
        finished.emplace_back(
            std::move(pending.done),
            InvalidArgument(fmt::format("exec: item '{}': the answer's {}", pending.item_id, bad)));
        return;
      }
    }
    bool has_text = j.contains("text") && j["text"].is_string();
    if (!has_text && calls.empty()) {
      finished.emplace_back(
          std::move(pending.done),
          InvalidArgument(
              fmt::format("exec: item '{}': the answer has no string 'text' (or 'tool_calls')",
                          pending.item_id)));
      return;
    }
    Completion c;
    if (has_text) c.text = j["text"].get<std::string>();
    c.tool_calls = std::move(calls);
    c.finish_reason = StringField(j, "finish_reason");
    if (j.contains("prompt_tokens") && j["prompt_tokens"].is_number_integer())
      c.prompt_tokens = j["prompt_tokens"].get<int64_t>();
    if (j.contains("completion_tokens") && j["completion_tokens"].is_number_integer()) {
      c.completion_tokens = j["completion_tokens"].get<int64_t>();
    }
    c.attempts = pending.attempts;
    finished.emplace_back(std::move(pending.done), std::move(c));
  }

  // A process's stdout closed: restart it and send its unanswered requests again, or give up.
  // Must hold mu_.
  void Died(Process& p, std::vector<std::pair<Backend::Done, Result<Completion>>>& finished) {
    int status = 0;
    if (p.pid > 0) waitpid(p.pid, &status, 0);
    p.pid = -1;
    // What it wrote to stderr last explains the crash: read the rest.
    char buf[4096];
    std::string& acc = out_buffers_[p.err];
    for (ssize_t n; (n = read(p.err, buf, sizeof buf)) > 0;)
      acc.append(buf, static_cast<size_t>(n));
    for (size_t nl = acc.find('\n'); nl != std::string::npos; nl = acc.find('\n')) {
      p.last_stderr.push_back(acc.substr(0, nl));
      acc.erase(0, nl + 1);
      if (p.last_stderr.size() > 5) p.last_stderr.pop_front();
    }
    std::string tail;
    for (const auto& l : p.last_stderr) tail += "\n  " + l;
    LogWarning("exec[{}]: '{}' exited ({}){}", p.index, command_,
               WIFEXITED(status) ? fmt::format("status {}", WEXITSTATUS(status))
                                 : fmt::format("signal {}", WTERMSIG(status)),
               tail);
    close(p.in), close(p.out), close(p.err);
    p.in = p.out = p.err = -1;
    p.alive = false;
    for (auto& [id, pending] : p.inflight) queue_.emplace_front(id, std::move(pending));
    p.inflight.clear();
    if (cancelled_ || stopping_) return;
    if (p.restarts >= max_restarts_ || !Spawn(p).ok()) {
      failed_ = true;
      failure_ = FailedPrecondition(
          fmt::format("exec: '{}' died {} times; giving up (see --backend-option restarts=N; its "
                      "stderr is in the log with -v)",
                      command_, p.restarts + 1));
      bool any_alive = false;
      for (const auto& q : procs_) any_alive = any_alive || q.alive;
      if (!any_alive) {
        for (auto& [id, pending] : queue_) finished.emplace_back(std::move(pending.done), failure_);
        queue_.clear();
      }
      return;
    }
    p.restarts++;
    p.last_stderr.clear();
  }

  std::string command_;
  int max_restarts_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::vector<Process> procs_;
  std::map<int, std::string> out_buffers_;  // partial lines by file descriptor
  std::deque<std::pair<uint64_t, Pending>> queue_;
  uint64_t next_id_ = 0;
  bool cancelled_ = false;
  bool stopping_ = false;
  bool failed_ = false;
  Status failure_;
  std::thread io_;
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeExecBackend(const BackendContext& ctx) {
  PLUMB_RETURN_IF_ERROR(CheckBackendOptions(ctx, {"processes", "restarts"}));
  if (ctx.model.empty())
    return InvalidArgument("model spec 'exec/': name the command, e.g. exec/python3 my_model.py");
  auto number = [&](const char* key, int fallback, int max) -> Result<int> {
    auto it = ctx.options.find(key);
    if (it == ctx.options.end()) return fallback;
    try {
      size_t used = 0;
      int v = std::stoi(it->second, &used);
      if (used == it->second.size() && v >= 0 && v <= max) return v;
    } catch (const std::exception&) {
    }
    return InvalidArgument(
        fmt::format("backend 'exec': --backend-option {} must be a number from 0 to {}", key, max));
  };
  PLUMB_ASSIGN_OR_RETURN(int processes, number("processes", 1, 256));
  PLUMB_ASSIGN_OR_RETURN(int restarts, number("restarts", 3, 1000));
  if (processes < 1)
    return InvalidArgument("backend 'exec': --backend-option processes must be at least 1");
  auto backend = std::make_unique<ExecBackend>(ctx.model, processes, restarts, ctx.timeout);
  PLUMB_RETURN_IF_ERROR(backend->Start());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace plumb::backends
