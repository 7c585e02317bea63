#include "core/stuck.hh"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.hh"
#include "core/stats.hh"

namespace spindle::core {

namespace {

constexpr char kEnd[] = "-- end of dump --\n";

TracebackDumper g_dumper = nullptr;
int g_dump_fd = -1;

// --- worker side: everything below runs in a signal handler ----------------

void put_str(int fd, const char* s) {
  std::size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void put_num(int fd, std::int64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  *--p = '\0';
  bool neg = v < 0;
  std::uint64_t u = neg ? static_cast<std::uint64_t>(-v) : static_cast<std::uint64_t>(v);
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) *--p = '-';
  put_str(fd, p);
}

std::int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // the clock the slots use
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void on_dump_signal(int) {
  int saved = errno;
  int fd = g_dump_fd;
  if (fd >= 0 && stats::g_self) {
    int running = stats::any_running_core_here();
    std::int64_t now = now_ms();
    int seen = stats::get(stats::g_self->cores_seen);
    for (int c = 0; c < seen && c < stats::g_core_count; ++c) {
      CoreStat& cs = stats::g_cores[c];
      bool on_cpu = stats::is_running(c);
      if (!stats::get(cs.started_mono_ms) && !on_cpu) continue;
      auto state = static_cast<stats::CoreState>(stats::get(cs.state));
      put_str(fd, "core ");
      put_num(fd, c);
      put_str(fd, on_cpu ? " (running" : " (parked: ");
      if (!on_cpu) put_str(fd, stats::state_name(state));
      put_str(fd, ")");
      if (stats::get(cs.started_mono_ms)) {
        std::int64_t ms = now - stats::get(cs.started_mono_ms);
        put_str(fd, ", request running for ");
        put_num(fd, ms / 1000);
        put_str(fd, ".");
        put_num(fd, (ms % 1000) / 100);
        put_str(fd, "s: \"");
        // This thread is the line's only writer; a signal that lands while
        // a new request's line is being copied shows a mix of the two, which
        // the header's running time (from the new request) makes plain.
        char line[kLineSize];
        memcpy(line, cs.line, sizeof line);
        line[sizeof line - 1] = '\0';
        put_str(fd, line);
        put_str(fd, "\"");
      }
      put_str(fd, "\n");
      if (g_dumper) g_dumper(fd, c);
    }
    if (running < 0) {
      put_str(fd, "main context (no core running)\n");
      if (g_dumper) g_dumper(fd, -1);
    }
  }
  if (fd >= 0) put_str(fd, kEnd);
  errno = saved;
}

}  // namespace

int dump_signal() { return SIGRTMIN + 3; }

void set_traceback_dumper(TracebackDumper dumper) { g_dumper = dumper; }

void install_stuck_dump(int id) {
  stats::Region* r = stats::region();
  int fd = r && id >= 1 && id <= r->processes ? r->dump_fds[static_cast<std::size_t>(id - 1)] : -1;
  g_dump_fd = fd;
  if (fd < 0) return;
  // The handler may interrupt a core on a small fiber stack: give it its own.
  static char* alt = nullptr;
  constexpr std::size_t kAltSize = 256 * 1024;
  if (!alt) alt = static_cast<char*>(malloc(kAltSize));
  if (alt) {
    stack_t st{};
    st.ss_sp = alt;
    st.ss_size = kAltSize;
    sigaltstack(&st, nullptr);
  }
  struct sigaction sa {};
  sa.sa_handler = on_dump_signal;
  sa.sa_flags = SA_RESTART | (alt ? SA_ONSTACK : 0);
  sigemptyset(&sa.sa_mask);
  sigaction(dump_signal(), &sa, nullptr);
}

// --- master side ----------------------------------------------------------------

void log_stuck_worker(int id, pid_t pid) {
  stats::Region* r = stats::region();
  if (!r || id < 1 || id > r->processes) return;
  int fd = r->dump_fds[static_cast<std::size_t>(id - 1)];
  if (fd < 0 || stats::get(r->worker(id).pid) != pid) return;
  // The file offset is shared with the worker (one open file, inherited):
  // rewinding it here makes the worker write from the start.
  if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) return;
  if (kill(pid, dump_signal()) < 0) return;
  std::string text;
  // A worker stuck in the kernel (uninterruptible I/O) never runs the
  // handler; a second is all the master waits.
  for (int waited = 0; waited < 1000; waited += 5) {
    struct timespec ts {
      0, 5 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) continue;
    text.resize(static_cast<std::size_t>(st.st_size));
    ssize_t n = pread(fd, text.data(), text.size(), 0);
    if (n < 0) n = 0;
    text.resize(static_cast<std::size_t>(n));
    if (text.size() >= sizeof kEnd - 1 &&
        text.compare(text.size() - (sizeof kEnd - 1), std::string::npos, kEnd) == 0) {
      text.resize(text.size() - (sizeof kEnd - 1));
      break;
    }
  }
  if (text.empty()) {
    log(Level::kWarn, "worker %d (pid %d) gave no dump of its cores", id, static_cast<int>(pid));
    return;
  }
  log(Level::kWarn, "worker %d (pid %d) cores at the kill:", id, static_cast<int>(pid));
  log_text(Level::kWarn, text.data(), text.size());
}

}  // namespace spindle::core
