// Runs a program (the built plumb binary) as a child process and captures its output.
#ifndef PLUMB_TESTS_SUPPORT_SUBPROCESS_H_
#define PLUMB_TESTS_SUPPORT_SUBPROCESS_H_

#include <map>
#include <string>
#include <vector>

namespace plumb::testing {

struct Spawned {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;
  std::string err;
  double cpu_seconds = 0;  // user + system of the child
  long max_rss_kb = 0;     // peak resident set of the child
  double wall_seconds = 0;
};

// Runs `argv` with the current environment minus API keys, plus `env` (empty value unsets),
// in `cwd` when given. `kill_after_ms` > 0 sends SIGINT after that many milliseconds.
Spawned Spawn(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {}, const std::string& cwd = "",
              int kill_after_ms = 0, int kill_signal = 2);

// A fresh, empty temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name (creating folders) and returns the full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);

}  // namespace plumb::testing

#endif  // PLUMB_TESTS_SUPPORT_SUBPROCESS_H_
