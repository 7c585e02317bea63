#include "core/stats.hh"

#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/config.hh"
#include "core/log.hh"

namespace spindle::core::stats {

WorkerSlot* g_self = nullptr;
CoreStat* g_cores = nullptr;
int g_core_count = 0;
ThreadStat* g_threads = nullptr;
int g_thread_count = 0;
bool g_shared = false;
thread_local ThreadStat* t_thread = nullptr;
thread_local std::uint32_t t_queued = 0, t_connections = 0;

namespace {

Region* g_region = nullptr;

std::int64_t wall_us() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<std::int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

}  // namespace

const char* state_name(CoreState s) {
  switch (s) {
    case CoreState::kIdle:
      return "idle";
    case CoreState::kRunning:
      return "running";
    case CoreState::kRead:
      return "read";
    case CoreState::kWrite:
      return "write";
    case CoreState::kTimer:
      return "timer";
    case CoreState::kWait:
      return "wait";
    case CoreState::kReady:
      return "ready";
  }
  return "?";
}

const char* reason_name(ExitReason r) {
  switch (r) {
    case ExitReason::kNone:
      return "none";
    case ExitReason::kMaxRequests:
      return "max-requests";
    case ExitReason::kHarakiri:
      return "harakiri";
    case ExitReason::kRss:
      return "reload-on-rss";
    case ExitReason::kCrash:
      return "signal";
    case ExitReason::kExit:
      return "exit";
    case ExitReason::kCount:
      break;
  }
  return "?";
}

Region& create_region(const Config& cfg) {
  static Region r;
  r.processes = cfg.processes;
  r.threads = cfg.threads > 0 ? cfg.threads : 1;
  r.cores = (cfg.async > 0 ? cfg.async : 1) * r.threads;
  std::size_t n = static_cast<std::size_t>(r.processes);
  std::size_t nt = n * static_cast<std::size_t>(r.threads);
  std::size_t bytes = sizeof(WorkerSlot) * n + sizeof(ThreadStat) * nt +
                      sizeof(CoreStat) * n * static_cast<std::size_t>(r.cores);
  // Zero-filled and touched only where written: a large --async costs
  // address space, not memory.
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) fatal("mmap of the stats slots (%zu bytes): %s", bytes, strerror(errno));
  r.workers = static_cast<WorkerSlot*>(mem);
  r.thread_slots = reinterpret_cast<ThreadStat*>(r.workers + n);
  r.core_slots = reinterpret_cast<CoreStat*>(r.thread_slots + nt);
  for (std::size_t t = 0; t < nt; ++t) put(r.thread_slots[t].running_core, -1);
  for (int i = 0; i < r.processes; ++i) {
    int fd = memfd_create("spindle-dump", MFD_CLOEXEC);
    r.dump_fds.push_back(fd);  // -1: stuck workers are logged without a traceback
  }
  r.started = wall_us() / 1000000;
  if (const char* s = getenv("SPINDLE_RELOADS")) r.reloads = strtoull(s, nullptr, 10);
  g_region = &r;
  return r;
}

Region* region() { return g_region; }

void worker_spawning(int id) {
  if (!g_region || id < 1 || id > g_region->processes) return;
  WorkerSlot& w = g_region->worker(id);
  // Counters restart with the process (uWSGI's do too); the master's own
  // fields carry over.
  // uWSGI counts the first spawn too: respawn_count is 1 for a fresh worker.
  std::uint64_t spawns = get(w.respawn_count);
  std::uint64_t harakiri = get(w.harakiri_count);
  int seen = get(w.cores_seen);
  memset(static_cast<void*>(&w), 0, sizeof w);
  put(w.cores_seen, seen);  // cleared below with the cores themselves
  for (int t = 0; t < g_region->threads; ++t) {
    ThreadStat& ts = g_region->thread(id, t);
    put(ts.busy_since_ms, std::int64_t{0});
    put(ts.running_core, -1);
  }
  put(w.respawn_count, spawns + 1);
  put(w.harakiri_count, harakiri);
  put(w.last_spawn, wall_us() / 1000000);
  // Only the cores the last process used were written (and are resident).
  int used = g_region->cores_seen(id);
  for (int c = 0; c < used; ++c) {
    CoreStat& cs = g_region->core(id, c);
    memset(static_cast<void*>(&cs), 0, sizeof cs);
  }
  put(w.cores_seen, 0);
}

ExitReason worker_exited(int id, int status) {
  if (!g_region || id < 1 || id > g_region->processes) return ExitReason::kNone;
  WorkerSlot& w = g_region->worker(id);
  auto killed = static_cast<ExitReason>(get(w.kill_reason));
  auto told = static_cast<ExitReason>(get(w.exit_reason));
  ExitReason r;
  if (killed != ExitReason::kNone) {
    r = killed;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && told != ExitReason::kNone) {
    r = told;
  } else if (WIFSIGNALED(status)) {
    r = ExitReason::kCrash;
  } else {
    r = ExitReason::kExit;
  }
  ++g_region->restarts[static_cast<int>(r)];
  return r;
}

std::string running_line(int id, int t) {
  if (!g_region || id < 1 || id > g_region->processes || t < 0 || t >= g_region->threads)
    return {};
  int core = get(g_region->thread(id, t).running_core);
  if (core < 0 || core >= g_region->cores) return {};
  return read_line(g_region->core(id, core));
}

int any_running_core(int id) {
  if (!g_region || id < 1 || id > g_region->processes) return -1;
  for (int t = 0; t < g_region->threads; ++t) {
    int core = get(g_region->thread(id, t).running_core);
    if (core >= 0) return core;
  }
  return -1;
}

void note_reload() {
  std::uint64_t n = g_region ? g_region->reloads + 1 : 1;
  setenv("SPINDLE_RELOADS", std::to_string(n).c_str(), 1);
}

// --- worker side -------------------------------------------------------------

void attach_worker(int id) {
  if (!g_region || id < 1 || id > g_region->processes) return;
  g_self = &g_region->worker(id);
  g_cores = &g_region->core(id, 0);
  g_core_count = g_region->cores;
  g_threads = &g_region->thread(id, 0);
  g_thread_count = g_region->threads;
  g_shared = g_region->threads > 1;
  put(g_self->pid, getpid());
  put(g_self->accepting, std::uint8_t{1});
}

void attach_thread(int t) {
  if (g_threads && t >= 0 && t < g_thread_count) t_thread = &g_threads[t];
}

void request_begin(int core, std::string_view line) {
  CoreStat* c = core_slot(core);
  if (!c) return;
  // Seqlock write: odd while the bytes change. One writer, so no CAS.
  std::uint32_t seq = get(c->seq);
  put(c->seq, seq + 1);
  std::atomic_thread_fence(std::memory_order_release);
  std::size_t n = line.size() < kLineSize - 1 ? line.size() : kLineSize - 1;
  memcpy(c->line, line.data(), n);
  c->line[n] = '\0';
  std::atomic_thread_fence(std::memory_order_release);
  put(c->seq, seq + 2);
  put(c->started_mono_ms, monotonic_ms());
  if (g_shared) {
    std::atomic_ref<std::int32_t> seen(g_self->cores_seen);
    std::int32_t cur = seen.load(std::memory_order_relaxed);
    while (core >= cur && !seen.compare_exchange_weak(cur, core + 1, std::memory_order_relaxed)) {
    }
  } else if (core >= get(g_self->cores_seen)) {
    put(g_self->cores_seen, core + 1);
  }
  add(g_self->in_flight, std::uint32_t{1});
}

void request_end(int core, int status, std::uint64_t bytes, double seconds) {
  CoreStat* c = core_slot(core);
  if (!c) return;
  bump(c->requests);
  put(c->started_mono_ms, std::int64_t{0});
  WorkerSlot& w = *g_self;
  add(w.in_flight, static_cast<std::uint32_t>(-1));
  bump(w.requests);
  bump(w.tx, bytes);
  int cls = status >= 100 && status < 600 ? status / 100 : 0;
  bump(w.status[cls]);
  if (status == 500) bump(w.exceptions);
  std::uint64_t us = seconds > 0 ? static_cast<std::uint64_t>(seconds * 1e6) : 0;
  bump(w.running_us, us);
  // uWSGI's avg_rt is a running average too; weight the newest request 1/8.
  std::uint64_t avg = get(w.avg_rt_us);  // several threads: a lost update at worst
  put(w.avg_rt_us, avg ? avg - avg / 8 + us / 8 : us);
  int b = 0;
  while (b < kBucketCount && seconds > kBuckets[b]) ++b;
  bump(w.buckets[b]);
}

void io_error(int core, bool write) {
  if (CoreStat* c = core_slot(core)) bump(write ? c->write_errors : c->read_errors);
}

std::string read_line(const CoreStat& c) {
  char buf[kLineSize];
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::uint32_t before = std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(c.seq))
                               .load(std::memory_order_acquire);
    if (before & 1) continue;
    memcpy(buf, c.line, sizeof buf);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (get(c.seq) == before) {
      buf[sizeof buf - 1] = '\0';
      return buf;
    }
  }
  return {};
}

}  // namespace spindle::core::stats
