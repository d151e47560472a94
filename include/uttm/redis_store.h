// Copyright (c) uttm developers.
//
// redis_store.h: a backup store on one or more Redis-protocol servers (Redis, Valkey, KeyDB,
// Dragonfly), for data that outgrows one machine's disk or is shared between serving hosts, the
// way LMCache and Mooncake spill KV caches to remote stores. An optional library: link
// uttm::redis_store (it needs hiredis).
//
//   * Each backed-up run (one BackupPages call, cut at `max_value_bytes`) is one value: a 32-byte
//   record
//     header (magic, format version, layout, page count, the run's id and the store's namespace)
//     followed by the pages. Its key is "uttm:NAMESPACE:RUN", NAMESPACE being 64 random bits
//     drawn when the store opens, so two stores (two runtimes, two hosts) never collide. With
//     several servers a run goes to the server a stable hash of its key picks.
//   * Requests are pipelined: a call appends all its SET (or GETRANGE) commands, up to
//     `window_bytes` unanswered, and then reads the replies; several threads use several
//     connections per server (`connections_per_server`).
//   * A run is published, and its handles returned, only after the server acknowledged the write;
//     its per-page XXH3-64 checksums stay in this process. The pages of a run that was not
//     acknowledged are not reported stored: the caller keeps them.
//   * A copy reads each run's record header and the pages it needs (GETRANGE), checks the header
//     against the handle and every page against its checksum. A key the server no longer has
//     (restarted without persistence, expired, evicted by its maxmemory policy) is kIo saying how
//     many pages were lost and why it may have happened, never zeros (remote.lost_pages).
//   * Errors: an OOM answer (the server's maxmemory reached) is kNoSpace, as a full disk; a lost
//     connection or a timeout is kIo. The next call reconnects (at most one attempt per server
//     every `reconnect_interval_ms`, so a dead server costs a call one connect timeout, not one
//     per page). Nothing stored is ever freed on an error.
//   * Keys are deleted (UNLINK) when all pages of a run are dropped and when the store closes,
//     unless `delete_on_drop` is false; every key also expires after `key_ttl_seconds` (default
//     one day), so a process that crashed leaves nothing behind for long. A delete that cannot
//     reach its server is retried with the next request to it.
//   * Describe() and every error name a server by its kind and port or socket file name only:
//     never its host in full, the password, or data.
//
// Fault points: store.write, store.nospace and store.short_write cut a backup at the page they
// fire on (before anything is sent); store.read, store.corrupt (bits flipped in what was received)
// and store.interrupt fire per page copied.
//
// Counters (stats.h): the store.* ones, remote.requests (commands sent), remote.reconnects,
// remote.lost_pages.
//
// Thread-safety: internally synchronised (backup_store.h). A call holds one connection per server
// it talks to, taken in server order; the run table has its own lock, never held across I/O.
#ifndef UTTM_REDIS_STORE_H_
#define UTTM_REDIS_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "uttm/backup_store.h"
#include "uttm/export.h"
#include "uttm/stats.h"
#include "uttm/status.h"

namespace uttm {

struct RedisStoreOptions {
  // "HOST:PORT" (an IPv4 or IPv6 address or a name; "[::1]:6379" for IPv6) or "unix:/path".
  // At least one; runs are spread over them by a hash of their key.
  std::vector<std::string> servers;
  // AUTH with this password when not empty (never logged). password_file is read instead when
  // it is set (its first line), so a password never needs to be on a command line.
  std::string password;
  std::string password_file;
  unsigned database = 0;                  // SELECT this database when not 0
  unsigned connect_timeout_ms = 2000;     // per connection attempt
  unsigned io_timeout_ms = 10000;         // per socket read or write
  unsigned reconnect_interval_ms = 200;   // least time between two attempts on one server
  std::uint64_t key_ttl_seconds = 86400;  // EX on every key; 0 = keys never expire
  bool delete_on_drop = true;             // UNLINK keys when dropped and at close
  // Most bytes held at once over all servers; 0 = the servers' maxmemory (INFO memory, summed)
  // when every server has one, else no cap of our own (the servers' OOM answers still count).
  std::uint64_t capacity_bytes = 0;
  unsigned connections_per_server = 4;  // 1..64
  // Most page bytes in one value (a call is cut into values of this size, pipelined): a
  // multiple of 4 KiB up to 512 MiB (the servers' default proto-max-bulk-len).
  std::uint64_t max_value_bytes = 16ull << 20;
  std::uint64_t window_bytes = 64ull << 20;  // unanswered request bytes per connection, >= 1 MiB
  Stats* stats = nullptr;                    // null = Stats::Default()
};

// Opens a connection to every server (AUTH and SELECT as asked) and checks that it answers.
// Errors, each naming the server by kind and port or socket name: kInvalid (no server, a
// malformed address, options out of range, an unreadable or empty password file), kIo (cannot
// connect, or the server answered with an error), kInvalid for a rejected password ("wrong
// password" or "no password was set on the server") or database.
UTTM_EXPORT Result<std::unique_ptr<BackupStore>> NewRedisStore(const RedisStoreOptions& options);

// Makes CreateBackupStore (backup_store_factory.h) accept "redis:ADDRESS" (ADDRESS as in
// `servers`, e.g. "redis:127.0.0.1:6379" or "redis:unix:/run/redis.sock") with the options
// server=ADDRESS (another server; repeatable), password_file=PATH, db=N, timeout=MS (I/O),
// connect_timeout=MS, ttl=SECONDS, keep_keys (delete_on_drop off), cap=SIZE, value=SIZE
// (max_value_bytes) and conns=N. The
// password is taken from password_file or the UTTM_REDIS_PASSWORD environment variable, never
// from the spec. Idempotent, thread-safe.
UTTM_EXPORT void RegisterRedisStoreKind();

}  // namespace uttm

#endif  // UTTM_REDIS_STORE_H_
