// The log master: see log_master.hh.
#include "core/log_master.hh"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/deploy.hh"
#include "core/log.hh"
#include "core/options.hh"

namespace spindle::core {

namespace {

// Longest line kept whole by default: spindle's own lines reach ~33 KiB
// (an 8 KiB message with every byte escaped).
constexpr std::size_t kDefaultBufsize = 64 * 1024;
// A partial line waits this long for the rest of it.
constexpr std::int64_t kPartialWaitMs = 1000;

struct Settings {
  bool enabled = false;
  long bufsize = static_cast<long>(kDefaultBufsize);
  std::vector<std::string> touch_reopen;  // --touch-logreopen FILE
};

Settings& settings() {
  static Settings s;
  return s;
}

std::int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// One socket pair: the master reads [0], the children write [1].
struct Pair {
  int r = -1, w = -1;
};

struct Partial {
  std::string text;
  std::int64_t since_ms = 0;
};

// What the writer thread reads from one pair: each writer's unfinished line.
struct Stream {
  Pair pair;
  bool request = false;
  std::unordered_map<pid_t, Partial> partial;
};

struct State {
  Stream lines;           // stdout, stderr and log lines of the children
  Stream requests;        // access lines, when --req-logger names files
  int orig = -1;          // the master's own log (its stderr before the pipe)
  int wake = -1;          // eventfd: the thread should stop
  std::thread* thread = nullptr;  // a pointer: a forked child just forgets it
  bool running = false;
  bool adopted = false;   // pairs taken over from before a reload's exec
  std::vector<std::int64_t> mtimes;  // of the --touch-logreopen files
};

State g;

void write_out(const Stream& s, const char* p, std::size_t n) { log_write_raw(p, n, s.request); }

// The unfinished line of one writer goes out as it is (with a newline).
void flush_partial(const Stream& s, Partial& part) {
  if (part.text.empty()) return;
  part.text.push_back('\n');
  write_out(s, part.text.data(), part.text.size());
  part.text.clear();
}

// Bytes from one writer: complete lines go out at once (one write), the
// rest waits for its newline.
void take(Stream& s, pid_t pid, const char* p, std::size_t n) {
  Partial& part = s.partial[pid];
  const std::size_t cap = static_cast<std::size_t>(settings().bufsize);
  const char* last_nl = static_cast<const char*>(memrchr(p, '\n', n));
  if (last_nl) {
    const std::size_t whole = static_cast<std::size_t>(last_nl - p) + 1;
    if (part.text.empty()) {
      write_out(s, p, whole);
    } else {
      part.text.append(p, whole);
      write_out(s, part.text.data(), part.text.size());
      part.text.clear();
    }
    p += whole;
    n -= whole;
  }
  if (n == 0) {
    s.partial.erase(pid);
    return;
  }
  if (part.text.empty()) part.since_ms = now_ms();
  part.text.append(p, n);
  // A line longer than --log-master-bufsize goes out in pieces of that size.
  while (part.text.size() >= cap) {
    std::string rest = part.text.substr(cap);
    part.text.resize(cap);
    flush_partial(s, part);
    part.text = std::move(rest);
  }
}

// Reads what is there (the fd is non-blocking). False when the pair is
// closed for good.
bool drain(Stream& s) {
  static thread_local std::vector<char> buf;
  buf.resize(static_cast<std::size_t>(settings().bufsize) + 4096);
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t k = recvmsg(s.pair.r, &msg, MSG_CMSG_CLOEXEC);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (k == 0) return false;
    pid_t pid = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        pid = cred.pid;
      }
    }
    take(s, pid, buf.data(), static_cast<std::size_t>(k));
  }
}

void flush_old(Stream& s, bool all) {
  const std::int64_t now = now_ms();
  for (auto it = s.partial.begin(); it != s.partial.end();) {
    if (all || now - it->second.since_ms >= kPartialWaitMs) {
      flush_partial(s, it->second);
      it = s.partial.erase(it);
    } else {
      ++it;
    }
  }
}

void run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are the main thread's
  std::vector<Stream*> streams{&g.lines};
  if (g.requests.pair.r >= 0) streams.push_back(&g.requests);
  for (;;) {
    std::vector<pollfd> fds{{g.wake, POLLIN, 0}};
    bool waiting = false;
    for (Stream* s : streams) {
      fds.push_back({s->pair.r, POLLIN, 0});
      waiting = waiting || !s->partial.empty();
    }
    int n = poll(fds.data(), fds.size(), waiting ? 250 : -1);
    if (n < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < streams.size(); ++i)
      if (fds[i + 1].revents) drain(*streams[i]);
    for (Stream* s : streams) flush_old(*s, false);
    if (fds[0].revents) break;  // stop: what is readable now is written first
  }
  for (Stream* s : streams) {
    drain(*s);
    flush_old(*s, true);
  }
}

std::string make_pair(Pair* p) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    return std::string("log-master: socketpair: ") + strerror(errno);
  p->r = fds[0];
  p->w = fds[1];
  return {};
}

void prepare_reader(const Pair& p) {
  int one = 1;
  setsockopt(p.r, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  fcntl(p.r, F_SETFL, fcntl(p.r, F_GETFL) | O_NONBLOCK);
}

void set_cloexec(int fd, bool on) {
  if (fd < 0) return;
  int flags = fcntl(fd, F_GETFD);
  fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
}

constexpr const char* kEnv = "SPINDLE_LOG_MASTER";

std::int64_t mtime_ns(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return -1;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

namespace log_master {

bool enabled() { return settings().enabled; }

void adopt_after_exec() {
  const char* env = getenv(kEnv);
  if (!env) return;
  int v[5] = {-1, -1, -1, -1, -1};
  sscanf(env, "%d,%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3], &v[4]);
  unsetenv(kEnv);
  if (v[0] < 0 || v[1] < 0 || v[2] < 0) return;
  // Our stderr is the pipe: the log is where it was before it.
  dup2(v[2], STDOUT_FILENO);
  dup2(v[2], STDERR_FILENO);
  close(v[2]);
  g.lines.pair = {v[0], v[1]};
  g.requests.pair = {v[3], v[4]};
  for (int fd : v) set_cloexec(fd, true);
  g.adopted = true;
}

std::string start() {
  Settings& s = settings();
  for (const std::string& f : s.touch_reopen) g.mtimes.push_back(mtime_ns(f));
  // Without --log-master, pairs adopted from before a reload are still read
  // until the old workers are gone; the new ones write the log themselves.
  if (!s.enabled && !g.adopted) return {};
  if (g.lines.pair.r < 0) {
    if (std::string why = make_pair(&g.lines.pair); !why.empty()) return why;
  }
  if (g.requests.pair.r < 0 && has_request_log_files()) {
    if (std::string why = make_pair(&g.requests.pair); !why.empty()) return why;
  }
  g.requests.request = true;
  prepare_reader(g.lines.pair);
  if (g.requests.pair.r >= 0) prepare_reader(g.requests.pair);
  g.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g.wake < 0) return std::string("log-master: eventfd: ") + strerror(errno);
  std::fflush(stdout);
  std::fflush(stderr);
  if (s.enabled) {
    g.orig = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (g.orig < 0) return std::string("log-master: dup: ") + strerror(errno);
    set_log_direct_fd(g.orig);
    dup2(g.lines.pair.w, STDOUT_FILENO);
    dup2(g.lines.pair.w, STDERR_FILENO);
  }
  g.thread = new std::thread(run);
  g.running = true;
  return {};
}

void child_side() {
  if (!g.running) return;
  // The writer thread does not exist here: none of its state is touched.
  if (settings().enabled) {
    log_route_to(g.requests.pair.w);
    if (g.orig >= 0) close(g.orig);
  }
  close(g.lines.pair.r);
  if (g.requests.pair.r >= 0) close(g.requests.pair.r);
  close(g.wake);
  if (!settings().enabled) {
    // Adopted pairs only: this child writes the log itself.
    close(g.lines.pair.w);
    if (g.requests.pair.w >= 0) close(g.requests.pair.w);
  }
  // The thread is not in this process, and what it was doing at the fork
  // (its partial lines) is left as it was, untouched.
  g.running = false;
  g.thread = nullptr;
  g.orig = g.wake = -1;
  g.lines.pair = g.requests.pair = Pair{};
}

void stop(bool pass_on) {
  if (!g.running) return;
  std::uint64_t one = 1;
  ssize_t ignored = write(g.wake, &one, sizeof one);
  (void)ignored;
  g.thread->join();
  delete g.thread;
  g.thread = nullptr;
  g.running = false;
  close(g.wake);
  g.wake = -1;
  if (!pass_on || !settings().enabled) return;
  // The next master (the same pid after exec) reads on from the same
  // pairs, and writes to the log its stderr was before them.
  char env[96];
  snprintf(env, sizeof env, "%d,%d,%d,%d,%d", g.lines.pair.r, g.lines.pair.w, g.orig,
           g.requests.pair.r, g.requests.pair.w);
  for (int fd : {g.lines.pair.r, g.lines.pair.w, g.orig, g.requests.pair.r, g.requests.pair.w})
    set_cloexec(fd, false);
  setenv(kEnv, env, 1);
}

void resume_after_failed_exec() {
  unsetenv(kEnv);
  for (int fd : {g.lines.pair.r, g.lines.pair.w, g.orig, g.requests.pair.r, g.requests.pair.w})
    set_cloexec(fd, true);
  g.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  g.thread = new std::thread(run);
  g.running = true;
}

bool touched() {
  bool changed = false;
  const Settings& s = settings();
  for (std::size_t i = 0; i < s.touch_reopen.size() && i < g.mtimes.size(); ++i) {
    std::int64_t m = mtime_ns(s.touch_reopen[i]);
    if (m != g.mtimes[i]) {
      g.mtimes[i] = m;
      changed = true;
    }
  }
  return changed;
}

}  // namespace log_master

void reopen_logs(const char* why) {
  std::string failed;
  const std::string& path = log_file_path();
  int fd = reopen_log_file(&failed);
  if (fd >= 0) {
    // The old file keeps what was written before; the new one gets the rest.
    if (g.orig >= 0) {
      dup3(fd, g.orig, O_CLOEXEC);
    } else {
      std::fflush(stdout);
      std::fflush(stderr);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    close(fd);
  }
  std::string more = reopen_log_files();
  if (!more.empty()) failed += (failed.empty() ? "" : "; ") + more;
  if (!failed.empty()) {
    log(Level::kError, "%s: reopening the log: %s", why, failed.c_str());
  } else {
    log(Level::kInfo, "%s: log reopened%s%s", why, path.empty() ? "" : " ", path.c_str());
  }
}

void add_log_master_options(OptionTable& t) {
  using T = OptionTable;
  Settings& s = settings();
  t.add({"log-master", 0, false, "",
         "the workers' output and log lines go through the master, which writes the log",
         T::flag(s.enabled)});
  t.add({"threaded-logger", 0, false, "",
         "same as --log-master (its writer is a thread of the master)", T::flag(s.enabled)});
  t.add({"log-master-bufsize", 0, true, "BYTES",
         "with --log-master, the longest line kept whole (default 65536)",
         T::integer(s.bufsize, 256, 16L << 20)});
  t.add({"touch-logreopen", 0, true, "FILE",
         "reopen the log files when FILE's mtime changes (implies --log-master)",
         [&s](std::string_view v) -> std::string {
           s.touch_reopen.emplace_back(v);
           s.enabled = true;
           return {};
         },
         true});
}

}  // namespace spindle::core
