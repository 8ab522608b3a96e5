// stderr logging and secret redaction.
#include "plumb/log.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

#include "plumb/regex.h"

namespace plumb {
namespace {

std::mutex& SecretsMutex() {
  static std::mutex m;
  return m;
}
std::vector<std::string>& Secrets() {
  static std::vector<std::string> s;
  return s;
}
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarning)};

}  // namespace

void RegisterSecret(std::string secret) {
  if (secret.size() < 4) return;  // too short to redact without mangling ordinary text
  std::lock_guard<std::mutex> lock(SecretsMutex());
  auto& s = Secrets();
  if (std::find(s.begin(), s.end(), secret) == s.end()) s.push_back(std::move(secret));
}

std::string Redact(std::string_view text) {
  std::string out(text);
  {
    std::lock_guard<std::mutex> lock(SecretsMutex());
    for (const auto& secret : Secrets()) {
      for (size_t pos = out.find(secret); pos != std::string::npos; pos = out.find(secret, pos)) {
        out.replace(pos, secret.size(), "[redacted]");
      }
    }
  }
  // Key-shaped strings that were never registered (e.g. echoed back, partly masked, by an API).
  static const Regex kKeyLike = *Regex::Compile(
      R"((sk-[A-Za-z0-9_\-\*\.]{6,}|sk-ant-[A-Za-z0-9_\-\*\.]{6,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9_\-\.\*=]{8,}))");
  if (out.find("sk-") != std::string::npos || out.find("AIza") != std::string::npos ||
      out.find("Bearer") != std::string::npos) {
    out = kKeyLike.ReplaceAll(out, "[redacted]");
  }
  return out;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void LogLine(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) > g_level.load()) return;
  static std::mutex mu;
  const char* name = level == LogLevel::kError     ? "error"
                     : level == LogLevel::kWarning ? "warning"
                     : level == LogLevel::kInfo    ? "info"
                                                   : "debug";
  std::string line = "plumb: " + std::string(name) + ": " + Redact(message) + "\n";
  std::lock_guard<std::mutex> lock(mu);
  std::fputs(line.c_str(), stderr);
}

}  // namespace plumb
