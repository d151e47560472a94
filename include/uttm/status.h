// Copyright (c) uttm developers.
//
// status.h: the error vocabulary of uttm.
//
// Every fallible operation returns a `Status` (no value) or a `Result<T>` (a value or a Status).
// No exception ever crosses the public API. Error codes keep the meanings the Linux kernel gives
// them in TTM, because callers act on them the same way:
//
//   kBusy        (EBUSY)     skip this object / would have to wait; try another or wait.
//   kNoSpace     (ENOSPC)    no room in this place: evict something and retry.
//   kNoMemory    (ENOMEM)    no memory even after eviction and reclaim.
//   kInterrupted (EINTR)     interrupted; the operation's state is kept, call it again to resume.
//   kDeadlock    (EDEADLK)   wound-wait back-off: drop every reservation of the ticket and retry.
//   kAlready     (EALREADY)  already reserved by this ticket.
//   kInvalid     (EINVAL)    API misuse or bad input; nothing was changed.
//   kIo          (EIO)       a store failed to read or write, or a backup failed its checksum.
//   kMultihop    (EMULTIHOP) a move needs a bounce through a temporary placement (driver to core).
//   kNotFound    (ENOENT)    nothing to act on (e.g. an empty LRU).
//   kAgain       (EAGAIN)    transient condition; treated like kNoSpace by placement.
//   kFault       (EFAULT)    a mapping step failed.
//   kTimedOut    (ETIMEDOUT) a bounded wait expired.
//   kNotSupported(EOPNOTSUPP) the operation is not available on this object, store or kernel.
//
// Thread-safety: Status and Result are values; distinct objects may be used from distinct threads.
#ifndef UTTM_STATUS_H_
#define UTTM_STATUS_H_

#include <cerrno>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "uttm/export.h"

namespace uttm {

// A typed error code. The numeric value is the positive errno of the kernel meaning.
enum class Errc : int {
  kOk = 0,
  kBusy = EBUSY,
  kNoSpace = ENOSPC,
  kNoMemory = ENOMEM,
  kInterrupted = EINTR,
  kDeadlock = EDEADLK,
  kAlready = EALREADY,
  kInvalid = EINVAL,
  kIo = EIO,
  kMultihop = EMULTIHOP,
  kNotFound = ENOENT,
  kAgain = EAGAIN,
  kFault = EFAULT,
  kTimedOut = ETIMEDOUT,
  kNotSupported = EOPNOTSUPP,
  // An internal structure is inconsistent (an invariant check failed; EUCLEAN, as file systems
  // report detected metadata corruption).
  kCorrupt = EUCLEAN,
};

// Short symbolic name of a code ("EBUSY", "ENOSPC", ...). Never null.
UTTM_EXPORT const char* ErrcName(Errc code);

// Maps a positive errno value from the OS to the closest Errc (unknown values map to kIo).
UTTM_EXPORT Errc ErrcFromErrno(int err);

// The result of an operation that returns no value: OK, or a code with a message naming what
// went wrong. Cheap to copy when OK (no allocation).
class [[nodiscard]] UTTM_EXPORT Status {
 public:
  // An OK status.
  Status() = default;
  // An error. `code` must not be kOk; `message` says what was wrong, for a human.
  Status(Errc code, std::string_view message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Errc::kOk; }
  Errc code() const { return code_; }
  // The kernel-style return value: 0 when OK, else the negative errno.
  int kernel_errno() const { return -static_cast<int>(code_); }
  // The message given at construction ("" when OK).
  std::string_view message() const;
  // "OK" or "ENOSPC: <message>".
  std::string ToString() const;

  // Prefixes the message with `context` ("context: message"); no-op when OK. Returns *this.
  Status& Annotate(std::string_view context);

  friend bool operator==(const Status& a, Errc b) { return a.code_ == b; }

 private:
  Errc code_ = Errc::kOk;
  std::unique_ptr<std::string> message_;
};

// A value of type T, or an error Status. Accessing the value of an error Result aborts (it is a
// programming error, like dereferencing an empty optional).
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "Result<Status> makes no sense");

 public:
  // Implicit from a value and from an error, so `return value;` and `return status;` both work.
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}        // NOLINT
  Result(Status status) : data_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    CheckNotOk();
  }
  Result(Errc code, std::string_view message) : data_(std::in_place_index<1>, code, message) {
    CheckNotOk();
  }

  bool ok() const { return data_.index() == 0; }
  Errc code() const { return ok() ? Errc::kOk : std::get<1>(data_).code(); }
  // The error status, or an OK status when there is a value.
  Status status() const { return ok() ? Status() : std::get<1>(data_); }

  T& value() & {
    CheckOk();
    return std::get<0>(data_);
  }
  const T& value() const& {
    CheckOk();
    return std::get<0>(data_);
  }
  T&& value() && {
    CheckOk();
    return std::get<0>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckOk() const;
  void CheckNotOk() const;

  std::variant<T, Status> data_;
};

namespace internal {
// Aborts with a message; used for misuse of Result.
[[noreturn]] UTTM_EXPORT void ResultMisuse(const char* what);
}  // namespace internal

template <typename T>
void Result<T>::CheckOk() const {
  if (!ok()) internal::ResultMisuse("value() of an error Result");
}

template <typename T>
void Result<T>::CheckNotOk() const {
  if (data_.index() == 1 && std::get<1>(data_).ok()) {
    internal::ResultMisuse("Result constructed from an OK Status");
  }
}

}  // namespace uttm

// Returns the Status of `expr` from the enclosing function if it is an error.
#define UTTM_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::uttm::Status uttm_status_ = (expr);        \
    if (!uttm_status_.ok()) return uttm_status_; \
  } while (0)

#define UTTM_STATUS_CONCAT_INNER_(a, b) a##b
#define UTTM_STATUS_CONCAT_(a, b) UTTM_STATUS_CONCAT_INNER_(a, b)

// `UTTM_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its error.
#define UTTM_ASSIGN_OR_RETURN(lhs, expr) \
  UTTM_ASSIGN_OR_RETURN_IMPL_(UTTM_STATUS_CONCAT_(uttm_result_, __LINE__), lhs, expr)
#define UTTM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#endif  // UTTM_STATUS_H_
