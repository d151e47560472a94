// Copyright (c) uttm developers.
//
// The remote store against real redis-server processes of the tests' own (the contract over it is
// in store_contract_test.cc): keys and their lifetime on the server, two stores on one server,
// servers killed in the middle of a backup, paused past the timeout, restarted empty before a
// restore, at their maxmemory, with a password, two servers with one removed; buffer objects
// backed up to it by the shrinker; and specs. Contents depend on (test, run, page) seeds.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "testing/bo_content.h"
#include "testing/page_buffer.h"
#include "testing/redis_server.h"
#include "testing/shrinker_device.h"
#include "uttm/backup_store_factory.h"
#include "uttm/buffer_object.h"
#include "uttm/compressed_store.h"
#include "uttm/redis_store.h"
#include "uttm/stats.h"
#include "uttm/tiered_store.h"

namespace uttm {
namespace {

using Pages = testing::PatternPages;
using testing::RedisServer;
using testing::SamePage;

#define REQUIRE_SERVER(server)                                                                 \
  do {                                                                                         \
    if (!(server).ok()) GTEST_SKIP() << "no Redis server to test against: " << (server).why(); \
  } while (0)

// The number after ':' in a RESP integer answer (":12" -> 12), or -1.
long long Integer(const std::string& answer) {
  return answer.size() > 1 && answer[0] == ':' ? std::stoll(answer.substr(1)) : -1;
}

// Options with the defaults, changed by `set` (designated initializers would have to name all).
template <typename F>
RedisStoreOptions With(F set) {
  RedisStoreOptions o;
  set(o);
  return o;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<BackupStore>> Open(const RedisServer& server, RedisStoreOptions o = {}) {
    if (o.servers.empty()) o.servers = {server.unix_address()};
    o.stats = &stats_;
    return NewRedisStore(o);
  }

  // Backs up all of `pages` in one call; expects it whole.
  std::vector<BackupHandle> BackupAll(BackupStore& store, Pages& pages) {
    std::vector<BackupHandle> h(pages.count());
    Result<std::size_t> r = store.BackupPages(pages.data(), pages.count(), {}, h.data());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      EXPECT_EQ(*r, pages.count());
    }
    return h;
  }

  void ExpectRestores(BackupStore& store, const std::vector<BackupHandle>& h, Pages& want) {
    Pages out(h.size());
    Status s = store.CopyPages(h.data(), h.size(), out.data(), {});
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (std::size_t i = 0; i < h.size(); ++i) {
      ASSERT_TRUE(SamePage(out.page(i), want.page(i))) << "page " << i;
    }
  }

  Stats stats_;
};

TEST_F(RedisStoreTest, RunsComeBackOverAUnixSocketAndTcpAndNameNoHost) {
  RedisServer server;
  REQUIRE_SERVER(server);
  for (const std::string& address : {server.unix_address(), server.tcp_address()}) {
    SCOPED_TRACE(address);
    auto store = Open(server, With([&](RedisStoreOptions& o) { o.servers = {address}; }));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // 5000 pages: two values (16 MiB is the most one holds), one pipeline.
    Pages pages(5000, 1);
    std::vector<BackupHandle> h = BackupAll(**store, pages);
    ExpectRestores(**store, h, pages);
    // A page in the middle of a run, alone, and runs out of order.
    Pages one(1);
    ASSERT_TRUE((*store)->CopyPage(h[4321], one.data(), {}).ok());
    EXPECT_TRUE(SamePage(one.data(), pages.page(4321)));
    const std::string d = (*store)->Describe();
    EXPECT_EQ(d.find("127.0.0.1"), std::string::npos) << d;
    EXPECT_EQ(d.find("/tmp"), std::string::npos) << d;
    (*store)->Drop(h.data(), h.size());
    EXPECT_EQ((*store)->BytesUsed(), 0u);
  }
  EXPECT_GT(stats_.Get(Stat::kRemoteRequests), 0u);
}

TEST_F(RedisStoreTest, KeysExpireAndAreDeletedOnDropAndAtClose) {
  RedisServer server;
  REQUIRE_SERVER(server);
  Pages pages(8, 2);
  {
    auto store = Open(server, With([&](RedisStoreOptions& o) { o.key_ttl_seconds = 600; }));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<BackupHandle> a = BackupAll(**store, pages);
    std::vector<BackupHandle> b = BackupAll(**store, pages);
    EXPECT_EQ(Integer(server.Command("DBSIZE")), 2);
    // Dropping all of a run's pages but one keeps its key; the last one deletes it.
    (*store)->Drop(a.data(), 7);
    ASSERT_TRUE((*store)->Flush().ok());
    EXPECT_EQ(Integer(server.Command("DBSIZE")), 2);
    (*store)->Drop(a.data() + 7, 1);
    ASSERT_TRUE((*store)->Flush().ok());
    EXPECT_EQ(Integer(server.Command("DBSIZE")), 1);
    ExpectRestores(**store, b, pages);
  }
  EXPECT_EQ(Integer(server.Command("DBSIZE")), 0);  // closed: b's key went with it
  {
    auto store = Open(server, With([&](RedisStoreOptions& o) {
                        o.key_ttl_seconds = 600;
                        o.delete_on_drop = false;
                      }));
    ASSERT_TRUE(store.ok());
    std::vector<BackupHandle> c = BackupAll(**store, pages);
    (*store)->Drop(c.data(), c.size());
  }
  ASSERT_EQ(Integer(server.Command("DBSIZE")), 1);  // keep_keys: left to expire
  // The key left is ours ("uttm:" first) and expires within the 600 s asked for (-5: not ours).
  const std::string ttl = server.Command(
      "EVAL \"local k = redis.call('RANDOMKEY') if string.sub(k, 1, 5) == 'uttm:' then return "
      "redis.call('TTL', k) end return -5\" 0");
  EXPECT_GT(Integer(ttl), 0) << ttl;
  EXPECT_LE(Integer(ttl), 600) << ttl;
}

// A call is cut into values of max_value_bytes, all sent in one pipeline; a copy across them.
TEST_F(RedisStoreTest, ACallIsCutIntoValuesOfTheSizeAsked) {
  RedisServer server;
  REQUIRE_SERVER(server);
  RegisterRedisStoreKind();
  auto store = CreateBackupStore("redis:" + server.unix_address() + ",value=64K", &stats_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Pages pages(100, 13);
  std::vector<BackupHandle> h = BackupAll(**store, pages);
  EXPECT_EQ(Integer(server.Command("DBSIZE")), 7);  // 6 of 16 pages and one of 4
  ExpectRestores(**store, h, pages);
  // Pages 10..40 in reverse: segments of one page, from three values.
  std::vector<BackupHandle> back(h.rend() - 40, h.rend() - 10);
  Pages out(back.size());
  ASSERT_TRUE((*store)->CopyPages(back.data(), back.size(), out.data(), {}).ok());
  for (std::size_t i = 0; i < back.size(); ++i) {
    ASSERT_TRUE(SamePage(out.page(i), pages.page(39 - i))) << i;
  }
}

TEST_F(RedisStoreTest, TwoStoresOnOneServerNeverSeeEachOthersData) {
  RedisServer server;
  REQUIRE_SERVER(server);
  auto a = Open(server);
  auto b = Open(server);
  ASSERT_TRUE(a.ok() && b.ok());
  Pages pa(50, 4);
  Pages pb(50, 5);
  std::vector<BackupHandle> ha = BackupAll(**a, pa);
  std::vector<BackupHandle> hb = BackupAll(**b, pb);
  ExpectRestores(**a, ha, pa);
  ExpectRestores(**b, hb, pb);
  (*a)->Drop(ha.data(), ha.size());
  a->reset();
  ExpectRestores(**b, hb, pb);
}

// The server dies while a 64 MiB backup is being written: the call fails with kIo and stores
// nothing (the caller keeps every page); the next call reconnects when the server is back.
TEST_F(RedisStoreTest, AServerKilledMidBackupLosesNothingAndTheStoreComesBack) {
  RedisServer server;
  REQUIRE_SERVER(server);
  auto store = Open(server, With([&](RedisStoreOptions& o) {
                      o.connect_timeout_ms = 500;
                      o.reconnect_interval_ms = 1;
                    }));
  ASSERT_TRUE(store.ok());
  Pages before(16, 6);
  std::vector<BackupHandle> kept = BackupAll(**store, before);

  Pages big(16384, 7);
  std::vector<BackupHandle> h(big.count());
  server.Pause();  // the write blocks once the socket buffers are full
  std::atomic<bool> done{false};
  Result<std::size_t> r = Status(Errc::kBusy, "not run");
  std::thread backup([&] {
    r = (*store)->BackupPages(big.data(), big.count(), {}, h.data());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(done.load());
  server.Kill();
  backup.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kIo) << r.status().ToString();
  EXPECT_NE(r.status().message().find("server 0"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(stats_.Get(Stat::kStoreBytesWritten), 16 * kPageSize);  // only `before`'s pages
  // While it is down: clean errors, nothing stored.
  EXPECT_EQ((*store)->BackupPages(big.data(), 4, {}, h.data()).code(), Errc::kIo);
  // Back (empty): new backups work again, over a new connection.
  ASSERT_TRUE(server.Restart());
  std::vector<BackupHandle> again = BackupAll(**store, big);
  ExpectRestores(**store, again, big);
  EXPECT_GE(stats_.Get(Stat::kRemoteReconnects), 1u);
  // What was stored before the restart is reported lost, never returned as zeros.
  Pages out(16);
  Status s = (*store)->CopyPages(kept.data(), kept.size(), out.data(), {});
  EXPECT_EQ(s.code(), Errc::kIo);
  EXPECT_NE(s.message().find("missing on the server"), std::string::npos) << s.ToString();
}

TEST_F(RedisStoreTest, AServerThatStopsAnsweringIsATimeoutNotAHang) {
  RedisServer server;
  REQUIRE_SERVER(server);
  auto store = Open(server, With([&](RedisStoreOptions& o) {
                      o.io_timeout_ms = 300;
                      o.reconnect_interval_ms = 1;
                    }));
  ASSERT_TRUE(store.ok());
  Pages pages(64, 8);
  std::vector<BackupHandle> h = BackupAll(**store, pages);
  server.Pause();
  const auto start = std::chrono::steady_clock::now();
  Pages out(64);
  Status s = (*store)->CopyPages(h.data(), h.size(), out.data(), {});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), Errc::kIo);
  EXPECT_NE(s.message().find("no answer within 300 ms"), std::string::npos) << s.ToString();
  EXPECT_LT(took, std::chrono::seconds(5));
  server.Resume();
  ExpectRestores(**store, h, pages);  // the data was never in doubt
}

// The server restarted without persistence: each run it held is reported lost (remote.lost_pages
// counts exactly its pages); a later backup works.
TEST_F(RedisStoreTest, ARestartWithoutPersistenceReportsEachLostRun) {
  RedisServer server;
  REQUIRE_SERVER(server);
  auto store = Open(server, With([&](RedisStoreOptions& o) { o.reconnect_interval_ms = 1; }));
  ASSERT_TRUE(store.ok());
  Pages a(10, 9);
  Pages b(30, 10);
  std::vector<BackupHandle> ha = BackupAll(**store, a);
  std::vector<BackupHandle> hb = BackupAll(**store, b);
  ASSERT_TRUE(server.Restart());
  Pages out(30);
  for (auto* h : {&ha, &hb}) {
    std::size_t copied = 99;
    Status s = (*store)->CopyPages(h->data(), h->size(), out.data(), {}, &copied);
    EXPECT_EQ(s.code(), Errc::kIo);
    EXPECT_EQ(copied, 0u);
    EXPECT_NE(s.message().find(std::to_string(h->size()) + " pages lost"), std::string::npos)
        << s.ToString();
  }
  EXPECT_EQ(stats_.Get(Stat::kRemoteLostPages), 40u);
  Pages c(5, 11);
  std::vector<BackupHandle> hc = BackupAll(**store, c);
  ExpectRestores(**store, hc, c);
}

// At the server's maxmemory (noeviction) a SET is refused with OOM: the store answers kNoSpace,
// as a full disk, and everything it did store comes back.
TEST_F(RedisStoreTest, TheServersMaxmemoryIsAFullStore) {
  RedisServer server({"--maxmemory", "8mb", "--maxmemory-policy", "noeviction"});
  REQUIRE_SERVER(server);
  auto store = Open(server);
  ASSERT_TRUE(store.ok());
  EXPECT_LE((*store)->BytesAvailable(), 8u << 20);
  std::vector<std::unique_ptr<Pages>> runs;
  std::vector<std::vector<BackupHandle>> handles;
  Status last;
  for (int i = 0; i < 40 && last.ok(); ++i) {
    auto pages = std::make_unique<Pages>(64, 100 + static_cast<unsigned>(i));  // 256 KiB
    std::vector<BackupHandle> h(64);
    Result<std::size_t> r = (*store)->BackupPages(pages->data(), 64, {}, h.data());
    if (!r.ok()) {
      last = r.status();
      break;
    }
    ASSERT_EQ(*r, 64u);
    runs.push_back(std::move(pages));
    handles.push_back(std::move(h));
  }
  EXPECT_EQ(last.code(), Errc::kNoSpace) << last.ToString();
  EXPECT_NE(last.message().find("OOM"), std::string::npos) << last.ToString();
  ASSERT_GT(runs.size(), 5u);
  for (std::size_t i = 0; i < runs.size(); ++i) ExpectRestores(**store, handles[i], *runs[i]);
  EXPECT_EQ(stats_.Get(Stat::kStoreWriteErrors), 0u);  // full is an answer, not a failure
}

// A server evicting under its own policy (allkeys-lru): the evicted runs are reported lost.
TEST_F(RedisStoreTest, RunsTheServerEvictedAreReportedLost) {
  RedisServer server({"--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"});
  REQUIRE_SERVER(server);
  auto store = Open(server);
  ASSERT_TRUE(store.ok());
  std::vector<std::unique_ptr<Pages>> runs;
  std::vector<std::vector<BackupHandle>> handles;
  for (int i = 0; i < 40; ++i) {  // 10 MiB into 4
    runs.push_back(std::make_unique<Pages>(64, 200 + static_cast<unsigned>(i)));
    handles.push_back(BackupAll(**store, *runs.back()));
  }
  int lost = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    Pages out(64);
    Status s = (*store)->CopyPages(handles[i].data(), 64, out.data(), {});
    if (s.ok()) {
      for (std::size_t p = 0; p < 64; ++p) ASSERT_TRUE(SamePage(out.page(p), runs[i]->page(p)));
    } else {
      EXPECT_NE(s.message().find("missing on the server"), std::string::npos) << s.ToString();
      ++lost;
    }
  }
  EXPECT_GT(lost, 0);
  EXPECT_EQ(stats_.Get(Stat::kRemoteLostPages), static_cast<std::uint64_t>(lost) * 64);
}

TEST_F(RedisStoreTest, PasswordsAreCheckedAtOpenAndNeverShown) {
  RedisServer server({"--requirepass", "s3cret-pw"});
  REQUIRE_SERVER(server);
  auto none = Open(server);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Errc::kInvalid);
  EXPECT_NE(none.status().message().find("requires a password"), std::string::npos)
      << none.status().ToString();
  auto wrong = Open(server, With([&](RedisStoreOptions& o) { o.password = "guess"; }));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Errc::kInvalid);
  EXPECT_NE(wrong.status().message().find("wrong password"), std::string::npos);
  EXPECT_EQ(wrong.status().message().find("guess"), std::string::npos);
  // From a file, as the spec takes it.
  const std::string file = "/tmp/uttm-redis-pw-" + std::to_string(::getpid());
  std::ofstream(file) << "s3cret-pw\n";
  RegisterRedisStoreKind();
  auto store = CreateBackupStore(
      "redis:" + server.unix_address() + ",password_file=" + file + ",db=3", &stats_);
  std::remove(file.c_str());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Pages pages(20, 12);
  std::vector<BackupHandle> h = BackupAll(**store, pages);
  ExpectRestores(**store, h, pages);
  EXPECT_EQ((*store)->Describe().find("s3cret"), std::string::npos);
  // A password on the spec itself is refused, without repeating it.
  auto inline_pw = CreateBackupStore("redis:" + server.unix_address() + ",password=s3cret-pw");
  ASSERT_FALSE(inline_pw.ok());
  EXPECT_EQ(inline_pw.status().message().find("s3cret"), std::string::npos);
  // A password for a server that has none.
  RedisServer open_server;
  REQUIRE_SERVER(open_server);
  auto extra = Open(open_server, With([&](RedisStoreOptions& o) { o.password = "x"; }));
  EXPECT_EQ(extra.status().code(), Errc::kInvalid);
}

// Runs spread over two servers by their keys' hash; one server removed: only its runs are lost.
TEST_F(RedisStoreTest, TwoServersOneRemovedLosesOnlyItsRuns) {
  RedisServer s0;
  RedisServer s1;
  REQUIRE_SERVER(s0);
  REQUIRE_SERVER(s1);
  auto store = Open(s0, With([&](RedisStoreOptions& o) {
                      o.servers = {s0.unix_address(), s1.tcp_address()};
                      o.connect_timeout_ms = 300;
                    }));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_NE((*store)->Describe().find("2 servers"), std::string::npos);
  constexpr int kRuns = 40;
  std::vector<std::unique_ptr<Pages>> runs;
  std::vector<std::vector<BackupHandle>> handles;
  for (int i = 0; i < kRuns; ++i) {
    runs.push_back(std::make_unique<Pages>(8, 300 + static_cast<unsigned>(i)));
    handles.push_back(BackupAll(**store, *runs.back()));
  }
  const long long on1 = Integer(s1.Command("DBSIZE"));
  EXPECT_EQ(Integer(s0.Command("DBSIZE")) + on1, kRuns);
  EXPECT_GT(on1, 5);
  EXPECT_LT(on1, kRuns - 5);
  s1.Kill();
  int failed = 0;
  for (int i = 0; i < kRuns; ++i) {
    Pages out(8);
    Status s = (*store)->CopyPages(handles[i].data(), 8, out.data(), {});
    if (!s.ok()) {
      EXPECT_EQ(s.code(), Errc::kIo);
      EXPECT_NE(s.message().find("server 1"), std::string::npos) << s.ToString();
      ++failed;
      continue;
    }
    for (std::size_t p = 0; p < 8; ++p) ASSERT_TRUE(SamePage(out.page(p), runs[i]->page(p)));
  }
  EXPECT_EQ(failed, on1);
}

// A tier over the remote store whose server died: the upper tier keeps what it cannot write back
// (tier.writeback_errors), what it reports stored comes back, and it fails cleanly when full.
TEST_F(RedisStoreTest, ATierAboveADeadServerKeepsItsEntriesAndFailsCleanly) {
  RedisServer server;
  REQUIRE_SERVER(server);
  RegisterCompressedStoreKinds();
  RegisterTieredStoreKind();
  RegisterRedisStoreKind();
  auto store = CreateBackupStore(
      "tier:lz4,cap=1M+redis:" + server.unix_address() + ",connect_timeout=300", &stats_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  server.Kill();
  std::vector<std::unique_ptr<Pages>> runs;
  std::vector<std::vector<BackupHandle>> handles;
  Status last;
  for (int i = 0; i < 64 && last.ok(); ++i) {
    auto pages = std::make_unique<Pages>(16, 400 + static_cast<unsigned>(i));  // random: raw
    std::vector<BackupHandle> h(16);
    std::size_t done = 0;
    while (done < 16) {
      Result<std::size_t> r = (*store)->BackupPages(pages->page(done), 16 - done, {}, &h[done]);
      if (!r.ok()) {
        last = r.status();
        break;
      }
      done += *r;
    }
    h.resize(done);
    runs.push_back(std::move(pages));
    handles.push_back(std::move(h));
  }
  EXPECT_EQ(last.code(), Errc::kIo) << last.ToString();
  EXPECT_GT(stats_.Get(Stat::kTierWritebackErrors), 0u);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (handles[i].empty()) continue;
    Pages out(handles[i].size());
    ASSERT_TRUE((*store)->CopyPages(handles[i].data(), handles[i].size(), out.data(), {}).ok());
    for (std::size_t p = 0; p < handles[i].size(); ++p) {
      ASSERT_TRUE(SamePage(out.page(p), runs[i]->page(p)));
    }
  }
}

// Buffer objects backed up to the remote store by the shrinker; the server restarts empty: each
// object's restore fails with what was lost, its state stays backed up (never zeros), and
// objects backed up after the restart come back exactly.
TEST_F(RedisStoreTest, ObjectsBackedUpByTheShrinkerReportTheirLossEach) {
  RedisServer server;
  REQUIRE_SERVER(server);
  testing::ShrinkerDevice rig;
  auto store = NewRedisStore(With([&](RedisStoreOptions& o) {
    o.servers = {server.unix_address()};
    o.reconnect_interval_ms = 1;
    o.stats = &rig.stats;
  }));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(rig.Init(PageCount(256), true, std::move(store).value()).ok());
  constexpr std::uint64_t kPages = 16;
  auto make = [&](std::uint64_t id) {
    OperationContext ctx;
    auto bo = BufferObject::Create(rig.dev->get(), {.size = Bytes(kPages * kPageSize)},
                                   testing::PlacementOf(kMemTt), ctx);
    EXPECT_TRUE(bo.ok()) << bo.status().ToString();
    testing::Fill(**bo, id);
    return *bo;
  };
  std::vector<BoRef> lost = {make(1), make(2), make(3)};
  ASSERT_EQ(rig.Shrink(), 3 * kPages);
  ASSERT_TRUE(server.Restart());
  BoRef fresh = make(4);
  ASSERT_EQ(rig.Shrink(), kPages);
  for (BoRef& bo : lost) {
    std::vector<std::byte> data(kPages * kPageSize);
    OperationContext ctx;
    Status s = bo->Read(0, data, ctx);
    EXPECT_EQ(s.code(), Errc::kIo) << s.ToString();
    EXPECT_NE(s.message().find("16 pages lost"), std::string::npos) << s.ToString();
  }
  EXPECT_EQ(rig.stats.Get(Stat::kRemoteLostPages), 3 * kPages);
  testing::ExpectContent(*fresh, 4);
  lost.clear();
  fresh.reset();
  (*rig.dev)->FlushDelayedDeletes();
}

TEST_F(RedisStoreTest, BadSpecsAndOptionsAreClearErrors) {
  RegisterRedisStoreKind();
  struct Case {
    const char* spec;
    const char* says;
  };
  for (const Case& c : {Case{"redis", "redis:HOST:PORT"}, Case{"redis:", "redis:HOST:PORT"},
                        Case{"redis:localhost", "malformed"}, Case{"redis:h:99999", "port"},
                        Case{"redis:h:12x", "bad port"}, Case{"redis:unix:", "empty socket"},
                        Case{"redis:h:1,db=x", "db"}, Case{"redis:h:1,conns=0", "conns"},
                        Case{"redis:h:1,bogus", "unknown"}, Case{"redis:h:1,cap=3Q", "bad size"},
                        Case{"redis:h:1,password_file=/nonexistent/pw", "password file"},
                        Case{"redis:h:1,value=5000", "max_value_bytes"}}) {
    SCOPED_TRACE(c.spec);
    auto s = CreateBackupStore(c.spec);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Errc::kInvalid) << s.status().ToString();
    EXPECT_NE(s.status().message().find(c.says), std::string::npos) << s.status().ToString();
  }
  EXPECT_EQ(NewRedisStore({}).status().code(), Errc::kInvalid);
  // Nobody listening: kIo at open, naming the server by its port only.
  auto s = CreateBackupStore("redis:127.0.0.1:1,connect_timeout=200");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Errc::kIo) << s.status().ToString();
  EXPECT_NE(s.status().message().find("tcp port 1"), std::string::npos) << s.status().ToString();
  EXPECT_EQ(s.status().message().find("127.0.0.1"), std::string::npos) << s.status().ToString();
}

}  // namespace
}  // namespace uttm
