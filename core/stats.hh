// What the workers publish about themselves, for the master to read.
//
// One anonymous shared mapping, made by the master before the first fork,
// holds a WorkerSlot per worker, a ThreadStat per serving thread and a
// CoreStat per async core of each worker (--async x --threads). A worker is
// the only writer of its own slots (a thread of its own ThreadStat, a core's
// thread of its CoreStat); the master only reads them (and writes the few
// master-owned fields: spawn time, respawn and harakiri counts). Nothing is
// locked: every field is written with a relaxed atomic store and read with a
// relaxed load. With one serving thread counters are load + store (single
// writer); with several, the worker-wide ones are atomic adds. The request line, which is not
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
// True in a worker with several serving threads: WorkerSlot counters then
// have several writers.
extern bool g_shared;
template <class T>
inline void add(T& field, T by) {
  if (g_shared) std::atomic_ref<T>(field).fetch_add(by, std::memory_order_relaxed);
  else put(field, static_cast<T>(get(field) + by));
}
inline void bump(std::uint64_t& field, std::uint64_t by = 1) { add(field, by); }

// The mapping. Built by the master (create), inherited by every worker.
struct Region {
  int processes = 0;
  int cores = 0;                   // per worker: --async x --threads
  int threads = 1;                 // serving threads per worker
  WorkerSlot* workers = nullptr;
  ThreadStat* thread_slots = nullptr;  // processes * threads
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
  ThreadStat& thread(int id, int t) {
    return thread_slots[static_cast<std::size_t>(id - 1) * static_cast<std::size_t>(threads) +
                        static_cast<std::size_t>(t)];
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
// The request line of the core thread `t` of worker `id` runs now ("" if none).
std::string running_line(int id, int t);
// A core that runs now in worker `id`, on any of its threads (-1 if none).
int any_running_core(int id);
// Before a reload re-executes the master: the count survives the exec.
void note_reload();

// --- worker side -----------------------------------------------------------

// In a new worker: from now on the publishing calls below write slot `id`.
void attach_worker(int id);
// On each serving thread of it: core switches publish into thread `t`'s slot.
void attach_thread(int t);

// This worker's slots (nullptr in the master and in unit tests).
extern WorkerSlot* g_self;
extern CoreStat* g_cores;
extern int g_core_count;
extern ThreadStat* g_threads;  // this worker's threads' slots
extern int g_thread_count;
extern thread_local ThreadStat* t_thread;  // the calling serving thread's

// A core of this worker on a CPU now, on any thread (-1 if none).
inline int any_running_core_here() {
  for (int t = 0; g_threads && t < g_thread_count; ++t) {
    int c = get(g_threads[t].running_core);
    if (c >= 0) return c;
  }
  return -1;
}

// Whether core `core` of this worker is on a CPU now (any thread).
inline bool is_running(int core) {
  for (int t = 0; g_threads && t < g_thread_count; ++t)
    if (get(g_threads[t].running_core) == core) return true;
  return false;
}

inline CoreStat* core_slot(int core) {
  return g_cores && core >= 0 && core < g_core_count ? &g_cores[core] : nullptr;
}

inline void set_state(int core, CoreState s) {
  if (CoreStat* c = core_slot(core)) put(c->state, static_cast<std::uint8_t>(s));
}

// A core switched in (running) or out (what it parks on is set before).
inline void core_running(int core, std::int64_t now_ms) {
  ThreadStat* t = t_thread;
  if (!t) return;
  put(t->running_core, core);
  if (now_ms) put(t->busy_since_ms, now_ms);
  set_state(core, CoreState::kRunning);
}
inline void core_switched_out() {
  ThreadStat* t = t_thread;
  if (!t) return;
  put(t->running_core, -1);
  put(t->busy_since_ms, std::int64_t{0});
}

void request_begin(int core, std::string_view line);
void request_end(int core, int status, std::uint64_t bytes, double seconds);
void io_error(int core, bool write);

// Gauges the threads of a worker add up: each thread reports its own count
// and the slot moves by the difference.
inline void set_gauge(std::uint32_t& field, std::uint32_t& mine, std::size_t n) {
  auto v = static_cast<std::uint32_t>(n);
  add(field, static_cast<std::uint32_t>(v - mine));  // wraps back on a decrease
  mine = v;
}
extern thread_local std::uint32_t t_queued, t_connections;
inline void set_queued(std::size_t n) {
  if (g_self) set_gauge(g_self->queued, t_queued, n);
}
inline void set_connections(std::size_t n) {
  if (g_self) set_gauge(g_self->connections, t_connections, n);
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
