// Copyright (c) uttm developers.
//
// The userfaultfd service on its own: a touch of a missing page reaches the range's handler with
// its address and kind, the toucher reads what the handler put there, a busy handler is called
// again while other ranges are served, a handler that gives up leaves the toucher EFAULT (in a
// system call) instead of zeros, and bad ranges are refused.
#include "uttm/user_faults.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "uttm/units.h"

namespace uttm {
namespace {

constexpr std::size_t kPages = 8;

// An anonymous private range of kPages pages, unmapped at the end.
struct Range {
  Range() {
    void* p = mmap(nullptr, kPages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    base = p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
  }
  ~Range() {
    if (base != nullptr) munmap(base, kPages * kPageSize);
  }
  std::byte* base;
};

// A touch of the range and what it reads, without ThreadSanitizer's instrumentation: the page was
// written by a service thread, and the toucher runs on after the kernel's wake-up, an ordering
// the sanitizer cannot see.
__attribute__((no_sanitize("thread"))) int Peek(const std::byte* p) { return static_cast<int>(*p); }
__attribute__((no_sanitize("thread"))) void Poke(std::byte* p, std::byte v) { *p = v; }

// Puts a page filled with `fill` at the faulting address by mapping it over the range there (the
// kernel drops the registration of what it replaces), after `busy_first` kBusy answers.
class FillingHandler : public UserFaults::Handler {
 public:
  explicit FillingHandler(int busy_first = 0) : busy_left_(busy_first) {}
  Status OnFault(std::byte* address, bool write) override {
    last_address.store(address);
    last_write.store(write);
    calls.fetch_add(1);
    if (busy_left_.fetch_sub(1) > 0) return Status(Errc::kBusy, "not yet");
    if (give_up) {
      mprotect(address, kPageSize, PROT_NONE);
      return Status(Errc::kIo, "cannot bring it back");
    }
    void* page = mmap(address, kPageSize, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (page == MAP_FAILED) return Status(Errc::kNoMemory, "mmap");
    std::memset(page, fill.load(), kPageSize);
    return Status();
  }
  std::atomic<std::byte*> last_address{nullptr};
  std::atomic<bool> last_write{false};
  std::atomic<int> calls{0};
  std::atomic<bool> give_up{false};
  std::atomic<int> fill{0x5a};

 private:
  std::atomic<int> busy_left_;
};

class UserFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = UserFaults::Open(2);
    if (!f.ok()) GTEST_SKIP() << "userfaultfd refused here: " << f.status().ToString();
    faults_ = std::move(f).value();
  }
  std::unique_ptr<UserFaults> faults_;
};

TEST_F(UserFaultsTest, ATouchReachesTheHandlerAndReadsWhatItPutThere) {
  Range r;
  ASSERT_NE(r.base, nullptr);
  auto handler = std::make_shared<FillingHandler>();
  ASSERT_TRUE(faults_->AddRange(r.base, kPages * kPageSize, handler).ok());
  std::byte* page3 = r.base + 3 * kPageSize;
  EXPECT_EQ(Peek(page3 + 100), 0x5a);
  EXPECT_EQ(handler->last_address.load(), page3);
  EXPECT_FALSE(handler->last_write.load());
  handler->fill = 0x33;
  Poke(r.base + 5 * kPageSize + 7, std::byte{1});  // a write: served, then the write lands
  EXPECT_TRUE(handler->last_write.load());
  EXPECT_EQ(Peek(r.base + 5 * kPageSize + 8), 0x33);
  EXPECT_EQ(Peek(r.base + 5 * kPageSize + 7), 1);
  EXPECT_EQ(faults_->faults(), 2u);
  faults_->RemoveRange(r.base);
}

// A busy range is tried again, and meanwhile a touch of another range is served.
TEST_F(UserFaultsTest, ABusyHandlerIsCalledAgainWithoutStallingOthers) {
  Range slow, fast;
  ASSERT_NE(slow.base, nullptr);
  ASSERT_NE(fast.base, nullptr);
  auto slow_handler = std::make_shared<FillingHandler>(/*busy_first=*/30);
  auto fast_handler = std::make_shared<FillingHandler>();
  ASSERT_TRUE(faults_->AddRange(slow.base, kPages * kPageSize, slow_handler).ok());
  ASSERT_TRUE(faults_->AddRange(fast.base, kPages * kPageSize, fast_handler).ok());
  std::atomic<int> slow_read{-1};
  std::thread t([&] { slow_read.store(Peek(slow.base + 10)); });
  while (slow_handler->calls.load() == 0) std::this_thread::yield();
  EXPECT_EQ(Peek(fast.base + kPageSize), 0x5a);
  EXPECT_EQ(slow_read.load(), -1) << "the busy range was served before its handler agreed";
  t.join();
  EXPECT_EQ(slow_read.load(), 0x5a);
  EXPECT_GE(slow_handler->calls.load(), 31);
  EXPECT_EQ(faults_->retries(), 1u);
  faults_->RemoveRange(slow.base);
  faults_->RemoveRange(fast.base);
}

// A handler that gives up closes the page: a system call reading it gets EFAULT, not zeros.
TEST_F(UserFaultsTest, AHandlerThatGivesUpLeavesEfaultNotZeros) {
  Range r;
  ASSERT_NE(r.base, nullptr);
  auto handler = std::make_shared<FillingHandler>();
  handler->give_up = true;
  ASSERT_TRUE(faults_->AddRange(r.base, kPages * kPageSize, handler).ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_EQ(write(fds[1], r.base, 64), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(faults_->failures(), 1u);
  close(fds[0]);
  close(fds[1]);
  faults_->RemoveRange(r.base);
}

TEST_F(UserFaultsTest, BadRangesAreRefused) {
  Range r;
  ASSERT_NE(r.base, nullptr);
  auto handler = std::make_shared<FillingHandler>();
  EXPECT_EQ(faults_->AddRange(r.base + 1, kPageSize, handler).code(), Errc::kInvalid);
  EXPECT_EQ(faults_->AddRange(r.base, 0, handler).code(), Errc::kInvalid);
  EXPECT_EQ(faults_->AddRange(r.base, kPageSize, nullptr).code(), Errc::kInvalid);
  ASSERT_TRUE(faults_->AddRange(r.base, 4 * kPageSize, handler).ok());
  EXPECT_EQ(faults_->AddRange(r.base + 3 * kPageSize, 2 * kPageSize, handler).code(),
            Errc::kInvalid)
      << "overlaps the range added first";
  // Not anonymous memory: the kernel serves missing faults of anonymous, shmem and hugetlb
  // mappings only, not of a regular file's.
  char path[] = "/var/tmp/uttm-user-faults-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  ASSERT_EQ(ftruncate(fd, 2 * kPageSize), 0);
  void* file = mmap(nullptr, 2 * kPageSize, PROT_READ, MAP_PRIVATE, fd, 0);
  ASSERT_NE(file, MAP_FAILED);
  EXPECT_EQ(faults_->AddRange(static_cast<std::byte*>(file), 2 * kPageSize, handler).code(),
            Errc::kInvalid);
  munmap(file, 2 * kPageSize);
  close(fd);
  faults_->RemoveRange(r.base);
}

}  // namespace
}  // namespace uttm
