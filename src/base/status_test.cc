// Copyright (c) uttm developers.
#include "uttm/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace uttm {
namespace {

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Errc::kOk);
  EXPECT_EQ(s.kernel_errno(), 0);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(s.message().empty());
}

TEST(Status, KeepsKernelMeaning) {
  EXPECT_EQ(Status(Errc::kBusy, "x").kernel_errno(), -EBUSY);
  EXPECT_EQ(Status(Errc::kNoSpace, "x").kernel_errno(), -ENOSPC);
  EXPECT_EQ(Status(Errc::kInterrupted, "x").kernel_errno(), -EINTR);
  EXPECT_EQ(Status(Errc::kDeadlock, "x").kernel_errno(), -EDEADLK);
  EXPECT_EQ(Status(Errc::kAlready, "x").kernel_errno(), -EALREADY);
  EXPECT_EQ(Status(Errc::kMultihop, "x").kernel_errno(), -EMULTIHOP);
  EXPECT_STREQ(ErrcName(Errc::kNoSpace), "ENOSPC");
  EXPECT_STREQ(ErrcName(Errc::kIo), "EIO");
}

TEST(Status, MessageAndAnnotate) {
  Status s(Errc::kInvalid, "size is 0");
  EXPECT_EQ(s.ToString(), "EINVAL: size is 0");
  s.Annotate("buffer 'a'");
  EXPECT_EQ(s.message(), "buffer 'a': size is 0");
  Status ok;
  ok.Annotate("ignored");
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(ok.message().empty());
}

TEST(Status, CopyKeepsMessage) {
  Status a(Errc::kIo, "read failed");
  Status b = a;
  EXPECT_EQ(b.code(), Errc::kIo);
  EXPECT_EQ(b.message(), "read failed");
  Status c;
  c = a;
  EXPECT_EQ(c.message(), "read failed");
  EXPECT_TRUE(a == Errc::kIo);
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(ErrcFromErrno(ENOSPC), Errc::kNoSpace);
  EXPECT_EQ(ErrcFromErrno(EDQUOT), Errc::kNoSpace);
  EXPECT_EQ(ErrcFromErrno(EINTR), Errc::kInterrupted);
  EXPECT_EQ(ErrcFromErrno(EBADF), Errc::kIo);
  EXPECT_EQ(ErrcFromErrno(0), Errc::kOk);
}

Result<int> Half(int v) {
  if (v % 2 != 0) return Status(Errc::kInvalid, "odd");
  return v / 2;
}

Status UseHalf(int v, int* out) {
  UTTM_ASSIGN_OR_RETURN(int h, Half(v));
  *out = h;
  return Status();
}

Status Chain(int v) {
  UTTM_RETURN_IF_ERROR(Half(v).status());
  return Status();
}

TEST(Result, ValueOrError) {
  Result<int> r = Half(8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4);
  Result<int> e = Half(3);
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.code(), Errc::kInvalid);
  EXPECT_EQ(e.status().message(), "odd");
}

TEST(Result, Macros) {
  int out = 0;
  EXPECT_TRUE(UseHalf(10, &out).ok());
  EXPECT_EQ(out, 5);
  EXPECT_EQ(UseHalf(7, &out).code(), Errc::kInvalid);
  EXPECT_EQ(out, 5);
  EXPECT_TRUE(Chain(2).ok());
  EXPECT_EQ(Chain(1).code(), Errc::kInvalid);
}

TEST(Result, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> e(Errc::kIo, "boom");
  EXPECT_DEATH((void)e.value(), "value\\(\\) of an error Result");
}

TEST(ResultDeathTest, OkStatusIsNotAnError) {
  EXPECT_DEATH((void)Result<int>{Status()}, "OK Status");
}

}  // namespace
}  // namespace uttm
