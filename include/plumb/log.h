// Logging to stderr, and redaction of secrets from anything that is printed or stored.
#ifndef PLUMB_LOG_H_
#define PLUMB_LOG_H_

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace plumb {

// Remembers a secret (an API key) so that Redact() removes it. Thread-safe.
void RegisterSecret(std::string secret);

// Replaces every registered secret, and anything shaped like a bearer token or an API key
// ("sk-...", "Bearer ..."), with "[redacted]". Applied to every message that is logged, printed
// or stored.
std::string Redact(std::string_view text);

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Writes "plumb: <level>: <message>" to stderr after redaction. Thread-safe.
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void LogWarning(fmt::format_string<Args...> f, Args&&... args) {
  LogLine(LogLevel::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogInfo(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLogLevel() >= LogLevel::kInfo)
    LogLine(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogDebug(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLogLevel() >= LogLevel::kDebug)
    LogLine(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace plumb

#endif  // PLUMB_LOG_H_
