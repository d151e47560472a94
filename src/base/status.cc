// Copyright (c) uttm developers.
#include "uttm/status.h"

#include <cstdio>
#include <cstdlib>
#include <new>

#include "base/check.h"

namespace uttm {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kOk:
      return "OK";
    case Errc::kBusy:
      return "EBUSY";
    case Errc::kNoSpace:
      return "ENOSPC";
    case Errc::kNoMemory:
      return "ENOMEM";
    case Errc::kInterrupted:
      return "EINTR";
    case Errc::kDeadlock:
      return "EDEADLK";
    case Errc::kAlready:
      return "EALREADY";
    case Errc::kInvalid:
      return "EINVAL";
    case Errc::kIo:
      return "EIO";
    case Errc::kMultihop:
      return "EMULTIHOP";
    case Errc::kNotFound:
      return "ENOENT";
    case Errc::kAgain:
      return "EAGAIN";
    case Errc::kFault:
      return "EFAULT";
    case Errc::kTimedOut:
      return "ETIMEDOUT";
    case Errc::kNotSupported:
      return "EOPNOTSUPP";
    case Errc::kCorrupt:
      return "EUCLEAN";
  }
  return "E?";
}

Errc ErrcFromErrno(int err) {
  switch (err) {
    case 0:
      return Errc::kOk;
    case EBUSY:
      return Errc::kBusy;
    case ENOSPC:
      return Errc::kNoSpace;
    case EDQUOT:
      return Errc::kNoSpace;
    case ENOMEM:
      return Errc::kNoMemory;
    case EINTR:
      return Errc::kInterrupted;
    case EDEADLK:
      return Errc::kDeadlock;
    case EALREADY:
      return Errc::kAlready;
    case EINVAL:
      return Errc::kInvalid;
    case EMULTIHOP:
      return Errc::kMultihop;
    case ENOENT:
      return Errc::kNotFound;
    case EAGAIN:
      return Errc::kAgain;
    case EFAULT:
      return Errc::kFault;
    case ETIMEDOUT:
      return Errc::kTimedOut;
    case EOPNOTSUPP:
      return Errc::kNotSupported;
    case EUCLEAN:
      return Errc::kCorrupt;
    default:
      return Errc::kIo;
  }
}

Status::Status(Errc code, std::string_view message) : code_(code) {
  UTTM_CHECK(code != Errc::kOk, "an error Status needs an error code");
  // An error must be reportable when the heap is exhausted: the code is kept, the message is
  // dropped if it cannot be stored.
  if (message.empty()) return;
  try {
    message_ = std::make_unique<std::string>(message);
  } catch (const std::bad_alloc&) {
  }
}

Status::Status(const Status& other) : code_(other.code_) {
  if (!other.message_) return;
  try {
    message_ = std::make_unique<std::string>(*other.message_);
  } catch (const std::bad_alloc&) {
  }
}

Status& Status::operator=(const Status& other) {
  if (this != &other) {
    code_ = other.code_;
    message_.reset();
    if (other.message_) {
      try {
        message_ = std::make_unique<std::string>(*other.message_);
      } catch (const std::bad_alloc&) {
      }
    }
  }
  return *this;
}

std::string_view Status::message() const {
  return message_ ? std::string_view(*message_) : std::string_view();
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = ErrcName(code_);
  if (message_) {
    s += ": ";
    s += *message_;
  }
  return s;
}

Status& Status::Annotate(std::string_view context) {
  if (ok() || context.empty()) return *this;
  std::string s(context);
  if (message_) {
    s += ": ";
    s += *message_;
  }
  message_ = std::make_unique<std::string>(std::move(s));
  return *this;
}

namespace internal {

void ResultMisuse(const char* what) {
  std::fprintf(stderr, "uttm: fatal: %s\n", what);
  std::abort();
}

void CheckFailed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "uttm: check failed at %s:%d: %s (%s)\n", file, line, cond, msg);
  std::abort();
}

}  // namespace internal
}  // namespace uttm
