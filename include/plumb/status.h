// plumb::Status: the error value every fallible call in plumb returns.
#ifndef PLUMB_STATUS_H_
#define PLUMB_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

namespace plumb {

// Error codes. Retry behaviour follows from the code (see IsRetryable), so backends only have to
// map a failure onto the right code.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad flag, malformed suite or grader file; HTTP 400
  kNotFound,            // unknown suite, grader or backend id; missing file; HTTP 404
  kFailedPrecondition,  // wrong state, e.g. a DB schema newer than the binary, exhausted quota
  kUnauthenticated,     // missing or invalid credentials; HTTP 401
  kPermissionDenied,    // no access; HTTP 403
  kResourceExhausted,   // rate limited; HTTP 429 (retried with backoff)
  kUnavailable,         // transient failure: 5xx, connection refused or reset (retried)
  kDeadlineExceeded,    // timeout (retried)
  kDataLoss,            // corrupt stored results
  kInternal,            // a broken invariant: a bug
  kUnimplemented,       // feature not supported
  kCancelled,           // interrupted by the user
  kAborted,             // a conflict with another process, e.g. one that is executing the run
};

// Stable lower-case name of a code ("invalid_argument"), as stored in the results database.
std::string_view StatusCodeName(StatusCode code);

// A success flag or an error code with a message. Messages name the subject, then the reason,
// then the setting to change, without a trailing period:
//   "benchmarks/x/items.jsonl:12: field 'prompt' must be a string"
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid_argument: <message>", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>". OK stays OK.
  Status WithPrefix(std::string_view prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// True for codes that a later attempt may cure: kResourceExhausted, kUnavailable,
// kDeadlineExceeded.
bool IsRetryable(StatusCode code);

// Shorthands for the common codes.
Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status FailedPrecondition(std::string message);
Status Internal(std::string message);
Status Unavailable(std::string message);
Status Unimplemented(std::string message);
Status DataLoss(std::string message);
Status Cancelled(std::string message);
Status Aborted(std::string message);

}  // namespace plumb

// Returns from the current function when `expr` (a Status) is not OK.
#define PLUMB_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::plumb::Status plumb_status_ = (expr);        \
    if (!plumb_status_.ok()) return plumb_status_; \
  } while (false)

#define PLUMB_STATUS_CONCAT_INNER_(a, b) a##b
#define PLUMB_STATUS_CONCAT_(a, b) PLUMB_STATUS_CONCAT_INNER_(a, b)

// `PLUMB_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result<T>, or returns its error.
#define PLUMB_ASSIGN_OR_RETURN(lhs, expr) \
  PLUMB_ASSIGN_OR_RETURN_IMPL_(PLUMB_STATUS_CONCAT_(plumb_result_, __LINE__), lhs, expr)
#define PLUMB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.has_value()) return tmp.error();          \
  lhs = std::move(tmp).value()

#endif  // PLUMB_STATUS_H_
