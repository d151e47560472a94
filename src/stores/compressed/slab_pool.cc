// Copyright (c) uttm developers.
//
// slab_pool.cc: see slab_pool.h.
#include "stores/compressed/slab_pool.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace uttm::internal {

namespace {
constexpr PageOrder kSlabOrder(4);
static_assert(kSlabOrder.bytes().value() == SlabPool::kSlabBytes);
}  // namespace

SlabPool::~SlabPool() {
  for (const Slab& s : slabs_) {
    if (s.base != nullptr) released_.push_back(PageChunk{s.base, kSlabOrder});
  }
  for (std::byte* p : spare_) released_.push_back(PageChunk{p, kSlabOrder});
  provider_->Free(released_);
}

bool SlabPool::FitsWithoutNewSlab(std::uint32_t len) const {
  return !classes_[ClassOf(len)].partial.empty();
}

std::uint32_t SlabPool::NewSlab(std::uint32_t cls) {
  const std::uint32_t n = SlotsPerSlab(cls);
  std::unique_ptr<std::uint32_t[]> owners(new (std::nothrow) std::uint32_t[n]);
  if (!owners) return kNone;
  std::byte* p = nullptr;
  if (!spare_.empty()) {
    p = spare_.back();
    spare_.pop_back();
    slab_bytes_ -= kSlabBytes;
  } else {
    Result<PageChunk> chunk = provider_->Allocate(kSlabOrder);  // prefaulted by the provider
    if (!chunk.ok()) return kNone;
    p = chunk->addr;
  }
  std::uint32_t id = free_records_;
  if (id != kNone) {
    free_records_ = slabs_[id].next_free_record;
  } else {
    id = static_cast<std::uint32_t>(slabs_.size());
    slabs_.emplace_back();
  }
  Slab& s = slabs_[id];
  s = Slab{};
  s.base = p;
  s.owner_words = std::move(owners);
  s.cls = cls;
  const std::uint32_t size = SlotBytes(cls);
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t next = i + 1 < n ? i + 1 : kNone;
    std::memcpy(s.base + std::size_t{i} * size, &next, sizeof next);
  }
  s.free_head = 0;
  classes_[cls].partial.push_back(id);
  ++classes_[cls].slabs;
  slab_bytes_ += kSlabBytes + n * sizeof(std::uint32_t);
  return id;
}

void SlabPool::ReleaseSlab(std::uint32_t id) {
  Slab& s = slabs_[id];
  Class& c = classes_[s.cls];
  RemovePartial(c, id);
  --c.slabs;
  slab_bytes_ -= SlotsPerSlab(s.cls) * sizeof(std::uint32_t);
  if (spare_.size() < max_spare_) {
    spare_.push_back(s.base);
  } else {
    slab_bytes_ -= kSlabBytes;
    released_.push_back(PageChunk{s.base, kSlabOrder});
  }
  s.base = nullptr;
  s.owner_words.reset();
  s.next_free_record = free_records_;
  free_records_ = id;
}

void SlabPool::RemovePartial(Class& c, std::uint32_t id) {
  auto it = std::find(c.partial.begin(), c.partial.end(), id);
  if (it != c.partial.end()) {
    *it = c.partial.back();
    c.partial.pop_back();
  }
}

bool SlabPool::Alloc(std::uint32_t len, std::uint32_t owner, Ref* ref) {
  const std::uint32_t cls = ClassOf(len);
  Class& c = classes_[cls];
  const std::uint32_t id = c.partial.empty() ? NewSlab(cls) : c.partial.back();
  if (id == kNone) return false;
  *ref = TakeSlot(id, owner);
  if (slabs_[id].free_head == kNone) RemovePartial(c, id);
  return true;
}

std::byte* SlabPool::At(Ref ref) const {
  const Slab& s = slabs_[ref.slab];
  return s.base + std::size_t{ref.slot} * SlotBytes(s.cls);
}

void SlabPool::Free(Ref ref) {
  Slab& s = slabs_[ref.slab];
  Class& c = classes_[s.cls];
  const bool was_full = s.free_head == kNone;
  std::memcpy(s.base + std::size_t{ref.slot} * SlotBytes(s.cls), &s.free_head, sizeof s.free_head);
  s.free_head = ref.slot;
  s.owners()[ref.slot] = kNone;
  --s.used;
  --c.used;
  if (was_full) c.partial.push_back(ref.slab);
  // An empty slab goes, unless it is the only room its class has left (no thrashing at the
  // boundary of one slab).
  if (s.used == 0 && c.partial.size() > 1) ReleaseSlab(ref.slab);
}

bool SlabPool::TooMuchSlack(const Class& c, std::uint32_t cls) const {
  const std::uint64_t capacity = c.slabs * SlotsPerSlab(cls);
  const std::uint64_t free = capacity - c.used;
  return free * 4 > capacity && free >= 2 * std::uint64_t{SlotsPerSlab(cls)};
}

SlabPool::Ref SlabPool::TakeSlot(std::uint32_t id, std::uint32_t owner) {
  Slab& s = slabs_[id];
  const std::uint32_t slot = s.free_head;
  std::memcpy(&s.free_head, s.base + std::size_t{slot} * SlotBytes(s.cls), sizeof s.free_head);
  s.owners()[slot] = owner;
  ++s.used;
  ++classes_[s.cls].used;
  return Ref{id, slot};
}

std::size_t SlabPool::Compact(const std::function<void(std::uint32_t, Ref)>& moved) {
  std::size_t moves = 0;
  for (std::uint32_t cls = 0; cls < kClasses; ++cls) {
    Class& c = classes_[cls];
    const std::uint32_t size = SlotBytes(cls);
    const std::uint32_t per_slab = SlotsPerSlab(cls);
    while (TooMuchSlack(c, cls) && c.partial.size() >= 2) {
      // The sparsest slab with room is the source; its objects fill the fullest others first.
      auto src_it = std::min_element(c.partial.begin(), c.partial.end(), [&](auto a, auto b) {
        return slabs_[a].used < slabs_[b].used;
      });
      const std::uint32_t src = *src_it;
      *src_it = c.partial.back();
      c.partial.pop_back();  // nothing is placed into the source meanwhile
      std::vector<std::uint32_t> targets = c.partial;
      std::sort(targets.begin(), targets.end(),
                [&](auto a, auto b) { return slabs_[a].used > slabs_[b].used; });
      Slab& from = slabs_[src];
      std::uint32_t* owners = from.owners();
      std::size_t t = 0;
      for (std::uint32_t slot = 0; slot < per_slab && from.used > 0; ++slot) {
        if (owners[slot] == kNone) continue;
        while (t < targets.size() && slabs_[targets[t]].free_head == kNone) ++t;
        if (t == targets.size()) break;
        const std::uint32_t owner = owners[slot];
        const Ref to = TakeSlot(targets[t], owner);
        std::memcpy(At(to), from.base + std::size_t{slot} * size, size);
        owners[slot] = kNone;
        --from.used;
        --c.used;
        moved(owner, to);
        ++moves;
      }
      std::erase_if(c.partial, [&](std::uint32_t id) { return slabs_[id].free_head == kNone; });
      if (from.used == 0) {
        ReleaseSlab(src);
        continue;
      }
      // The others filled up first: the source keeps the rest, its free list rebuilt.
      from.free_head = kNone;
      for (std::uint32_t slot = per_slab; slot-- > 0;) {
        if (owners[slot] != kNone) continue;
        std::memcpy(from.base + std::size_t{slot} * size, &from.free_head, sizeof from.free_head);
        from.free_head = slot;
      }
      if (from.free_head != kNone) c.partial.push_back(src);
      break;
    }
  }
  return moves;
}

std::uint64_t SlabPool::used_slots() const {
  std::uint64_t n = 0;
  for (const Class& c : classes_) n += c.used;
  return n;
}

std::uint64_t SlabPool::slot_capacity() const {
  std::uint64_t n = 0;
  for (std::uint32_t cls = 0; cls < kClasses; ++cls) n += classes_[cls].slabs * SlotsPerSlab(cls);
  return n;
}

}  // namespace uttm::internal
