// Copyright (c) uttm developers.
//
// The remote store (redis_store.h) over hiredis' blocking API. A call takes one connection of a
// server, appends its commands to the connection's output buffer (hiredis' obuf), writes them,
// and reads the replies in order: a pipeline, one round trip per batch rather than per run.
#include "uttm/redis_store.h"

// hiredis.h includes sds.h, which declares its functions without C linkage: give it one first.
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "backup/page_checksum.h"
#include "uttm/backup_store_factory.h"
#include "uttm/fault_injection.h"
#include "uttm/mutex.h"
#include "uttm/units.h"

namespace uttm {
namespace {

using internal::PageRef;
using Clock = std::chrono::steady_clock;

// The record header every value starts with (little-endian, 32 bytes).
constexpr std::uint64_t kMagic = 0x0153445252545475ull;  // "uTTRRDS\1"
constexpr std::uint16_t kFormatVersion = 1;
constexpr std::uint16_t kLayoutRawPages = 0;
constexpr std::size_t kHeaderBytes = 32;
constexpr std::uint64_t kMaxValueBytes = 512ull << 20;  // the servers' proto-max-bulk-len default
constexpr std::uint32_t kFreeSlot = UINT32_MAX;
constexpr std::size_t kDeleteBatch = 256;            // keys per UNLINK
constexpr std::size_t kMaxPendingDeletes = 1 << 20;  // beyond this, keys are left to expire
constexpr std::uint64_t kUnknownRoom = 1ull << 50;   // BytesAvailable when servers do not say

struct RecordHeader {
  std::uint64_t magic;
  std::uint16_t version;
  std::uint16_t layout;
  std::uint32_t pages;
  std::uint64_t run;
  std::uint64_t space;  // the store's namespace
};
static_assert(sizeof(RecordHeader) == kHeaderBytes);

struct Address {
  bool unix_socket = false;
  std::string host;  // or the socket's path
  int port = 0;
  std::string name;  // what messages show: "tcp port 6379", "unix socket redis.sock"
};

Result<Address> ParseAddress(std::string_view text) {
  Address a;
  if (text.starts_with("unix:")) {
    a.unix_socket = true;
    a.host = std::string(text.substr(5));
    if (a.host.empty())
      return Status(Errc::kInvalid, "redis store: empty socket path in \"unix:\"");
    const std::size_t slash = a.host.rfind('/');
    a.name = "unix socket " + (slash == std::string::npos ? a.host : a.host.substr(slash + 1));
    return a;
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status(Errc::kInvalid,
                  "redis store: a server address is HOST:PORT or unix:/path, got a malformed one");
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return Status(Errc::kInvalid, "redis store: malformed IPv6 address (expected [ADDR]:PORT)");
    }
    host = host.substr(1, host.size() - 2);
  }
  int p = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || p > 65535) {
      return Status(Errc::kInvalid, "redis store: bad port \"" + std::string(port) + "\"");
    }
    p = p * 10 + (c - '0');
  }
  if (p < 1 || p > 65535) {
    return Status(Errc::kInvalid, "redis store: port " + std::string(port) + " out of range");
  }
  a.host = std::string(host);
  a.port = p;
  a.name = "tcp port " + std::to_string(p);
  return a;
}

// Lamping and Veach's jump consistent hash: bucket in [0, buckets), stable as buckets grow.
std::uint32_t JumpHash(std::uint64_t key, std::uint32_t buckets) {
  std::int64_t b = -1;
  std::int64_t j = 0;
  while (j < static_cast<std::int64_t>(buckets)) {
    b = j;
    key = key * 2862933555777941757ull + 1;
    j = static_cast<std::int64_t>(
        static_cast<double>(b + 1) *
        (static_cast<double>(1ll << 31) / static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<std::uint32_t>(b);
}

std::string ReplyText(const redisReply* r) {
  if (r == nullptr || r->str == nullptr) return {};
  return std::string(r->str, std::min<std::size_t>(r->len, 200));
}

// Keeps SIGPIPE from the calling thread while it talks to a server: hiredis writes with write(2),
// and a server gone away would otherwise end the process instead of failing the call. A SIGPIPE
// raised meanwhile is taken off the thread before its mask is restored, unless one was already
// pending (then it is not ours to take).
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;
  ~NoSigpipe() {
    if (!blocked_) return;
    if (!was_pending_) {
      const timespec zero{};
      while (::sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool blocked_ = false;
};

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// One connection; a call holds its lock for all of its pipeline.
struct Conn {
  Mutex mu;
  redisContext* ctx UTTM_GUARDED_BY(mu) = nullptr;
  bool ever_connected UTTM_GUARDED_BY(mu) = false;
  bool timed_out UTTM_GUARDED_BY(mu) = false;  // the last failure was the I/O timeout
  ~Conn() {
    MutexLock l(&mu);
    if (ctx != nullptr) redisFree(ctx);
  }
};

struct Server {
  Address addr;
  std::string name;  // "server 0 (tcp port 6379)"
  std::vector<std::unique_ptr<Conn>> conns;
  std::atomic<unsigned> next{0};
  Mutex mu;
  Clock::time_point failed_at UTTM_GUARDED_BY(mu){};
  Status failure UTTM_GUARDED_BY(mu);                      // of the last connect attempt
  std::vector<std::uint64_t> deletes UTTM_GUARDED_BY(mu);  // runs whose keys are to be unlinked
};

// A handle's entry: its run's slot and its page there (run kFreeSlot: no page). Handles are
// entry index + 1, dense as the file stores' slots (a store wrapped around this one, the
// encrypted store, indexes its tags by them).
struct PageEntry {
  std::uint32_t run = kFreeSlot;
  std::uint32_t page = 0;
};

// A run as the table keeps it.
struct Run {
  std::uint64_t id = 0;
  std::uint32_t pages = 0;
  std::uint32_t live = 0;
  std::uint32_t server = 0;
  bool used = false;
  std::vector<std::uint64_t> checks;
};

// What a copy needs of one page, taken from the table under its lock.
struct PageRefInfo {
  std::uint64_t run;
  std::uint32_t run_pages;
  std::uint32_t page;
  std::uint32_t server;
  std::uint64_t check;
};

class RedisStore final : public BackupStore {
 public:
  RedisStore(const RedisStoreOptions& o, std::vector<Address> addrs, std::string password,
             Stats* stats)
      : o_(o), password_(std::move(password)), stats_(stats) {
    o_.password.clear();
    o_.password_file.clear();
    std::uint64_t space = 0;
    if (::getrandom(&space, sizeof space, 0) != sizeof space) {
      space = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
              reinterpret_cast<std::uintptr_t>(this);
    }
    space_ = space;
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "uttm:%016llx:", static_cast<unsigned long long>(space));
    prefix_ = prefix;
    for (std::size_t i = 0; i < addrs.size(); ++i) {
      auto s = std::make_unique<Server>();
      s->addr = std::move(addrs[i]);
      s->name = "server " + std::to_string(i) + " (" + s->addr.name + ")";
      for (unsigned c = 0; c < o_.connections_per_server; ++c) {
        s->conns.push_back(std::make_unique<Conn>());
      }
      servers_.push_back(std::move(s));
    }
  }

  ~RedisStore() override {
    if (o_.delete_on_drop) {
      {
        MutexLock l(&table_mu_);
        for (const Run& r : runs_) {
          if (r.used) {
            MutexLock sl(&servers_[r.server]->mu);
            servers_[r.server]->deletes.push_back(r.id);
          }
        }
      }
      for (auto& s : servers_) FlushDeletes(*s, /*may_connect=*/true);
    }
    if (!password_.empty()) ::explicit_bzero(password_.data(), password_.size());
  }

  // Connects every connection's first member and reads the servers' memory limits.
  Status Open() {
    std::uint64_t cap = 0;
    bool known = true;
    for (auto& s : servers_) {
      Conn& c = *s->conns[0];
      MutexLock l(&c.mu);
      NoSigpipe no_sigpipe;
      UTTM_RETURN_IF_ERROR(Connect(*s, &c, /*open=*/true));
      Reply r(static_cast<redisReply*>(redisCommand(c.ctx, "INFO memory")));
      stats_->Add(Stat::kRemoteRequests);
      std::uint64_t max = 0;
      std::uint64_t used = 0;
      std::uint64_t system = 0;
      if (r != nullptr && r->type == REDIS_REPLY_STRING) {
        std::string_view info(r->str, r->len);
        auto field = [&](std::string_view name) -> std::uint64_t {
          const std::string key = "\n" + std::string(name) + ":";
          const std::size_t at = info.find(key);
          if (at == std::string_view::npos) return 0;
          return std::strtoull(info.data() + at + key.size(), nullptr, 10);
        };
        max = field("maxmemory");
        used = field("used_memory");
        system = field("total_system_memory");
      } else if (c.ctx->err != 0) {
        return Lost(*s, &c, "INFO");
      }
      if (max == 0) max = system;   // no maxmemory: the server's machine is the limit
      if (max == 0) known = false;  // INFO refused or without the fields
      cap += max > used ? max - used : 0;
    }
    // The servers' room, as an estimate (their OOM answers are what counts); unknown: no limit.
    estimate_ = known ? cap : kUnknownRoom;
    return Status();
  }

  Result<std::size_t> BackupPages(const std::byte* src, std::size_t count, const BackupFlags&,
                                  BackupHandle* handles) override {
    return Backup(PageRef{.base = const_cast<std::byte*>(src)}, count, handles);
  }
  Result<std::size_t> BackupPageList(const std::byte* const* pages, std::size_t count,
                                     const BackupFlags&, BackupHandle* handles) override {
    return Backup(PageRef{.list = const_cast<std::byte* const*>(pages)}, count, handles);
  }
  Status CopyPages(const BackupHandle* handles, std::size_t count, std::byte* dst,
                   const OperationContext& ctx, std::size_t* copied) override {
    return Copy(handles, count, PageRef{.base = dst}, ctx, copied);
  }
  Status CopyPageList(const BackupHandle* handles, std::size_t count, std::byte* const* dst,
                      const OperationContext& ctx, std::size_t* copied) override {
    return Copy(handles, count, PageRef{.list = dst}, ctx, copied);
  }

  void Drop(const BackupHandle* handles, std::size_t count) override {
    std::vector<std::pair<std::uint32_t, std::uint64_t>> gone;  // (server, run)
    {
      MutexLock l(&table_mu_);
      for (std::size_t i = 0; i < count; ++i) {
        PageEntry* e = Lookup(handles[i]);
        if (e == nullptr) continue;
        Run* r = &runs_[e->run];
        e->run = kFreeSlot;
        free_pages_.push_back(static_cast<std::uint32_t>(handles[i].value() - 1));
        if (--r->live == 0) {
          gone.emplace_back(r->server, r->id);
          FreeRunLocked(r);
        }
      }
    }
    if (gone.empty() || !o_.delete_on_drop) return;
    for (auto [server, run] : gone) {
      MutexLock sl(&servers_[server]->mu);
      if (servers_[server]->deletes.size() < kMaxPendingDeletes) {
        servers_[server]->deletes.push_back(run);
      }
    }
    // Deletes ride on the next request to each server; a batch goes now if a connection is free.
    for (auto& s : servers_) {
      std::size_t pending = 0;
      {
        MutexLock sl(&s->mu);
        pending = s->deletes.size();
      }
      if (pending >= kDeleteBatch) FlushDeletes(*s, /*may_connect=*/false);
    }
  }

  std::uint64_t BytesAvailable() const override {
    const std::uint64_t used = used_.load(std::memory_order_relaxed);
    const std::uint64_t cap = o_.capacity_bytes != 0 ? o_.capacity_bytes : estimate_;
    return cap > used ? cap - used : 0;
  }

  std::uint64_t BytesUsed() const override { return used_.load(std::memory_order_relaxed); }

  // Everything acknowledged is on the servers already; sends the deletes still pending.
  Status Flush() override {
    for (auto& s : servers_) FlushDeletes(*s, /*may_connect=*/true);
    return Status();
  }

  std::string Describe() const override {
    std::string d = "redis (";
    if (servers_.size() > 1) d += std::to_string(servers_.size()) + " servers: ";
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (i != 0) d += ", ";
      d += servers_[i]->addr.name;
    }
    return d + ")";
  }

 private:
  // -------------------------------------------------------------------------------------------
  // Connections

  std::string Key(std::uint64_t run) const {
    char tail[24];
    std::snprintf(tail, sizeof tail, "%llx", static_cast<unsigned long long>(run));
    return prefix_ + tail;
  }

  std::uint32_t ServerOf(const std::string& key) const {
    return JumpHash(XXH3_64bits(key.data(), key.size()),
                    static_cast<std::uint32_t>(servers_.size()));
  }

  // Makes `c` usable: reconnects a broken or new connection (AUTH, SELECT), at most once per
  // reconnect interval per server.
  // *fresh (if not null) says whether it connected now.
  Status Connect(Server& s, Conn* c, bool open = false, bool* fresh = nullptr)
      UTTM_REQUIRES(c->mu) {
    if (fresh != nullptr) *fresh = false;
    if (c->ctx != nullptr && c->ctx->err == 0) return Status();
    if (fresh != nullptr) *fresh = true;
    if (c->ctx != nullptr) {
      redisFree(c->ctx);
      c->ctx = nullptr;
    }
    {
      MutexLock sl(&s.mu);
      if (!s.failure.ok() &&
          Clock::now() - s.failed_at < std::chrono::milliseconds(o_.reconnect_interval_ms)) {
        return s.failure;
      }
    }
    Status st = ConnectNow(s, c);
    MutexLock sl(&s.mu);
    if (st.ok()) {
      s.failure = Status();
      if (c->ever_connected && !open) stats_->Add(Stat::kRemoteReconnects);
      c->ever_connected = true;
    } else {
      s.failure = st;
      s.failed_at = Clock::now();
    }
    return st;
  }

  Status ConnectNow(Server& s, Conn* c) UTTM_REQUIRES(c->mu) {
    NoSigpipe no_sigpipe;
    const timeval ct{.tv_sec = o_.connect_timeout_ms / 1000,
                     .tv_usec = static_cast<suseconds_t>(o_.connect_timeout_ms % 1000) * 1000};
    redisContext* ctx = s.addr.unix_socket
                            ? redisConnectUnixWithTimeout(s.addr.host.c_str(), ct)
                            : redisConnectWithTimeout(s.addr.host.c_str(), s.addr.port, ct);
    if (ctx == nullptr) return Status(Errc::kNoMemory, "redis store: no memory for a connection");
    if (ctx->err != 0) {
      Status st(Errc::kIo, "redis store: cannot connect to " + s.name + ": " + ctx->errstr);
      redisFree(ctx);
      return st;
    }
    const timeval io{.tv_sec = o_.io_timeout_ms / 1000,
                     .tv_usec = static_cast<suseconds_t>(o_.io_timeout_ms % 1000) * 1000};
    redisSetTimeout(ctx, io);
    auto fail = [&](Errc code, const std::string& what) {
      redisFree(ctx);
      return Status(code, "redis store: " + s.name + ": " + what);
    };
    if (!password_.empty()) {
      const char* argv[] = {"AUTH", password_.data()};
      const std::size_t lens[] = {4, password_.size()};
      Reply r(static_cast<redisReply*>(redisCommandArgv(ctx, 2, argv, lens)));
      stats_->Add(Stat::kRemoteRequests);
      if (r == nullptr) return fail(Errc::kIo, "AUTH failed: " + IoWhy(ctx));
      if (r->type == REDIS_REPLY_ERROR) {
        const std::string text = ReplyText(r.get());
        if (text.find("without any password") != std::string::npos ||
            text.find("no password is set") != std::string::npos) {
          return fail(Errc::kInvalid, "a password was given but the server has none set");
        }
        return fail(Errc::kInvalid, "wrong password (the server refused AUTH)");
      }
    }
    if (o_.database != 0) {
      Reply r(static_cast<redisReply*>(redisCommand(ctx, "SELECT %u", o_.database)));
      stats_->Add(Stat::kRemoteRequests);
      if (r == nullptr) return fail(Errc::kIo, "SELECT failed: " + IoWhy(ctx));
      if (r->type == REDIS_REPLY_ERROR) {
        return fail(Errc::kInvalid,
                    "database " + std::to_string(o_.database) + " refused: " + ReplyText(r.get()));
      }
    }
    Reply r(static_cast<redisReply*>(redisCommand(ctx, "PING")));
    stats_->Add(Stat::kRemoteRequests);
    if (r == nullptr) return fail(Errc::kIo, "PING failed: " + IoWhy(ctx));
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string text = ReplyText(r.get());
      if (text.starts_with("NOAUTH")) {
        return fail(Errc::kInvalid,
                    "the server requires a password (password_file= or UTTM_REDIS_PASSWORD)");
      }
      return fail(Errc::kIo, "PING answered " + text);
    }
    c->ctx = ctx;
    return Status();
  }

  // The error for a connection that failed mid-call; the next call reconnects.
  Status Lost(Server& s, Conn* c, const char* during) UTTM_REQUIRES(c->mu) {
    std::string why = c->ctx != nullptr ? IoWhy(c->ctx) : "no reply";
    c->timed_out = c->ctx != nullptr && c->ctx->err == REDIS_ERR_IO && IsTimeout(c->ctx);
    if (c->ctx != nullptr) {
      redisFree(c->ctx);
      c->ctx = nullptr;
    }
    return Status(Errc::kIo, "redis store: lost the connection to " + s.name + " during " + during +
                                 ": " + why);
  }

  // hiredis reports a socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) as an I/O error with EAGAIN's
  // text.
  static bool IsTimeout(const redisContext* ctx) {
    return std::strcmp(ctx->errstr, std::strerror(EAGAIN)) == 0;
  }
  std::string IoWhy(const redisContext* ctx) const {
    if (ctx->err == 0) return "no reply";
    if (ctx->err == REDIS_ERR_IO && IsTimeout(ctx)) {
      return "no answer within " + std::to_string(o_.io_timeout_ms) + " ms";
    }
    return ctx->errstr;
  }

  Conn* PickConn(Server& s) {
    // A free connection if there is one, else the next in turn.
    for (auto& c : s.conns) {
      if (c->mu.TryLock()) {
        c->mu.Unlock();
        return c.get();
      }
    }
    return s.conns[s.next.fetch_add(1, std::memory_order_relaxed) % s.conns.size()].get();
  }

  // Appends the UNLINKs pending for `s` to `c`'s pipeline; returns how many replies to skip.
  // `*runs` gets the runs whose keys they delete, for Requeue if the pipeline fails.
  std::size_t AppendDeletes(Server& s, Conn* c, std::vector<std::uint64_t>* taken)
      UTTM_REQUIRES(c->mu) {
    std::vector<std::uint64_t>& runs = *taken;
    {
      MutexLock sl(&s.mu);
      runs.swap(s.deletes);
    }
    std::size_t replies = 0;
    for (std::size_t i = 0; i < runs.size(); i += kDeleteBatch) {
      const std::size_t n = std::min(kDeleteBatch, runs.size() - i);
      std::vector<std::string> keys;
      std::vector<const char*> argv{"UNLINK"};
      std::vector<std::size_t> lens{6};
      keys.reserve(n);
      for (std::size_t k = 0; k < n; ++k) keys.push_back(Key(runs[i + k]));
      for (const std::string& k : keys) {
        argv.push_back(k.data());
        lens.push_back(k.size());
      }
      if (redisAppendCommandArgv(c->ctx, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
          REDIS_OK) {
        break;
      }
      ++replies;
    }
    stats_->Add(Stat::kRemoteRequests, replies);
    return replies;
  }

  void Requeue(Server& s, std::vector<std::uint64_t>* runs) {
    MutexLock sl(&s.mu);
    if (s.deletes.size() + runs->size() > kMaxPendingDeletes) return;  // left to expire
    s.deletes.insert(s.deletes.end(), runs->begin(), runs->end());
    runs->clear();
  }

  // Reads `n` replies to UNLINKs (their counts are not needed).
  bool SkipReplies(Conn* c, std::size_t n) UTTM_REQUIRES(c->mu) {
    for (std::size_t i = 0; i < n; ++i) {
      void* r = nullptr;
      if (redisGetReply(c->ctx, &r) != REDIS_OK) return false;
      freeReplyObject(r);
    }
    return true;
  }

  void FlushDeletes(Server& s, bool may_connect) {
    Conn* c = PickConn(s);
    if (!may_connect) {
      if (!c->mu.TryLock()) return;
    } else {
      c->mu.Lock();
    }
    c->mu.AssertHeld();
    NoSigpipe no_sigpipe;
    if ((c->ctx == nullptr || c->ctx->err != 0) && (!may_connect || !Connect(s, c).ok())) {
      c->mu.Unlock();
      return;
    }
    std::vector<std::uint64_t> runs;
    const std::size_t n = AppendDeletes(s, c, &runs);
    if (!SkipReplies(c, n)) {
      (void)Lost(s, c, "UNLINK");
      Requeue(s, &runs);
    }
    c->mu.Unlock();
  }

  // -------------------------------------------------------------------------------------------
  // The run table

  PageEntry* Lookup(BackupHandle h) UTTM_REQUIRES(table_mu_) {
    if (!h.valid() || h.value() > pages_.size()) return nullptr;
    PageEntry* e = &pages_[h.value() - 1];
    return e->run == kFreeSlot ? nullptr : e;
  }

  void FreeRunLocked(Run* r) UTTM_REQUIRES(table_mu_) {
    const std::uint64_t bytes = kHeaderBytes + std::uint64_t{r->pages} * kPageSize;
    used_.fetch_sub(bytes, std::memory_order_relaxed);
    stats_->GaugeAdd(Stat::kStoreBytesUsed, -static_cast<std::int64_t>(bytes));
    r->used = false;
    r->checks = {};
    free_.push_back(static_cast<std::uint32_t>(r - runs_.data()));
  }

  // -------------------------------------------------------------------------------------------
  // Backup

  struct Pending {
    std::uint64_t id;
    std::size_t first;  // page index in the call
    std::uint32_t pages;
    std::uint32_t server;
    std::vector<std::uint64_t> checks;
    Status status;  // of its SET
    bool sent = false;
  };

  // Appends "SET key <header + pages> [EX ttl]" to c's output buffer, checksumming each page as
  // it is copied in (the copy is hot in cache).
  void AppendSet(Conn* c, const PageRef& src, Pending* p) UTTM_REQUIRES(c->mu) {
    const std::string key = Key(p->id);
    const std::string ttl = std::to_string(o_.key_ttl_seconds);
    const std::size_t value = kHeaderBytes + std::size_t{p->pages} * kPageSize;
    std::string head = (o_.key_ttl_seconds != 0 ? "*5\r\n" : "*3\r\n") +
                       std::string("$3\r\nSET\r\n$") + std::to_string(key.size()) + "\r\n" + key +
                       "\r\n$" + std::to_string(value) + "\r\n";
    std::string tail = "\r\n";
    if (o_.key_ttl_seconds != 0) {
      tail += "$2\r\nEX\r\n$" + std::to_string(ttl.size()) + "\r\n" + ttl + "\r\n";
    }
    const RecordHeader header{.magic = kMagic,
                              .version = kFormatVersion,
                              .layout = kLayoutRawPages,
                              .pages = p->pages,
                              .run = p->id,
                              .space = space_};
    redisContext* ctx = c->ctx;
    ctx->obuf = sdsMakeRoomFor(ctx->obuf, head.size() + value + tail.size());
    char* out = ctx->obuf + sdslen(ctx->obuf);
    std::memcpy(out, head.data(), head.size());
    out += head.size();
    std::memcpy(out, &header, kHeaderBytes);
    out += kHeaderBytes;
    p->checks.resize(p->pages);
    for (std::uint32_t k = 0; k < p->pages; ++k) {
      std::memcpy(out, src.at(p->first + k), kPageSize);
      internal::PageChecksums(reinterpret_cast<const std::byte*>(out), 1, &p->checks[k]);
      out += kPageSize;
    }
    std::memcpy(out, tail.data(), tail.size());
    sdsIncrLen(ctx->obuf, static_cast<int>(head.size() + value + tail.size()));
  }

  // Writes c's output buffer out (blocking, bounded by the I/O timeout).
  static bool WriteOut(Conn* c) UTTM_REQUIRES(c->mu) {
    int done = 0;
    while (done == 0) {
      if (redisBufferWrite(c->ctx, &done) != REDIS_OK) return false;
    }
    return true;
  }

  // Sends runs [begin, end) (all on one server) in one pipeline and sets each one's status. A
  // connection that breaks before its first reply in this call may be one the server dropped
  // while it was idle (a restart): the batch goes once more over a new one (SET is idempotent).
  void SendBatch(const PageRef& src, std::vector<Pending>& runs, std::size_t begin,
                 std::size_t end) {
    Server& s = *servers_[runs[begin].server];
    Conn* c = PickConn(s);
    MutexLock l(&c->mu);
    NoSigpipe no_sigpipe;
    for (int attempt = 0;; ++attempt) {
      bool fresh = false;
      Status st = Connect(s, c, false, &fresh);
      if (!st.ok()) {
        for (std::size_t i = begin; i < end; ++i) runs[i].status = st;
        return;
      }
      const bool broken = SendBatchOnce(s, c, src, runs, begin, end);
      if (!broken || fresh || attempt > 0 || c->timed_out) return;
      for (std::size_t i = begin; i < end; ++i) {
        runs[i].status = Status();
        runs[i].sent = false;
      }
    }
  }

  // SendBatch over `c` as it is; true when the connection broke.
  bool SendBatchOnce(Server& s, Conn* c, const PageRef& src, std::vector<Pending>& runs,
                     std::size_t begin, std::size_t end) UTTM_REQUIRES(c->mu) {
    std::vector<std::uint64_t> deletes;
    const std::size_t skip = AppendDeletes(s, c, &deletes);
    bool broken = false;
    for (std::size_t i = begin; i < end && !broken; ++i) {
      AppendSet(c, src, &runs[i]);
      runs[i].sent = true;
      stats_->Add(Stat::kRemoteRequests);
      broken = !WriteOut(c);
    }
    if (!broken) broken = !SkipReplies(c, skip);
    for (std::size_t i = begin; i < end; ++i) {
      if (broken || !runs[i].sent) {
        runs[i].status = Lost(s, c, "SET");
        broken = true;
        continue;
      }
      void* raw = nullptr;
      if (redisGetReply(c->ctx, &raw) != REDIS_OK) {
        runs[i].status = Lost(s, c, "SET");
        broken = true;
        continue;
      }
      Reply r(static_cast<redisReply*>(raw));
      if (r->type == REDIS_REPLY_STATUS) continue;
      const std::string text = ReplyText(r.get());
      runs[i].status =
          text.starts_with("OOM")
              ? Status(Errc::kNoSpace, "redis store: " + s.name + " is full (" + text + ")")
              : Status(Errc::kIo, "redis store: " + s.name + " refused SET: " + text);
    }
    if (broken) Requeue(s, &deletes);
    return broken;
  }

  Result<std::size_t> Backup(const PageRef& src, std::size_t count, BackupHandle* handles) {
    if (count == 0 || handles == nullptr) {
      return Status(Errc::kInvalid, "redis store: a backup of no pages (or no handle array)");
    }
    if (count > 1 && ShouldFail(FaultPoint::kStoreShortWrite)) count = (count + 1) / 2;
    Status stop;
    std::size_t n = count;
    for (std::size_t k = 0; k < count; ++k) {
      if (ShouldFail(FaultPoint::kStoreWrite)) {
        stop = Status(Errc::kIo, "redis store: injected write failure");
      } else if (ShouldFail(FaultPoint::kStoreNoSpace)) {
        stop = Status(Errc::kNoSpace, "redis store: injected ENOSPC");
      }
      if (!stop.ok()) {
        n = k;
        break;
      }
    }
    if (o_.capacity_bytes != 0 && n > 0) {
      const std::uint64_t avail = BytesAvailable();
      const std::uint64_t runs = (n + run_pages_ - 1) / run_pages_;
      const std::uint64_t want = runs * kHeaderBytes + std::uint64_t{n} * kPageSize;
      if (want > avail) {
        const std::uint64_t fit =
            avail > kHeaderBytes * runs ? (avail - kHeaderBytes * runs) / kPageSize : 0;
        n = std::min<std::uint64_t>(n, fit);
        if (n == 0) stop = Status(Errc::kNoSpace, "redis store: its cap is reached");
      }
    }
    if (n == 0) {
      if (stop.code() != Errc::kNoSpace) stats_->Add(Stat::kStoreWriteErrors);
      return stop;
    }

    std::vector<Pending> runs;
    for (std::size_t first = 0; first < n; first += run_pages_) {
      Pending p;
      p.id = next_run_.fetch_add(1, std::memory_order_relaxed);
      p.first = first;
      p.pages = static_cast<std::uint32_t>(std::min<std::size_t>(run_pages_, n - first));
      p.server = ServerOf(Key(p.id));
      runs.push_back(std::move(p));
    }
    // Batches of runs on one server, at most window_bytes each; stop at the first failure.
    for (std::size_t begin = 0; begin < runs.size();) {
      std::size_t end = begin;
      std::uint64_t bytes = 0;
      while (end < runs.size() && runs[end].server == runs[begin].server &&
             (end == begin || bytes + runs[end].pages * kPageSize <= o_.window_bytes)) {
        bytes += runs[end].pages * kPageSize;
        ++end;
      }
      SendBatch(src, runs, begin, end);
      bool failed = false;
      for (std::size_t i = begin; i < end; ++i) failed |= !runs[i].status.ok();
      begin = end;
      if (failed) break;
    }

    // Publish the leading acknowledged runs; unlink any later one that was stored.
    std::size_t stored = 0;
    std::size_t published = 0;
    while (published < runs.size() && runs[published].sent && runs[published].status.ok()) {
      stored += runs[published].pages;
      ++published;
    }
    for (std::size_t i = published; i < runs.size(); ++i) {
      if (!runs[i].sent) continue;
      MutexLock sl(&servers_[runs[i].server]->mu);
      servers_[runs[i].server]->deletes.push_back(runs[i].id);
    }
    {
      MutexLock l(&table_mu_);
      for (std::size_t i = 0; i < published; ++i) Publish(runs[i], handles + runs[i].first);
    }
    stats_->Add(Stat::kStoreBytesWritten, stored * kPageSize);
    if (published < runs.size()) {
      const Status& why = runs[published].status;
      if (why.code() != Errc::kNoSpace) stats_->Add(Stat::kStoreWriteErrors);
      if (stored == 0) return why;
    }
    return stored;
  }

  void Publish(Pending& p, BackupHandle* handles) UTTM_REQUIRES(table_mu_) {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(runs_.size());
      runs_.emplace_back();
    }
    Run& r = runs_[slot];
    r.id = p.id;
    r.pages = p.pages;
    r.live = p.pages;
    r.server = p.server;
    r.used = true;
    r.checks = std::move(p.checks);
    const std::uint64_t bytes = kHeaderBytes + std::uint64_t{p.pages} * kPageSize;
    used_.fetch_add(bytes, std::memory_order_relaxed);
    stats_->GaugeAdd(Stat::kStoreBytesUsed, static_cast<std::int64_t>(bytes));
    for (std::uint32_t k = 0; k < p.pages; ++k) {
      std::uint32_t entry;
      if (!free_pages_.empty()) {
        entry = free_pages_.back();
        free_pages_.pop_back();
      } else {
        entry = static_cast<std::uint32_t>(pages_.size());
        pages_.emplace_back();
      }
      pages_[entry] = PageEntry{.run = slot, .page = k};
      handles[k] = BackupHandle(std::uint64_t{entry} + 1);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Copy

  struct Segment {
    std::size_t first;  // index in the call
    std::uint32_t n;
    Reply header;
    Reply data;
  };

  Status Copy(const BackupHandle* handles, std::size_t count, const PageRef& dst,
              const OperationContext& ctx, std::size_t* copied) {
    std::size_t done = 0;
    Status st = CopyInner(handles, count, dst, ctx, &done);
    if (copied != nullptr) *copied = done;
    if (!st.ok() && st.code() == Errc::kIo) stats_->Add(Stat::kStoreReadErrors);
    stats_->Add(Stat::kStoreBytesRead, done * kPageSize);
    return st;
  }

  Status CopyInner(const BackupHandle* handles, std::size_t count, const PageRef& dst,
                   const OperationContext& ctx, std::size_t* done) {
    if (handles == nullptr && count != 0) return Status(Errc::kInvalid, "redis store: no handles");
    std::vector<PageRefInfo> info(count);
    std::size_t valid = count;
    {
      MutexLock l(&table_mu_);
      for (std::size_t i = 0; i < count; ++i) {
        const PageEntry* e = Lookup(handles[i]);
        if (e == nullptr) {
          valid = i;
          break;
        }
        const Run* r = &runs_[e->run];
        const std::uint32_t page = e->page;
        info[i] = PageRefInfo{.run = r->id,
                              .run_pages = r->pages,
                              .page = page,
                              .server = r->server,
                              .check = r->checks[page]};
      }
    }
    for (std::size_t i = 0; i < valid;) {
      // A batch: segments (adjacent pages of one run) on one server, up to the window.
      const std::uint32_t server = info[i].server;
      std::vector<Segment> segs;
      std::uint64_t bytes = 0;
      std::size_t j = i;
      while (j < valid && info[j].server == server && (segs.empty() || bytes < o_.window_bytes)) {
        Segment seg{.first = j, .n = 1, .header = nullptr, .data = nullptr};
        while (j + seg.n < valid && info[j + seg.n].run == info[j].run &&
               info[j + seg.n].page == info[j].page + seg.n) {
          ++seg.n;
        }
        bytes += std::uint64_t{seg.n} * kPageSize;
        j += seg.n;
        segs.push_back(std::move(seg));
      }
      UTTM_RETURN_IF_ERROR(Fetch(*servers_[server], info, &segs));
      for (Segment& seg : segs) {
        UTTM_RETURN_IF_ERROR(Deliver(*servers_[server], info, seg, dst, ctx, done));
      }
      i = j;
    }
    if (valid < count) {
      return Status(Errc::kInvalid, "redis store: handle " + std::to_string(valid) +
                                        " of the copy is not valid (dropped, or not this store's)");
    }
    return Status();
  }

  // Reads the header and the pages of every segment in one pipeline; once more over a new
  // connection if one that was idle breaks (as SendBatch).
  Status Fetch(Server& s, const std::vector<PageRefInfo>& info, std::vector<Segment>* segs) {
    Conn* c = PickConn(s);
    MutexLock l(&c->mu);
    NoSigpipe no_sigpipe;
    for (int attempt = 0;; ++attempt) {
      bool fresh = false;
      UTTM_RETURN_IF_ERROR(Connect(s, c, false, &fresh));
      bool broken = false;
      Status st = FetchOnce(s, c, info, segs, &broken);
      if (!broken || fresh || attempt > 0 || c->timed_out) return st;
    }
  }

  Status FetchOnce(Server& s, Conn* c, const std::vector<PageRefInfo>& info,
                   std::vector<Segment>* segs, bool* broken) UTTM_REQUIRES(c->mu) {
    std::vector<std::uint64_t> deletes;
    const std::size_t skip = AppendDeletes(s, c, &deletes);
    for (const Segment& seg : *segs) {
      const PageRefInfo& first = info[seg.first];
      const std::string key = Key(first.run);
      const std::uint64_t from = kHeaderBytes + std::uint64_t{first.page} * kPageSize;
      const std::uint64_t to = from + std::uint64_t{seg.n} * kPageSize - 1;
      const std::string head_end = std::to_string(kHeaderBytes - 1);
      const std::string a = std::to_string(from);
      const std::string b = std::to_string(to);
      const char* hv[] = {"GETRANGE", key.c_str(), "0", head_end.c_str()};
      const char* dv[] = {"GETRANGE", key.c_str(), a.c_str(), b.c_str()};
      if (redisAppendCommandArgv(c->ctx, 4, hv, nullptr) != REDIS_OK ||
          redisAppendCommandArgv(c->ctx, 4, dv, nullptr) != REDIS_OK) {
        return Status(Errc::kNoMemory, "redis store: no memory for a request");
      }
      stats_->Add(Stat::kRemoteRequests, 2);
    }
    auto lost = [&]() UTTM_REQUIRES(c->mu) {
      *broken = true;
      Requeue(s, &deletes);
      return Lost(s, c, "GETRANGE");
    };
    if (!SkipReplies(c, skip)) return lost();
    for (Segment& seg : *segs) {
      void* h = nullptr;
      void* d = nullptr;
      if (redisGetReply(c->ctx, &h) != REDIS_OK) return lost();
      seg.header.reset(static_cast<redisReply*>(h));
      if (redisGetReply(c->ctx, &d) != REDIS_OK) return lost();
      seg.data.reset(static_cast<redisReply*>(d));
    }
    return Status();
  }

  // Checks a segment's header and copies its pages out, verifying each.
  Status Deliver(Server& s, const std::vector<PageRefInfo>& info, const Segment& seg,
                 const PageRef& dst, const OperationContext& ctx, std::size_t* done) {
    const PageRefInfo& first = info[seg.first];
    const std::string run = "run " + std::to_string(first.run) + " (" +
                            std::to_string(first.run_pages) + " pages) on " + s.name;
    for (const Reply* r : {&seg.header, &seg.data}) {
      if ((*r)->type == REDIS_REPLY_ERROR) {
        return Status(Errc::kIo,
                      "redis store: " + run + ": GETRANGE answered " + ReplyText(r->get()));
      }
      if ((*r)->type != REDIS_REPLY_STRING) {
        return Status(Errc::kIo, "redis store: " + run + ": unexpected reply to GETRANGE");
      }
    }
    if (seg.header->len == 0) {
      stats_->Add(Stat::kRemoteLostPages, seg.n);
      return Status(
          Errc::kIo,
          "redis store: " + run + " is missing on the server, " + std::to_string(seg.n) +
              " pages lost (the server restarted without persistence, evicted it under "
              "its maxmemory policy, or the key expired" +
              (o_.key_ttl_seconds != 0 ? " after " + std::to_string(o_.key_ttl_seconds) + " s)"
                                       : ")"));
    }
    RecordHeader h{};
    if (seg.header->len == kHeaderBytes) std::memcpy(&h, seg.header->str, kHeaderBytes);
    if (h.magic != kMagic || h.version != kFormatVersion || h.layout != kLayoutRawPages ||
        h.pages != first.run_pages || h.run != first.run || h.space != space_) {
      return Status(Errc::kIo,
                    "redis store: " + run + ": its record header does not match (format version " +
                        std::to_string(h.version) + ", or another store's value under our key)");
    }
    if (seg.data->len != std::size_t{seg.n} * kPageSize) {
      stats_->Add(Stat::kRemoteLostPages, seg.n);
      return Status(Errc::kIo, "redis store: " + run + ": the value is shorter than recorded");
    }
    for (std::uint32_t k = 0; k < seg.n; ++k) {
      const std::size_t i = seg.first + k;
      if (ctx.interruptible &&
          (ctx.stop.stop_requested() || ShouldFail(FaultPoint::kStoreInterrupt))) {
        return Status(Errc::kInterrupted, "redis store: copy interrupted");
      }
      if (ShouldFail(FaultPoint::kStoreRead)) {
        return Status(Errc::kIo, "redis store: injected read failure");
      }
      std::byte* out = dst.at(i);
      std::memcpy(out, seg.data->str + std::size_t{k} * kPageSize, kPageSize);
      if (ShouldFail(FaultPoint::kStoreCorrupt)) out[k % kPageSize] ^= std::byte{0x5a};
      std::uint64_t check = 0;
      internal::PageChecksums(out, 1, &check);
      if (check != info[i].check) {
        stats_->Add(Stat::kChecksumFailures);
        return Status(Errc::kIo, "redis store: page " + std::to_string(info[i].page) + " of " +
                                     run + " fails its checksum");
      }
      ++*done;
    }
    return Status();
  }

  RedisStoreOptions o_;
  const std::size_t run_pages_ = o_.max_value_bytes / kPageSize;  // most pages in one value
  std::string password_;
  Stats* const stats_;
  std::uint64_t space_ = 0;
  std::string prefix_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::uint64_t estimate_ = 0;
  std::atomic<std::uint64_t> next_run_{1};
  std::atomic<std::uint64_t> used_{0};

  Mutex table_mu_;
  std::vector<Run> runs_ UTTM_GUARDED_BY(table_mu_);
  std::vector<std::uint32_t> free_ UTTM_GUARDED_BY(table_mu_);  // free run slots
  std::vector<PageEntry> pages_ UTTM_GUARDED_BY(table_mu_);     // by handle - 1
  std::vector<std::uint32_t> free_pages_ UTTM_GUARDED_BY(table_mu_);
};

// -------------------------------------------------------------------------------------------
// Spec

Result<std::string> ReadPasswordFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(Errc::kInvalid, "redis store: cannot read the password file");
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.empty()) return Status(Errc::kInvalid, "redis store: the password file is empty");
  return line;
}

bool ParseUnsigned(std::string_view text, std::uint64_t max, std::uint64_t* out) {
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (v > max) return false;
  }
  *out = v;
  return true;
}

Result<std::unique_ptr<BackupStore>> MakeFromSpec(const BackupStoreSpec& spec,
                                                  const BackupStoreEnv& env) {
  RedisStoreOptions o;
  o.stats = env.stats;
  if (!spec.has_directory || spec.directory.empty()) {
    return BackupStoreSpecError(spec.text,
                                "a redis store is \"redis:HOST:PORT\" or \"redis:unix:/path\"");
  }
  o.servers.emplace_back(spec.directory);
  for (std::string_view opt : spec.options) {
    std::uint64_t v = 0;
    if (opt.starts_with("server=") && opt.size() > 7) {
      o.servers.emplace_back(opt.substr(7));
    } else if (opt.starts_with("password_file=") && opt.size() > 14) {
      o.password_file = std::string(opt.substr(14));
    } else if (opt.starts_with("db=") && ParseUnsigned(opt.substr(3), 1u << 20, &v)) {
      o.database = static_cast<unsigned>(v);
    } else if (opt.starts_with("timeout=") && ParseUnsigned(opt.substr(8), 3600000, &v) && v > 0) {
      o.io_timeout_ms = static_cast<unsigned>(v);
    } else if (opt.starts_with("connect_timeout=") && ParseUnsigned(opt.substr(16), 3600000, &v) &&
               v > 0) {
      o.connect_timeout_ms = static_cast<unsigned>(v);
    } else if (opt.starts_with("ttl=") && ParseUnsigned(opt.substr(4), 1ull << 40, &v)) {
      o.key_ttl_seconds = v;
    } else if (opt == "keep_keys") {
      o.delete_on_drop = false;
    } else if (opt.starts_with("cap=")) {
      if (!ParseBackupStoreSize(opt.substr(4), &o.capacity_bytes)) {
        return BackupStoreSpecError(spec.text, "bad size in \"" + std::string(opt) + "\"");
      }
    } else if (opt.starts_with("value=")) {
      if (!ParseBackupStoreSize(opt.substr(6), &o.max_value_bytes)) {
        return BackupStoreSpecError(spec.text, "bad size in \"" + std::string(opt) + "\"");
      }
    } else if (opt.starts_with("conns=") && ParseUnsigned(opt.substr(6), 64, &v) && v > 0) {
      o.connections_per_server = static_cast<unsigned>(v);
    } else if (opt.starts_with("password=")) {
      // Not BackupStoreSpecError: it would repeat the spec, password and all.
      return Status(Errc::kInvalid,
                    "backup store spec \"redis:...\": a password is never taken from a spec (it "
                    "would show in process lists and logs): use password_file=PATH or "
                    "UTTM_REDIS_PASSWORD");
    } else {
      return BackupStoreSpecError(
          spec.text,
          "unknown or malformed redis option \"" + std::string(opt.substr(0, opt.find('='))) +
              "\" (known: server=ADDRESS, password_file=PATH, db=N, timeout=MS, "
              "connect_timeout=MS, ttl=SECONDS, keep_keys, cap=SIZE, value=SIZE, conns=1..64)");
    }
  }
  if (o.password_file.empty()) {
    if (const char* pw = std::getenv("UTTM_REDIS_PASSWORD"); pw != nullptr) o.password = pw;
  }
  return NewRedisStore(o);
}

}  // namespace

Result<std::unique_ptr<BackupStore>> NewRedisStore(const RedisStoreOptions& options) {
  if (options.servers.empty()) return Status(Errc::kInvalid, "redis store: no server given");
  if (options.connections_per_server < 1 || options.connections_per_server > 64) {
    return Status(Errc::kInvalid, "redis store: connections_per_server " +
                                      std::to_string(options.connections_per_server) +
                                      " (expected 1..64)");
  }
  if (options.max_value_bytes < kPageSize || options.max_value_bytes % kPageSize != 0 ||
      options.max_value_bytes > kMaxValueBytes) {
    return Status(Errc::kInvalid, "redis store: max_value_bytes " +
                                      std::to_string(options.max_value_bytes) +
                                      " (expected a multiple of 4 KiB up to 512 MiB)");
  }
  if (options.window_bytes < (1u << 20)) {
    return Status(Errc::kInvalid, "redis store: window_bytes below 1 MiB");
  }
  if (options.connect_timeout_ms == 0 || options.io_timeout_ms == 0) {
    return Status(Errc::kInvalid, "redis store: a timeout of 0 ms");
  }
  if (options.capacity_bytes != 0 && options.capacity_bytes < kPageSize) {
    return Status(Errc::kInvalid, "redis store: capacity_bytes below one page; use 0 for no cap");
  }
  std::vector<Address> addrs;
  for (const std::string& s : options.servers) {
    UTTM_ASSIGN_OR_RETURN(Address a, ParseAddress(s));
    addrs.push_back(std::move(a));
  }
  std::string password = options.password;
  if (!options.password_file.empty()) {
    UTTM_ASSIGN_OR_RETURN(password, ReadPasswordFile(options.password_file));
  }
  Stats* stats = options.stats != nullptr ? options.stats : &Stats::Default();
  auto store = std::make_unique<RedisStore>(options, std::move(addrs), std::move(password), stats);
  UTTM_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<BackupStore>(std::move(store));
}

void RegisterRedisStoreKind() { (void)RegisterBackupStoreKind("redis", MakeFromSpec); }

}  // namespace uttm
