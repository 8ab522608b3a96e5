// plumb::Result<T>: a T or a non-OK Status, with the std::expected API subset plumb uses.
#ifndef PLUMB_RESULT_H_
#define PLUMB_RESULT_H_

#include <cstdlib>
#include <utility>
#include <variant>

#include "plumb/status.h"

namespace plumb {

// Holds either a value or an error Status (never an OK Status). Accessing value() on an error,
// or error() on a value, is a bug and aborts. The names follow std::expected so that a move to
// C++23 is a rename.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : data_(value) {}        // NOLINT: implicit by design, like std::expected
  Result(T&& value) : data_(std::move(value)) {}  // NOLINT
  Result(Status status) : data_(std::move(status)) {  // NOLINT
    if (std::get<Status>(data_).ok()) {
      data_ = Status(StatusCode::kInternal, "Result constructed from an OK Status");
    }
  }

  bool has_value() const { return data_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return Checked(); }
  const T& value() const& { return const_cast<Result*>(this)->Checked(); }
  T&& value() && { return std::move(Checked()); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error; only valid when !has_value().
  const Status& error() const {
    if (has_value()) std::abort();
    return std::get<Status>(data_);
  }

  // OK when holding a value, otherwise the error.
  Status status() const { return has_value() ? Status() : error(); }

 private:
  T& Checked() {
    if (!has_value()) std::abort();
    return std::get<0>(data_);
  }

  std::variant<T, Status> data_;
};

}  // namespace plumb

#endif  // PLUMB_RESULT_H_
