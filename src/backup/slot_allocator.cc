// Copyright (c) uttm developers.
#include "backup/slot_allocator.h"

#include <algorithm>
#include <iterator>

#include "base/check.h"

namespace uttm::internal {

SlotAllocator::Nodes SlotAllocator::MakeNodes() {
  ByStart start;
  start.emplace(0, 0);
  BySize size;
  size.emplace(0, 0);
  return Nodes{start.extract(start.begin()), size.extract(size.begin())};
}

SlotAllocator::Nodes SlotAllocator::Extract(ByStart::iterator it) {
  Nodes n;
  n.size = by_size_.extract({it->second, it->first});
  n.start = by_start_.extract(it);
  return n;
}

void SlotAllocator::Put(Nodes nodes, std::uint64_t start, std::uint64_t count) {
  nodes.start.key() = start;
  nodes.start.mapped() = count;
  nodes.size.value() = {count, start};
  by_start_.insert(std::move(nodes.start));
  by_size_.insert(std::move(nodes.size));
}

void SlotAllocator::TakeFront(ByStart::iterator it, std::uint64_t count) {
  const std::uint64_t start = it->first;
  const std::uint64_t len = it->second;
  Nodes nodes = Extract(it);
  // The rest of the extent keeps the same nodes: no allocation.
  if (count < len) Put(std::move(nodes), start + count, len - count);
  used_ += count;
}

std::uint64_t SlotAllocator::Allocate(std::uint64_t n, std::vector<SlotExtent>* out) {
  if (n == 0) return 0;
  // 1. Best fit among the holes.
  auto fit = by_size_.lower_bound({n, 0});
  if (fit != by_size_.end()) {
    const std::uint64_t start = fit->second;
    TakeFront(by_start_.find(start), n);
    out->push_back({start, n});
    return n;
  }
  // 2. The tail, as far as the capacity allows.
  std::uint64_t got = 0;
  const std::uint64_t tail_room = max_slots_ - tail_;
  if (tail_room >= n) {
    out->push_back({tail_, n});
    tail_ += n;
    used_ += n;
    return n;
  }
  // 3. Capacity reached: the holes, largest first, then what is left of the tail.
  while (got < n && !by_size_.empty()) {
    auto largest = std::prev(by_size_.end());
    const std::uint64_t start = largest->second;
    const std::uint64_t take = std::min(n - got, largest->first);
    TakeFront(by_start_.find(start), take);
    out->push_back({start, take});
    got += take;
  }
  if (got < n && tail_room > 0) {
    const std::uint64_t take = std::min(n - got, tail_room);
    out->push_back({tail_, take});
    tail_ += take;
    used_ += take;
    got += take;
  }
  return got;
}

void SlotAllocator::Free(std::uint64_t start, std::uint64_t count) {
  if (count == 0) return;
  UTTM_CHECK(start + count <= tail_ && count <= used_, "SlotAllocator::Free of unallocated slots");
  auto next = by_start_.lower_bound(start);
  UTTM_CHECK(next == by_start_.end() || next->first >= start + count,
             "SlotAllocator::Free overlaps a free extent");
  if (next != by_start_.begin()) {
    UTTM_CHECK(std::prev(next)->first + std::prev(next)->second <= start,
               "SlotAllocator::Free overlaps a free extent");
  }
  // The one allocation, before anything changes (a merge reuses a neighbour's nodes instead).
  Nodes nodes = MakeNodes();
  used_ -= count;
  // Merge with the free neighbour after and before.
  if (next != by_start_.end() && next->first == start + count) {
    count += next->second;
    auto after = std::next(next);
    nodes = Extract(next);
    next = after;
  }
  if (next != by_start_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      count += prev->second;
      nodes = Extract(prev);
    }
  }
  if (start + count == tail_) {
    tail_ = start;  // Invariant: no free extent touches the tail.
  } else {
    Put(std::move(nodes), start, count);
  }
}

}  // namespace uttm::internal
