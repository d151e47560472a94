// Copyright (c) uttm developers.
#include "uttm/page_vector.h"

#include <gtest/gtest.h>

namespace uttm {
namespace {}  // namespace
}  // namespace uttm
