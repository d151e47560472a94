// Copyright (c) uttm developers.
//
// test_util.h (tests only): hand-off helpers for the reservation tests.
#ifndef UTTM_SRC_RESERVATION_TEST_UTIL_H_
#define UTTM_SRC_RESERVATION_TEST_UTIL_H_

#include <chrono>
#include <functional>
#include <stop_token>
#include <thread>
#include <utility>

#include "uttm/operation_context.h"

namespace uttm::testing {

// Polls until `pred` holds (at most ~5 s); for "the other thread got there" hand-offs.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 5000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

// Runs `action` on its own thread after `delay`; joins on destruction.
class DelayedAction {
 public:
  DelayedAction(std::chrono::milliseconds delay, std::function<void()> action)
      : thread_([delay, action = std::move(action)] {
          std::this_thread::sleep_for(delay);
          action();
        }) {}
  ~DelayedAction() { thread_.join(); }
  DelayedAction(const DelayedAction&) = delete;
  DelayedAction& operator=(const DelayedAction&) = delete;

 private:
  std::thread thread_;
};

// An interruptible OperationContext whose stop is requested `delay` after construction.
class InterruptAfter {
 public:
  explicit InterruptAfter(std::chrono::milliseconds delay)
      : stopper_(delay, [this] { source_.request_stop(); }) {
    ctx_.interruptible = true;
    ctx_.stop = source_.get_token();
  }
  const OperationContext& ctx() const { return ctx_; }
  std::stop_token token() const { return source_.get_token(); }

 private:
  std::stop_source source_;
  OperationContext ctx_;
  DelayedAction stopper_;  // last: joined first on destruction
};

}  // namespace uttm::testing

#endif  // UTTM_SRC_RESERVATION_TEST_UTIL_H_
