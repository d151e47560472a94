// Copyright (c) uttm developers.
//
// content.h: the known content every buffer of a run holds, so the end of a run can check every
// byte of every retained buffer.
//
// Page `p` of buffer `id` at generation `g` (g > 0) holds 512 64-bit words; word i is a mix of
// (base + i) (of base + i % 64 for compressible content), where base = MixKeys(seed, id, g, p).
// Distinct buffers, pages and generations get distinct contents, so a page restored to the wrong
// place, a stale page or one flipped byte are all detected. Generation 0 means all zeros (a fresh
// buffer with fill "zero").
//
// BufferContent keeps the generation of every page of one buffer (4 bytes per 4 KiB page) and
// is what the engine uses: FillInitial at create, Write on every write op, Verify at the end.
//
// Thread-safety: functions are pure; a BufferContent is used by the one thread owning the buffer.
#ifndef UTTM_TOOLS_UTTM_CONTENT_H_
#define UTTM_TOOLS_UTTM_CONTENT_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "workload.h"

namespace uttm::tool {

struct ContentKey {
  std::uint64_t seed = 0;
  std::uint64_t buffer_id = 0;
  std::uint32_t generation = 0;  // 0 = zeros
  // Each page is its first 64 words repeated (Fill::kCompressible): still unique to (seed,
  // buffer, generation, page), and about eightfold compressible.
  bool compressible = false;
};

// The first byte that differs from the expected content.
struct Mismatch {
  std::uint64_t offset = 0;  // byte offset from the start of the checked range
  std::uint8_t expected = 0;
  std::uint8_t actual = 0;
};

// Writes the content of pages [first_page, first_page + num_pages) at `dst` (which points at
// page `first_page`, 8-byte aligned).
void FillPages(void* dst, const ContentKey& key, std::uint64_t first_page, std::uint64_t num_pages);

// Checks pages [first_page, first_page + num_pages) at `src` (pointing at page `first_page`).
// nullopt when every byte matches.
std::optional<Mismatch> VerifyPages(const void* src, const ContentKey& key,
                                    std::uint64_t first_page, std::uint64_t num_pages);

// The expected content of one buffer, page by page.
class BufferContent {
 public:
  BufferContent(std::uint64_t seed, std::uint64_t buffer_id, std::uint64_t num_pages, Fill fill);

  std::uint64_t num_pages() const { return page_generation_.size(); }
  // Writes the initial content into the whole buffer at `buffer` (num_pages() pages).
  void FillInitial(void* buffer) const;
  // Records a write of pages [first, first + n) (clamped to the buffer) under a new generation and
  // writes that content at `buffer` (the start of the buffer).
  void Write(void* buffer, std::uint64_t first, std::uint64_t n);
  // Write in two steps, for a write that may fail: Stage writes the content of a new generation
  // at `buffer` and returns it without recording it; Commit records it for those pages.
  std::uint32_t Stage(void* buffer, std::uint64_t first, std::uint64_t n);
  void Commit(std::uint64_t first, std::uint64_t n, std::uint32_t generation);
  // Checks every byte of the buffer at `buffer`; the mismatch offset is from the buffer start.
  std::optional<Mismatch> Verify(const void* buffer) const;
  // Checks pages [first, first + n) (clamped to the buffer) at `pages`, which points at page
  // `first`; the mismatch offset is from the buffer start.
  std::optional<Mismatch> VerifyRange(const void* pages, std::uint64_t first,
                                      std::uint64_t n) const;
  // The content was lost by contract (purged): the buffer now holds zeros, as re-created.
  void ResetToZero();

 private:
  ContentKey Key(std::uint32_t generation) const {
    return ContentKey{seed_, buffer_id_, generation, compressible_};
  }

  std::uint64_t seed_;
  std::uint64_t buffer_id_;
  bool compressible_;
  std::uint32_t next_generation_ = 1;
  std::vector<std::uint32_t> page_generation_;
};

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_CONTENT_H_
