// Copyright (c) uttm developers.
//
// units.h: strong unit types, so a page count can never be passed where bytes are meant.
//
//   Bytes      a size or offset in bytes.
//   PageCount  a number of 4 KiB system pages ("page" in uttm always means 4 KiB).
//   PageOrder  log2 of the pages in a chunk: order 0 is 4 KiB, order 9 is 2 MiB (kMaxPageOrder).
//
// Constructors are explicit; conversions are named (`in_bytes()`, `pages_rounded_up()`).
// Thread-safety: plain values.
#ifndef UTTM_UNITS_H_
#define UTTM_UNITS_H_

#include <compare>
#include <cstddef>
#include <cstdint>

namespace uttm {

// The system page: the unit of population, backup and restore.
inline constexpr std::size_t kPageShift = 12;
inline constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
// Largest chunk the page provider hands out: 2^9 pages = 2 MiB (one huge page).
inline constexpr unsigned kMaxPageOrder = 9;
inline constexpr unsigned kNumPageOrders = kMaxPageOrder + 1;

class PageCount;

// A number of bytes.
class Bytes {
 public:
  constexpr Bytes() = default;
  constexpr explicit Bytes(std::uint64_t value) : value_(value) {}
  constexpr std::uint64_t value() const { return value_; }
  // Pages needed to hold this many bytes (rounded up).
  constexpr PageCount pages_rounded_up() const;
  constexpr bool is_page_aligned() const { return (value_ & (kPageSize - 1)) == 0; }

  constexpr Bytes& operator+=(Bytes o) {
    value_ += o.value_;
    return *this;
  }
  constexpr Bytes& operator-=(Bytes o) {
    value_ -= o.value_;
    return *this;
  }
  friend constexpr Bytes operator+(Bytes a, Bytes b) { return Bytes(a.value_ + b.value_); }
  friend constexpr Bytes operator-(Bytes a, Bytes b) { return Bytes(a.value_ - b.value_); }
  friend constexpr auto operator<=>(Bytes, Bytes) = default;

 private:
  std::uint64_t value_ = 0;
};

// A number of 4 KiB pages.
class PageCount {
 public:
  constexpr PageCount() = default;
  constexpr explicit PageCount(std::uint64_t value) : value_(value) {}
  constexpr std::uint64_t value() const { return value_; }
  constexpr Bytes in_bytes() const { return Bytes(value_ << kPageShift); }

  constexpr PageCount& operator+=(PageCount o) {
    value_ += o.value_;
    return *this;
  }
  constexpr PageCount& operator-=(PageCount o) {
    value_ -= o.value_;
    return *this;
  }
  friend constexpr PageCount operator+(PageCount a, PageCount b) {
    return PageCount(a.value_ + b.value_);
  }
  friend constexpr PageCount operator-(PageCount a, PageCount b) {
    return PageCount(a.value_ - b.value_);
  }
  friend constexpr auto operator<=>(PageCount, PageCount) = default;

 private:
  std::uint64_t value_ = 0;
};

constexpr PageCount Bytes::pages_rounded_up() const {
  return PageCount((value_ + kPageSize - 1) >> kPageShift);
}

// The order of a page chunk: 2^order pages. Valid orders are 0..kMaxPageOrder.
class PageOrder {
 public:
  constexpr PageOrder() = default;
  constexpr explicit PageOrder(unsigned value) : value_(value) {}
  constexpr unsigned value() const { return value_; }
  constexpr bool is_valid() const { return value_ <= kMaxPageOrder; }
  constexpr PageCount pages() const { return PageCount(std::uint64_t{1} << value_); }
  constexpr Bytes bytes() const { return pages().in_bytes(); }
  // The largest order whose chunk fits in `n` pages, capped at kMaxPageOrder. REQUIRES n > 0.
  static constexpr PageOrder LargestFitting(PageCount n) {
    unsigned order = 0;
    while (order < kMaxPageOrder && (std::uint64_t{2} << order) <= n.value()) ++order;
    return PageOrder(order);
  }

  friend constexpr auto operator<=>(PageOrder, PageOrder) = default;

 private:
  unsigned value_ = 0;
};

namespace unit_literals {
constexpr Bytes operator""_B(unsigned long long v) { return Bytes(v); }
constexpr Bytes operator""_KiB(unsigned long long v) { return Bytes(v << 10); }
constexpr Bytes operator""_MiB(unsigned long long v) { return Bytes(v << 20); }
constexpr Bytes operator""_GiB(unsigned long long v) { return Bytes(v << 30); }
constexpr PageCount operator""_pages(unsigned long long v) { return PageCount(v); }
}  // namespace unit_literals

}  // namespace uttm

#endif  // UTTM_UNITS_H_
