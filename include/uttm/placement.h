// Copyright (c) uttm developers.
//
// placement.h: where a buffer object may live (TTM's ttm_place / ttm_placement).
//
// A Placement is an ordered list of Places, most preferred first. Validation makes two passes:
// the first never evicts and skips FALLBACK places; the second evicts and skips DESIRED places.
// An empty placement means "no backing at all": the object is purged ("gutted").
//
// Thread-safety: plain values.
#ifndef UTTM_PLACEMENT_H_
#define UTTM_PLACEMENT_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace uttm {

// A memory type id: an index into the device's managers (at most kNumMemTypes).
using MemType = std::uint32_t;
inline constexpr MemType kMemSystem = 0;  // pages under uttm's control; may be backed up any time
inline constexpr MemType kMemTt = 1;      // pages the device can reach (GTT-like)
inline constexpr MemType kMemVram = 2;    // device-local memory
inline constexpr MemType kMemPriv = 3;    // first driver-private type
inline constexpr unsigned kNumMemTypes = 8;

// "system", "tt", "vram", or "typeN" for the others (region names, reports).
inline std::string MemTypeName(MemType t) {
  if (t == kMemSystem) return "system";
  if (t == kMemTt) return "tt";
  if (t == kMemVram) return "vram";
  return "type" + std::to_string(t);
}

// LRU priorities: lower priorities are evicted first.
inline constexpr unsigned kNumPriorities = 4;

enum PlaceFlag : std::uint32_t {
  kPlaceContiguous = 1u << 0,  // one physically contiguous range
  kPlaceTopDown = 1u << 1,     // allocate from the top of the range
  kPlaceTemporary = 1u << 2,   // a bounce resource for a multihop move; never "compatible"
  kPlaceDesired = 1u << 3,     // only tried without eviction
  kPlaceFallback = 1u << 4,    // only tried with eviction
};

struct Place {
  // Allowed range in pages [fpfn, lpfn); lpfn 0 means "to the end of the manager".
  std::uint64_t fpfn = 0;
  std::uint64_t lpfn = 0;
  MemType mem_type = kMemSystem;
  std::uint32_t flags = 0;

  bool has(PlaceFlag f) const { return (flags & f) != 0; }
};

struct Placement {
  Placement() = default;
  Placement(std::initializer_list<Place> list) : places(list) {}
  std::vector<Place> places;
  bool empty() const { return places.empty(); }
};

}  // namespace uttm

#endif  // UTTM_PLACEMENT_H_
