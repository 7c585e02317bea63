// What the workers publish about themselves, for the master to read.
//
// One anonymous shared mapping, made by the master before the first fork,
// holds a WorkerSlot per worker and a CoreStat per async core of each
// worker. A worker is the only writer of its own slots; the master only
// reads them (and writes the few master-owned fields: spawn time, respawn
// and harakiri counts). Nothing is locked: every field is written with a
// relaxed atomic store (single writer, so counters are load + store, not a
// locked add) and read with a relaxed load. The request line, which is not
// one word, sits behind a per-core sequence counter (a seqlock): the reader
// retries or gives up, the writer never waits.
//
// The hot path is a few stores per request and one per core switch; the
// master reads the slots only when a client asks (--stats, --metrics) or
// when it enforces --harakiri. Nothing here ever makes a worker wait.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/worker_slot.hh"

namespace spindle::core {

struct Config;
struct Listener;

namespace stats {

// What a core is doing. "Parked" states say what it waits for.
enum class CoreState : std::uint8_t {
  kIdle = 0,  // no request
  kRunning,   // on the CPU now
  kRead,      // parked until its socket is readable (request body, wait_fd_read)
  kWrite,     // parked until its socket is writable (slow client, wait_fd_write)
  kTimer,     // parked in a sleep
  kWait,      // parked until woken: a future, spindle.suspend()
  kReady,     // re-queued through the loop (after a yield), about to run
};
const char* state_name(CoreState s);
inline constexpr int kStates = 7;

// Request latency buckets (upper bounds, seconds) of the histogram.
inline constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
inline constexpr int kBucketCount = sizeof kBuckets / sizeof kBuckets[0];  // +Inf is extra
static_assert(kBucketCount == kLatencyBuckets);

// Why a worker was replaced (the master classifies each exit).
enum class ExitReason : std::uint8_t {
  kNone = 0,
  kMaxRequests,  // recycled after --max-requests (the worker says so)
  kHarakiri,     // killed by the master for --harakiri
  kRss,          // killed by the master for --reload-on-rss
  kCrash,        // killed by a signal nobody sent on purpose
  kExit,         // exited with a non-zero status
  kCount
};
const char* reason_name(ExitReason r);

// Single-writer atomics on plain fields of the shared mapping.
template <class T>
inline void put(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}
template <class T>
inline T get(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}
inline void bump(std::uint64_t& field, std::uint64_t by = 1) { put(field, get(field) + by); }

// The mapping. Built by the master (create), inherited by every worker.
struct Region {
  int processes = 0;
  int cores = 0;
  WorkerSlot* workers = nullptr;
  CoreStat* core_slots = nullptr;  // processes * cores
  std::vector<int> dump_fds;       // per worker: where it writes a stuck dump
  std::int64_t started = 0;        // the master's start, unix seconds
  std::uint64_t reloads = 0;       // graceful reloads before this master
  std::uint64_t restarts[static_cast<int>(ExitReason::kCount)] = {};

  WorkerSlot& worker(int id) { return workers[id - 1]; }
  // How many of worker id's cores a reader looks at.
  int cores_seen(int id) {
    int n = get(workers[id - 1].cores_seen);
    return n < 0 ? 0 : n < cores ? n : cores;
  }
  CoreStat& core(int id, int core) {
    return core_slots[static_cast<std::size_t>(id - 1) * static_cast<std::size_t>(cores) +
                      static_cast<std::size_t>(core)];
  }
};

// --- master side -----------------------------------------------------------

// Maps the slots for cfg.processes workers of cfg.async cores. Fatal on failure.
Region& create_region(const Config& cfg);
Region* region();  // nullptr before create_region

// Before fork: the slot starts afresh for a new worker process.
void worker_spawning(int id);
// After waitpid: counts the exit by reason; returns the reason.
ExitReason worker_exited(int id, int status);
// The request line of the core worker `id` runs now ("" if none).
std::string running_line(int id);
// Before a reload re-executes the master: the count survives the exec.
void note_reload();

// --- worker side -----------------------------------------------------------

// In a new worker: from now on the publishing calls below write slot `id`.
void attach_worker(int id);

// This worker's slots (nullptr in the master and in unit tests).
extern WorkerSlot* g_self;
extern CoreStat* g_cores;
extern int g_core_count;

inline CoreStat* core_slot(int core) {
  return g_cores && core >= 0 && core < g_core_count ? &g_cores[core] : nullptr;
}

inline void set_state(int core, CoreState s) {
  if (CoreStat* c = core_slot(core)) put(c->state, static_cast<std::uint8_t>(s));
}

// A core switched in (running) or out (what it parks on is set before).
inline void core_running(int core, std::int64_t now_ms) {
  if (!g_self) return;
  put(g_self->running_core, core);
  if (now_ms) put(g_self->busy_since_ms, now_ms);
  set_state(core, CoreState::kRunning);
}
inline void core_switched_out() {
  if (!g_self) return;
  put(g_self->running_core, -1);
  put(g_self->busy_since_ms, std::int64_t{0});
}

void request_begin(int core, std::string_view line);
void request_end(int core, int status, std::uint64_t bytes, double seconds);
void io_error(int core, bool write);

inline void set_queued(std::size_t n) {
  if (g_self) put(g_self->queued, static_cast<std::uint32_t>(n));
}
inline void set_connections(std::size_t n) {
  if (g_self) put(g_self->connections, static_cast<std::uint32_t>(n));
}
inline void set_accepting(bool on) {
  if (g_self) put(g_self->accepting, static_cast<std::uint8_t>(on));
}
inline void set_exit_reason(ExitReason r) {
  if (g_self) put(g_self->exit_reason, static_cast<std::uint8_t>(r));
}

// Reads a core's request line (empty if it changed under the reader twice).
std::string read_line(const CoreStat& c);

}  // namespace stats
}  // namespace spindle::core
