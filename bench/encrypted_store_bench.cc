// Copyright (c) uttm developers.
//
// encrypted_store_bench: encryption at rest (encrypted_store.h) against raw AES-256-GCM on the
// same bytes, in the same iteration:
//   BM_EncryptedStore   16 MiB of 4 KiB pages backed up into an encrypted memfd store and
//       copied back, against a raw loop sealing each page with OpenSSL's AES-256-GCM (key set
//       once, a new nonce per page, the tag taken) and opening it again, and against the same
//       memfd store without encryption. Counters: backup_ratio and restore_ratio (raw AES-GCM
//       time / encrypted store time; the goal >= 0.8), and backup_overhead_ratio and
//       restore_overhead_ratio ((raw AES-GCM + plain store) time / encrypted store time: what
//       the wrapper costs beyond the cipher and the store it wraps; 1 is free).
// Run: build/release/bench/encrypted_store_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "testing/content.h"
#include "testing/page_buffer.h"
#include "timing.h"
#include "uttm/backup_store_factory.h"
#include "uttm/encrypted_store.h"
#include "uttm/stats.h"

namespace uttm {
namespace {

using bench::Clock;
using bench::Since;
constexpr std::size_t kPages = 4096;

void BM_EncryptedStore(benchmark::State& state) {
  testing::PageBuffer pages(kPages), sealed(kPages), out(kPages);
  testing::FillContent({1, 1}, 0, std::span(pages.data(), kPages * kPageSize));
  Stats stats;
  Result<std::unique_ptr<BackupStore>> plain =
      CreateBackupStore("memfd,allow_without_swap", &stats);
  Result<std::unique_ptr<BackupStore>> inner =
      CreateBackupStore("memfd,allow_without_swap", &stats);
  if (!plain.ok() || !inner.ok()) {
    state.SkipWithError("cannot make a memfd store");
    return;
  }
  Result<std::unique_ptr<BackupStore>> enc = NewEncryptedStore(std::move(inner).value(), {&stats});
  if (!enc.ok()) {
    state.SkipWithError(enc.status().ToString().c_str());
    return;
  }
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ectx(EVP_CIPHER_CTX_new(),
                                                                       EVP_CIPHER_CTX_free);
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> dctx(EVP_CIPHER_CTX_new(),
                                                                       EVP_CIPHER_CTX_free);
  unsigned char key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  unsigned char iv[12] = {};
  EVP_EncryptInit_ex(ectx.get(), EVP_aes_256_gcm(), nullptr, key, iv);
  EVP_DecryptInit_ex(dctx.get(), EVP_aes_256_gcm(), nullptr, key, iv);
  std::vector<std::array<unsigned char, 16>> tags(kPages);
  std::vector<BackupHandle> handles(kPages);
  double raw_seal = 0, raw_open = 0, plain_b = 0, plain_r = 0, enc_b = 0, enc_r = 0;
  std::uint64_t nonce = 1;
  for (auto _ : state) {
    auto t0 = Clock::now();
    const std::uint64_t first = nonce;
    for (std::size_t i = 0; i < kPages; ++i, ++nonce) {
      std::memcpy(iv + 4, &nonce, 8);
      int len = 0, fin = 0;
      EVP_EncryptInit_ex(ectx.get(), nullptr, nullptr, nullptr, iv);
      EVP_EncryptUpdate(ectx.get(), reinterpret_cast<unsigned char*>(sealed.page(i)), &len,
                        reinterpret_cast<const unsigned char*>(pages.page(i)),
                        static_cast<int>(kPageSize));
      EVP_EncryptFinal_ex(ectx.get(), nullptr, &fin);
      EVP_CIPHER_CTX_ctrl(ectx.get(), EVP_CTRL_GCM_GET_TAG, 16, tags[i].data());
    }
    raw_seal += Since(t0);
    t0 = Clock::now();
    bool ok = true;
    for (std::size_t i = 0; i < kPages; ++i) {
      const std::uint64_t n = first + i;
      std::memcpy(iv + 4, &n, 8);
      int len = 0, fin = 0;
      auto* p = reinterpret_cast<unsigned char*>(sealed.page(i));
      EVP_DecryptInit_ex(dctx.get(), nullptr, nullptr, nullptr, iv);
      EVP_DecryptUpdate(dctx.get(), p, &len, p, static_cast<int>(kPageSize));
      EVP_CIPHER_CTX_ctrl(dctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tags[i].data());
      ok = ok && EVP_DecryptFinal_ex(dctx.get(), p + len, &fin) == 1;
    }
    raw_open += Since(t0);
    if (!ok || std::memcmp(sealed.data(), pages.data(), kPages * kPageSize) != 0) {
      state.SkipWithError("the raw AES-GCM round trip failed");
      return;
    }
    for (BackupStore* store : {plain->get(), enc->get()}) {
      t0 = Clock::now();
      Result<std::size_t> r = store->BackupPages(pages.data(), kPages, {}, handles.data());
      (store == plain->get() ? plain_b : enc_b) += Since(t0);
      t0 = Clock::now();
      const Status s =
          r.ok() ? store->CopyPages(handles.data(), kPages, out.data(), {}) : r.status();
      (store == plain->get() ? plain_r : enc_r) += Since(t0);
      if (!r.ok() || *r != kPages || !s.ok() ||
          std::memcmp(out.data(), pages.data(), kPages * kPageSize) != 0) {
        state.SkipWithError("a store round trip failed");
        return;
      }
      store->Drop(handles.data(), kPages);
    }
  }
  state.counters["backup_ratio"] = raw_seal / enc_b;
  state.counters["restore_ratio"] = raw_open / enc_r;
  state.counters["backup_overhead_ratio"] = (raw_seal + plain_b) / enc_b;
  state.counters["restore_overhead_ratio"] = (raw_open + plain_r) / enc_r;
  const double bytes = static_cast<double>(kPages * kPageSize * state.iterations());
  state.counters["aes_gcm_GBps"] = bytes / raw_seal / 1e9;
  state.counters["backup_GBps"] = bytes / enc_b / 1e9;
  state.counters["restore_GBps"] = bytes / enc_r / 1e9;
}
BENCHMARK(BM_EncryptedStore)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace uttm

BENCHMARK_MAIN();
