// Copyright (c) uttm developers.
#include "uttm/operation_context.h"

#include <gtest/gtest.h>

namespace uttm {
namespace {

TEST(OperationContext, DefaultsMatchTtm) {
  OperationContext ctx;
  EXPECT_FALSE(ctx.interruptible);
  EXPECT_FALSE(ctx.no_wait_gpu);
  EXPECT_FALSE(ctx.gfp_retry_mayfail);
  EXPECT_FALSE(ctx.allow_res_evict);
  EXPECT_EQ(ctx.resv, nullptr);
  EXPECT_EQ(ctx.bytes_moved, 0u);
  EXPECT_FALSE(ctx.interrupt_requested());
}

TEST(OperationContext, InterruptOnlyWhenInterruptible) {
  std::stop_source source;
  OperationContext ctx;
  ctx.stop = source.get_token();
  source.request_stop();
  EXPECT_FALSE(ctx.interrupt_requested());
  ctx.interruptible = true;
  EXPECT_TRUE(ctx.interrupt_requested());
}

}  // namespace
}  // namespace uttm
