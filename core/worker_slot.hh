// What a worker shares with the master: one WorkerSlot per worker, one
// ThreadStat per serving thread (--threads) and one CoreStat per async core
// of each worker, in an anonymous shared mapping made before the first fork
// (core/stats.hh says who writes what, and how).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace spindle::core {

inline constexpr int kLatencyBuckets = 13;  // + one for +Inf (see stats::kBuckets)

inline constexpr std::size_t kLineSize = 200;

struct alignas(64) CoreStat {
  std::uint8_t state;            // CoreState
  std::uint32_t seq;             // odd while `line` is being written
  // CLOCK_MONOTONIC_COARSE ms when the request began; 0: no request. (The
  // wall-clock start that uWSGI reports is derived from it when read: one
  // clock read per request, not two.)
  std::int64_t started_mono_ms;
  std::uint64_t requests;
  std::uint64_t read_errors;
  std::uint64_t write_errors;
  char line[kLineSize];  // "GET /path HTTP/1.1"
};

// One serving thread of a worker: what its loop runs now. Written by that
// thread only.
struct alignas(64) ThreadStat {
  // CLOCK_MONOTONIC_COARSE ms at which the running core was switched in
  // without having parked since (0 while the loop waits): --harakiri.
  std::int64_t busy_since_ms;
  std::int32_t running_core;    // the core on the CPU, -1 none
};

struct alignas(64) WorkerSlot {
  // --- written by the worker ---
  pid_t pid;
  // Set once the worker is ready to serve (its apps loaded): a --lazy-apps
  // reload waits for it before replacing the next worker.
  pid_t ready_pid;
  std::uint8_t accepting;     // 0 once draining
  std::uint8_t exit_reason;   // set just before a deliberate exit
  // 1 + the highest core id that ever took a request. Cores are made on
  // demand, lowest id first, so readers scan [0, cores_seen) rather than
  // every core --async allows (up to a million).
  std::int32_t cores_seen;
  std::uint32_t in_flight;    // cores holding a request
  std::uint32_t queued;       // connections with a request waiting for a core
  std::uint32_t connections;  // open client connections
  std::uint64_t requests;
  std::uint64_t exceptions;  // answered 500 by the server for the app
  std::uint64_t tx;          // response body bytes
  std::uint64_t running_us;  // time spent in requests (sum of latencies)
  std::uint64_t avg_rt_us;   // moving average of the latency
  std::uint64_t status[6];   // responses by class: [0] other, [1] 1xx .. [5] 5xx
  std::uint64_t buckets[kLatencyBuckets + 1];
  // --- written by the master ---
  std::int64_t last_spawn;  // unix seconds
  std::uint64_t respawn_count;
  std::uint64_t harakiri_count;
  std::uint8_t kill_reason;  // ExitReason the master killed it for
};

std::int64_t monotonic_ms();

}  // namespace spindle::core
