// Copyright (c) uttm developers.
//
// encrypted_store.cc: see encrypted_store.h.
#include "uttm/encrypted_store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "uttm/backup_store_factory.h"
#include "uttm/mutex.h"
#include "uttm/units.h"

namespace uttm {
namespace {

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kTagBytes = 16;
// Pages sealed into the per-thread scratch before one call of the inner store.
constexpr std::size_t kBatch = 256;
// Tag table chunks, indexed by inner handle value.
constexpr std::size_t kChunkEntries = 4096;

// What opening a page needs: its nonce counter and tag. counter 0: no page.
struct Seal {
  std::uint64_t counter = 0;
  std::array<unsigned char, kTagBytes> tag{};
};

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// Per-thread cipher contexts, keyed to one store at a time (by its serial number, never reused),
// so that a page sets only its nonce.
// A cipher context and the store whose key it holds (0: none yet).
struct KeyedCtx {
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx;
  std::uint64_t store = 0;
};

struct ThreadCipher {
  KeyedCtx seal, open;
  alignas(64) std::array<std::byte, kBatch * kPageSize> scratch;
};
ThreadCipher& Cipher() {
  thread_local std::unique_ptr<ThreadCipher> c(new ThreadCipher);
  return *c;
}

std::atomic<std::uint64_t> next_serial{1};

// The key's page: locked, out of core dumps, cleared before it is unmapped.
class KeyPage {
 public:
  static std::unique_ptr<KeyPage> Make() {
    void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    (void)mlock(p, kPageSize);  // best effort: refused without the privilege, still cleared
    (void)madvise(p, kPageSize, MADV_DONTDUMP);
    auto* key = static_cast<unsigned char*>(p);
    std::size_t got = 0;
    while (got < kKeyBytes) {
      const ssize_t n = getrandom(key + got, kKeyBytes - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        munmap(p, kPageSize);
        return nullptr;
      }
      got += static_cast<std::size_t>(n);
    }
    return std::unique_ptr<KeyPage>(new KeyPage(key));
  }
  ~KeyPage() {
    OPENSSL_cleanse(key_, kKeyBytes);
    munlock(key_, kPageSize);
    munmap(key_, kPageSize);
  }
  const unsigned char* key() const { return key_; }

 private:
  explicit KeyPage(unsigned char* key) : key_(key) {}
  unsigned char* const key_;
};

class EncryptedStore final : public BackupStore {
 public:
  EncryptedStore(std::unique_ptr<BackupStore> inner, std::unique_ptr<KeyPage> key,
                 std::uint32_t prefix, Stats* stats)
      : inner_(std::move(inner)),
        key_(std::move(key)),
        prefix_(prefix),
        serial_(next_serial.fetch_add(1)),
        stats_(stats) {}

  ~EncryptedStore() override = default;

  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags& flags,
                                  BackupHandle* handles) override {
    if (src == nullptr || count == 0 || handles == nullptr) {
      return Status(Errc::kInvalid, "EncryptedStore::BackupPages: no pages");
    }
    return Backup([src](std::size_t i) { return src + i * kPageSize; }, count, flags, handles);
  }

  Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                     const BackupFlags& flags, BackupHandle* handles) override {
    if (pages == nullptr || count == 0 || handles == nullptr) {
      return Status(Errc::kInvalid, "EncryptedStore::BackupPageList: no pages");
    }
    return Backup([pages](std::size_t i) { return pages[i]; }, count, flags, handles);
  }

  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    std::size_t n = 0;
    Status s = inner_->CopyPages(handles, count, dst, ctx, &n);
    return Open(
        handles, n, [dst](std::size_t i) { return dst + i * kPageSize; }, s, copied);
  }

  Status CopyPageList(const BackupHandle* handles, std::size_t count, std::byte* const* dst,
                      const OperationContext& ctx, std::size_t* copied) override {
    std::size_t n = 0;
    Status s = inner_->CopyPageList(handles, count, dst, ctx, &n);
    return Open(
        handles, n, [dst](std::size_t i) { return dst[i]; }, s, copied);
  }

  void Drop(const BackupHandle* handles, std::size_t count) override {
    {
      MutexLock lock(&mu_);
      for (std::size_t i = 0; i < count; ++i) {
        if (Seal* s = Find(handles[i])) *s = Seal{};
      }
    }
    inner_->Drop(handles, count);
  }

  std::uint64_t BytesAvailable() const override { return inner_->BytesAvailable(); }
  std::uint64_t BytesUsed() const override { return inner_->BytesUsed(); }
  Status Flush() override { return inner_->Flush(); }
  std::string Describe() const override { return inner_->Describe() + ", encrypted (AES-256-GCM)"; }
  bool HoldsMemory() const override { return inner_->HoldsMemory(); }

 private:
  // The 12-byte nonce of page `counter`.
  void Nonce(std::uint64_t counter, unsigned char* iv) const {
    std::memcpy(iv, &prefix_, 4);
    std::memcpy(iv + 4, &counter, 8);
  }

  // `k`'s context set up to seal (enc 1) or open (enc 0) with this store's key and the nonce of
  // page `counter`: the key only when the context last served another store. Null on a cipher
  // error.
  EVP_CIPHER_CTX* Ready(KeyedCtx& k, int enc, std::uint64_t counter) {
    if (!k.ctx) k.ctx.reset(EVP_CIPHER_CTX_new());
    if (!k.ctx) return nullptr;
    unsigned char iv[12];
    Nonce(counter, iv);
    const bool rekey = k.store != serial_;
    if (EVP_CipherInit_ex(k.ctx.get(), rekey ? EVP_aes_256_gcm() : nullptr, nullptr,
                          rekey ? key_->key() : nullptr, iv, enc) != 1) {
      k.store = 0;
      return nullptr;
    }
    k.store = serial_;
    return k.ctx.get();
  }

  // Seals a page of `in` into `out` with nonce `counter`; false on a cipher error.
  bool SealPage(ThreadCipher& c, std::uint64_t counter, const std::byte* in, std::byte* out,
                unsigned char* tag) {
    EVP_CIPHER_CTX* ctx = Ready(c.seal, 1, counter);
    auto* o = reinterpret_cast<unsigned char*>(out);
    int len = 0, fin = 0;
    return ctx != nullptr &&
           EVP_EncryptUpdate(ctx, o, &len, reinterpret_cast<const unsigned char*>(in),
                             static_cast<int>(kPageSize)) == 1 &&
           EVP_EncryptFinal_ex(ctx, o + len, &fin) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) == 1;
  }

  // Opens a page in place; false when its tag does not match (or a cipher error).
  bool OpenPage(ThreadCipher& c, const Seal& seal, std::byte* page) {
    EVP_CIPHER_CTX* ctx = Ready(c.open, 0, seal.counter);
    auto* p = reinterpret_cast<unsigned char*>(page);
    std::array<unsigned char, kTagBytes> tag = seal.tag;
    int len = 0, fin = 0;
    return ctx != nullptr && EVP_DecryptUpdate(ctx, p, &len, p, static_cast<int>(kPageSize)) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
           EVP_DecryptFinal_ex(ctx, p + len, &fin) == 1;
  }

  template <typename PageAt>
  Result<std::size_t> Backup(PageAt page_at, std::size_t count, const BackupFlags& flags,
                             BackupHandle* handles) {
    ThreadCipher& c = Cipher();
    std::size_t done = 0;
    while (done < count) {
      const std::size_t n = std::min(kBatch, count - done);
      std::array<Seal, kBatch> seals;
      for (std::size_t k = 0; k < n; ++k) {
        seals[k].counter = counter_.fetch_add(1, std::memory_order_relaxed);
        if (!SealPage(c, seals[k].counter, page_at(done + k), c.scratch.data() + k * kPageSize,
                      seals[k].tag.data())) {
          if (done > 0) return done;
          return Status(Errc::kIo, "encrypted store: AES-256-GCM failed to seal a page");
        }
      }
      Result<std::size_t> stored = inner_->BackupPages(c.scratch.data(), n, flags, handles + done);
      if (!stored.ok()) {
        if (done > 0) return done;
        return stored.status();
      }
      Status recorded = Record(handles + done, seals.data(), *stored);
      if (!recorded.ok()) {
        inner_->Drop(handles + done, *stored);
        if (done > 0) return done;
        return recorded;
      }
      done += *stored;
      if (*stored < n) break;
    }
    return done;
  }

  // Remembers the seals of `n` stored pages under their inner handles.
  Status Record(const BackupHandle* handles, const Seal* seals, std::size_t n) {
    MutexLock lock(&mu_);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t v = handles[i].value();
      const std::size_t chunk = v / kChunkEntries;
      if (chunk >= kMaxChunks) {
        return Status(Errc::kNoMemory, "encrypted store: inner handle " + std::to_string(v) +
                                           " is beyond its tag table");
      }
      if (chunk >= chunks_.size()) chunks_.resize(chunk + 1);
      if (!chunks_[chunk]) {
        chunks_[chunk].reset(new (std::nothrow) Seal[kChunkEntries]);
        if (!chunks_[chunk]) return Status(Errc::kNoMemory, "encrypted store: no memory for tags");
      }
      chunks_[chunk][v % kChunkEntries] = seals[i];
    }
    return Status();
  }

  Seal* Find(BackupHandle h) UTTM_REQUIRES(mu_) {
    const std::uint64_t v = h.value();
    if (!h.valid() || v / kChunkEntries >= chunks_.size() || !chunks_[v / kChunkEntries]) {
      return nullptr;
    }
    Seal* s = &chunks_[v / kChunkEntries][v % kChunkEntries];
    return s->counter == 0 ? nullptr : s;
  }

  // Opens the first `n` pages the inner store copied; `inner_status` is its result.
  template <typename DstAt>
  Status Open(const BackupHandle* handles, std::size_t n, DstAt dst_at, Status inner_status,
              std::size_t* copied) {
    ThreadCipher& c = Cipher();
    for (std::size_t i = 0; i < n; ++i) {
      Seal seal;
      {
        MutexLock lock(&mu_);
        const Seal* s = Find(handles[i]);
        if (s != nullptr) seal = *s;
      }
      std::byte* page = dst_at(i);
      if (seal.counter == 0 || !OpenPage(c, seal, page)) {
        std::memset(page, 0, kPageSize);  // never hand out unauthenticated bytes
        if (copied != nullptr) *copied = i;
        stats_->Add(Stat::kChecksumFailures);
        return Status(Errc::kIo, "encrypted store: handle " + std::to_string(handles[i].value()) +
                                     (seal.counter == 0 ? " has no tag (never sealed here)"
                                                        : ": authentication failed (the page was "
                                                          "changed or replaced)"));
      }
    }
    if (copied != nullptr) *copied = n;
    return inner_status;
  }

  static constexpr std::size_t kMaxChunks = std::size_t{1} << 24;  // 2^36 handles

  const std::unique_ptr<BackupStore> inner_;
  const std::unique_ptr<KeyPage> key_;
  const std::uint32_t prefix_;
  const std::uint64_t serial_;
  Stats* const stats_;
  std::atomic<std::uint64_t> counter_{1};
  Mutex mu_;
  std::vector<std::unique_ptr<Seal[]>> chunks_ UTTM_GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<BackupStore>> NewEncryptedStore(std::unique_ptr<BackupStore> inner,
                                                       const EncryptedStoreOptions& options) {
  if (inner == nullptr) return Status(Errc::kInvalid, "encrypted store: no inner store");
  std::unique_ptr<KeyPage> key = KeyPage::Make();
  std::uint32_t prefix = 0;
  if (key == nullptr || getrandom(&prefix, sizeof prefix, 0) != sizeof prefix) {
    return Status(Errc::kNoMemory, "encrypted store: cannot make a key (getrandom or mmap failed)");
  }
  return std::unique_ptr<BackupStore>(
      new EncryptedStore(std::move(inner), std::move(key), prefix,
                         options.stats != nullptr ? options.stats : &Stats::Default()));
}

void RegisterEncryptedStoreOption() {
  (void)RegisterBackupStoreOption(
      "encrypt",
      [](std::unique_ptr<BackupStore> inner,
         const BackupStoreEnv& env) -> Result<std::unique_ptr<BackupStore>> {
        return NewEncryptedStore(std::move(inner), EncryptedStoreOptions{.stats = env.stats});
      });
}

}  // namespace uttm
