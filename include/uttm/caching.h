// Copyright (c) uttm developers.
//
// caching.h: the CPU caching attribute of pages (TTM's ttm_caching). Changing it is expensive
// (on real hardware it rewrites page tables and flushes caches), which is why pages are pooled
// per caching mode. Anything returned to the OS or backed up is first made kCached again.
#ifndef UTTM_CACHING_H_
#define UTTM_CACHING_H_

namespace uttm {

enum class Caching : unsigned char {
  kUncached = 0,
  kWriteCombined = 1,
  kCached = 2,
};

inline constexpr unsigned kNumCachingModes = 3;

inline const char* CachingName(Caching c) {
  switch (c) {
    case Caching::kUncached:
      return "uc";
    case Caching::kWriteCombined:
      return "wc";
    case Caching::kCached:
      return "cached";
  }
  return "?";
}

}  // namespace uttm

#endif  // UTTM_CACHING_H_
