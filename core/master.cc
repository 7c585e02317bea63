#include "core/master.hh"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/deadline.hh"
#include "core/lifecycle.hh"
#include "core/log.hh"
#include "core/log_master.hh"
#include "core/procname.hh"
#include "core/stats.hh"
#include "core/stats_server.hh"
#include "core/stuck.hh"
#include "core/worker.hh"
#include "core/worker_slot.hh"

#if defined(__SANITIZE_ADDRESS__)
#include <dirent.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace spindle::core {

namespace {

std::string g_start_dir;

struct Child {
  pid_t pid = 0;
  int id = 0;            // worker number, 1..processes
  bool current = true;   // false once replaced by a reload: not respawned
  Deadline kill_at;  // when a stopping child gets SIGKILL
  std::int64_t started_ms = 0;
  int start_failures = 0;  // this worker's predecessors that failed at start, in a row
};

// A worker that dies before it is ready (a post-fork hook that calls
// sys.exit, a resource it cannot get yet) is respawned after a back-off that
// doubles from kFirstBackoff up to kMaxBackoff, so a broken start neither
// spins the master nor floods the log; a database that comes back later
// still gets its workers.
constexpr double kFirstBackoff = 0.5;
constexpr double kMaxBackoff = 30.0;

// A respawn that waits for its back-off to run out.
struct PendingSpawn {
  int id = 0;
  int start_failures = 0;
  Deadline at;
};

class Master {
 public:
  Master(const Config& cfg, std::vector<Listener>& listeners, char** argv)
      : cfg_(cfg), listeners_(listeners), argv_(argv) {}
  int run();

 private:
  pid_t spawn(int id, int start_failures = 0);
  void reap();
  void reload();
  bool reexec();
  bool new_code_starts();
  void adopt_old_workers();
  void stop_all();
  void check_harakiri();
  void check_deadlines();
  // A stopping worker gets the mercy to finish, then a moment to exit.
  Deadline stop_deadline() const { return Deadline::after(cfg_.reload_mercy + 2.0); }
  void chain_reload();
  void chain_next();
  void check_chain();
  void spawn_due();

  const Config& cfg_;
  std::vector<Listener>& listeners_;
  char** argv_;
  WorkerSlot* slots_ = nullptr;  // shared with the workers, index id-1
  std::vector<Child> children_;
  bool stopping_ = false;
  std::vector<PendingSpawn> pending_;  // workers waiting out a start back-off
  sigset_t signals_;
  // A --lazy-apps reload in progress: the worker ids still to replace, and
  // the new worker being waited for with the old one it replaces.
  std::vector<int> chain_;
  pid_t chain_new_ = 0;
  pid_t chain_old_ = 0;
  Lifecycle life_{cfg_};  // hooks, attached daemons, touch-reload, recycling
  void check_recycle();
};

const char* signal_name(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGPIPE: return "SIGPIPE";
    default: return "SIG?";
  }
}

// _exit skips LeakSanitizer's check at exit, so under `make asan` a worker
// runs it itself. Not while the app left threads running: their Python frames
// live in memory the interpreter maps itself, which LeakSanitizer does not
// scan, so what those frames hold would be reported as lost.
void check_leaks_before_exit() {
#if defined(__SANITIZE_ADDRESS__)
  int threads = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) threads += e->d_name[0] != '.';
    closedir(d);
  }
  if (threads == 1) __lsan_do_leak_check();
#endif
}

pid_t Master::spawn(int id, int start_failures) {
  WorkerSlot& slot = slots_[id - 1];
  stats::worker_spawning(id);
  pid_t pid = fork();
  if (pid < 0) {
    log(Level::kError, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    log_master::child_side();
    sigprocmask(SIG_UNBLOCK, &signals_, nullptr);
    close_stats_server();
    set_procname(procname_for(cfg_, id));
    int status = run_worker_process(cfg_, listeners_, id, &slot);
    check_leaks_before_exit();
    _exit(status);
  }
  stats::put(slot.pid, pid);
  Child c;
  c.pid = pid;
  c.id = id;
  c.started_ms = monotonic_ms();
  c.start_failures = start_failures;
  children_.push_back(c);
  return pid;
}

void Master::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (life_.reaped(pid, status)) continue;
    std::size_t i = 0;
    while (i < children_.size() && children_[i].pid != pid) ++i;
    if (i == children_.size()) continue;
    Child c = children_[i];
    children_.erase(children_.begin() + static_cast<long>(i));
    char how[64];
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      snprintf(how, sizeof how, "killed by signal %d (%s)", sig, signal_name(sig));
    } else {
      snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    }
    if (pid == chain_new_) {
      // The new code does not start: keep the rest of the old generation.
      log(Level::kError, "reload stopped: the new worker %d (pid %d) %s before it was ready; "
                         "the current workers keep serving", c.id, static_cast<int>(pid), how);
      for (Child& o : children_)
        if (o.pid == chain_old_) o.current = true;
      chain_.clear();
      chain_new_ = chain_old_ = 0;
      continue;
    }
    if (stopping_ || !c.current) {
      log(Level::kInfo, "worker %d (pid %d) %s", c.id, static_cast<int>(pid), how);
      continue;
    }
    // A worker that never got ready failed at start: respawn it after a
    // back-off. The first failure in a row is logged; the next ones only
    // lengthen the wait, until a worker of that id gets ready again.
    if (stats::get(slots_[c.id - 1].ready_pid) != pid) {
      stats::worker_exited(c.id, status);
      int failures = c.start_failures + 1;
      double wait = kFirstBackoff;
      for (int i = 1; i < failures && wait < kMaxBackoff; ++i) wait *= 2;
      if (wait > kMaxBackoff) wait = kMaxBackoff;
      if (failures == 1)
        log(Level::kWarn, "worker %d (pid %d) %s before it was ready; respawning after "
            "%.1f s, doubling up to %.0f s while it keeps failing (logged once)", c.id,
            static_cast<int>(pid), how, wait, kMaxBackoff);
      pending_.push_back({c.id, failures, Deadline::after(wait)});
      continue;
    }
    // A clean exit is a recycle (--max-requests); anything else is news.
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    stats::ExitReason why = stats::worker_exited(c.id, status);
    log(clean ? Level::kInfo : Level::kWarn, "worker %d (pid %d) %s; respawning (%s)", c.id,
        static_cast<int>(pid), how, stats::reason_name(why));
    spawn(c.id);
  }
}

// A reload re-executes the master so the app's code is loaded anew (a fork
// of the running master would serve the old code). The listening sockets
// and the old workers' pids cross the exec in the environment; the new
// master starts its workers, then asks the old ones to finish and exit.
bool Master::reexec() {
  std::string fds, olds;
  for (const Listener& l : listeners_) {
    if (!fds.empty()) fds += ',';
    fds += std::to_string(l.fd);
    int flags = fcntl(l.fd, F_GETFD);
    fcntl(l.fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  for (const Child& c : children_) {
    if (!olds.empty()) olds += ',';
    olds += std::to_string(c.id) + ":" + std::to_string(c.pid);
  }
  setenv("SPINDLE_LISTEN_FDS", fds.c_str(), 1);
  setenv("SPINDLE_OLD_WORKERS", olds.c_str(), 1);
  log(Level::kInfo, "reload: SIGHUP, re-executing the master to load the app anew");
  if (!g_start_dir.empty() && chdir(g_start_dir.c_str()) < 0)
    log(Level::kWarn, "reload: chdir %s: %s", g_start_dir.c_str(), strerror(errno));
  life_.stop();  // the new master starts its own daemons
  log_master::stop(true);  // the new master reads on from the same pipes
  execv("/proc/self/exe", argv_);
  log_master::resume_after_failed_exec();
  log(Level::kError, "reload: exec failed (%s); starting new workers from this master",
      strerror(errno));
  unsetenv("SPINDLE_LISTEN_FDS");
  unsetenv("SPINDLE_OLD_WORKERS");
  for (const Listener& l : listeners_) fcntl(l.fd, F_SETFD, FD_CLOEXEC);
  return false;
}

void Master::adopt_old_workers() {
  const char* olds = getenv("SPINDLE_OLD_WORKERS");
  if (!olds) return;
  Deadline deadline = stop_deadline();
  for (const char* p = olds; *p;) {
    int id = 0, pid = 0;
    if (sscanf(p, "%d:%d", &id, &pid) == 2 && pid > 0) {
      Child c;
      c.pid = pid;
      c.id = id;
      c.current = false;
      c.kill_at = deadline;
      children_.push_back(c);
      kill(pid, SIGTERM);
    }
    const char* comma = strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  unsetenv("SPINDLE_OLD_WORKERS");
}

// Before a reload replaces this master, a throwaway copy of the new one
// loads the app: a syntax error in new code must leave the old workers
// serving, not take the whole server down.
bool Master::new_code_starts() {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    sigprocmask(SIG_UNBLOCK, &signals_, nullptr);
    setenv("SPINDLE_CHECK_ONLY", "1", 1);
    if (!g_start_dir.empty() && chdir(g_start_dir.c_str()) < 0) _exit(126);
    execv("/proc/self/exe", argv_);
    _exit(127);
  }
  int status = 0;
  for (int waited_ms = 0; waited_ms < 120000; waited_ms += 50) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    usleep(50 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return false;
}

// --lazy-apps: every worker loads the app itself, so a reload needs no new
// master. The workers are replaced one at a time: a new worker for id 1, and
// once it is ready (its app loaded) the old one finishes what it holds and
// exits, then id 2, and so on. The sockets never lack a worker, and a new
// worker that fails to start stops the chain with the old ones serving.
void Master::chain_reload() {
  if (chain_new_ != 0) {
    log(Level::kWarn, "reload: one is already in progress; ignoring SIGHUP");
    return;
  }
  log(Level::kInfo, "reload: SIGHUP, replacing the workers one by one (lazy-apps)");
  reopen_logs("reload");  // as the re-executed master does: the new workers get the new file
  chain_.clear();
  for (int id = cfg_.processes; id >= 1; --id) chain_.push_back(id);
  chain_next();
}

void Master::chain_next() {
  chain_new_ = chain_old_ = 0;
  while (!chain_.empty() && chain_new_ == 0) {
    int id = chain_.back();
    chain_.pop_back();
    for (Child& c : children_) {
      if (c.id == id && c.current) {
        c.current = false;
        chain_old_ = c.pid;
      }
    }
    stats::put(slots_[id - 1].ready_pid, pid_t{0});
    pid_t pid = spawn(id);
    if (pid > 0) chain_new_ = pid;
  }
  if (chain_new_ == 0) log(Level::kInfo, "reload: done");
}

void Master::check_chain() {
  if (chain_new_ == 0) return;
  for (const Child& c : children_) {
    if (c.pid != chain_new_) continue;
    if (stats::get(slots_[c.id - 1].ready_pid) != chain_new_) return;
    log(Level::kInfo, "reload: worker %d (pid %d) is ready; stopping the old one (pid %d)",
        c.id, static_cast<int>(chain_new_), static_cast<int>(chain_old_));
    for (Child& o : children_) {
      if (o.pid == chain_old_ && chain_old_ != 0) {
        o.kill_at = stop_deadline();
        kill(o.pid, SIGTERM);
      }
    }
    chain_next();
    return;
  }
}

void Master::reload() {
  if (cfg_.lazy_apps) {
    chain_reload();
    return;
  }
  if (!new_code_starts()) {
    log(Level::kError, "reload refused: the new code does not start (see above); "
                       "the current workers keep serving");
    return;
  }
  stats::note_reload();
  if (reexec()) return;
  log(Level::kInfo, "reload: starting new workers");
  std::vector<Child> old = children_;
  for (Child& c : children_) {
    if (!c.current) continue;
    c.current = false;
    c.kill_at = stop_deadline();
  }
  // New workers first, so the sockets always have someone accepting.
  for (int id = 1; id <= cfg_.processes; ++id) spawn(id);
  for (const Child& c : old)
    if (c.current) kill(c.pid, SIGTERM);
}

void Master::check_recycle() {
  if (stopping_) return;
  for (const Child& c : children_) {
    // Only a worker that got ready: one still starting is not recycled.
    if (!c.current || stats::get(slots_[c.id - 1].ready_pid) != c.pid) continue;
    bool for_rss = false;
    int sig = life_.recycle_signal(c.pid, c.id, c.started_ms, &for_rss);
    if (!sig) continue;
    if (for_rss) stats::put(slots_[c.id - 1].kill_reason, static_cast<std::uint8_t>(stats::ExitReason::kRss));
    // A worker killed outright for its memory shows first where its requests were.
    if (sig == SIGKILL) log_stuck_worker(c.id, c.pid);
    kill(c.pid, sig);
  }
}

void Master::stop_all() {
  if (stopping_) return;
  stopping_ = true;
  life_.stop();
  log(Level::kInfo, "stopping: waiting for %zu workers", children_.size());
  Deadline deadline = stop_deadline();
  for (Child& c : children_) {
    c.kill_at = deadline;
    kill(c.pid, SIGTERM);
  }
}

void Master::check_deadlines() {
  for (Child& c : children_) {
    if (c.kill_at.passed()) {
      log(Level::kWarn, "worker %d (pid %d) did not stop in time; killing", c.id,
          static_cast<int>(c.pid));
      if (c.current) log_stuck_worker(c.id, c.pid);
      kill(c.pid, SIGKILL);
      c.kill_at = Deadline::none();
    }
  }
}

void Master::check_harakiri() {
  if (cfg_.harakiri <= 0) return;
  std::int64_t now = monotonic_ms();
  for (Child& c : children_) {
    if (!c.current) continue;
    WorkerSlot& slot = slots_[c.id - 1];
    if (stats::get(slot.pid) != c.pid) continue;
    // The thread stuck longest names the request; the whole worker goes.
    stats::Region& r = *stats::region();
    int worst = -1;
    std::int64_t oldest = 0;
    for (int t = 0; t < r.threads; ++t) {
      std::int64_t since = stats::get(r.thread(c.id, t).busy_since_ms);
      if (since != 0 && (worst < 0 || since < oldest)) {
        worst = t;
        oldest = since;
      }
    }
    if (worst < 0) continue;
    double stuck = static_cast<double>(now - oldest) / 1000.0;
    if (stuck < cfg_.harakiri) continue;
    std::string req = stats::running_line(c.id, worst);
    if (r.threads > 1) {
      log(Level::kWarn, "harakiri: worker %d (pid %d) stuck %.1fs in \"%s\" on thread %d; killing",
          c.id, static_cast<int>(c.pid), stuck, req.c_str(), worst + 1);
    } else {
      log(Level::kWarn, "harakiri: worker %d (pid %d) stuck %.1fs in \"%s\"; killing", c.id,
          static_cast<int>(c.pid), stuck, req.c_str());
    }
    for (int t = 0; t < r.threads; ++t) stats::put(r.thread(c.id, t).busy_since_ms, std::int64_t{0});
    stats::put(slot.kill_reason, static_cast<std::uint8_t>(stats::ExitReason::kHarakiri));
    stats::bump(slot.harakiri_count);
    log_stuck_worker(c.id, c.pid);
    kill(c.pid, SIGKILL);
  }
}

void Master::spawn_due() {
  for (std::size_t i = 0; i < pending_.size();) {
    if (stopping_) {
      pending_.clear();
      return;
    }
    if (!pending_[i].at.passed()) {
      ++i;
      continue;
    }
    PendingSpawn p = pending_[i];
    pending_.erase(pending_.begin() + static_cast<long>(i));
    spawn(p.id, p.start_failures);
  }
}

int Master::run() {
  slots_ = stats::create_region(cfg_).workers;
  if (!start_stats_server(cfg_, listeners_)) return 1;

  sigemptyset(&signals_);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP}) sigaddset(&signals_, s);
  sigprocmask(SIG_BLOCK, &signals_, nullptr);

  if (std::string why = log_master::start(); !why.empty()) {
    log(Level::kError, "%s", why.c_str());
    return 1;
  }
  if (!life_.master_start()) return 1;
  for (int id = 1; id <= cfg_.processes; ++id) spawn(id);
  adopt_old_workers();

  while (!(stopping_ && children_.empty())) {
    int sig = master_wait(signals_, 250);  // serves --stats / --metrics meanwhile
    if (sig == SIGCHLD) {
      reap();
    } else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
      stop_all();
    } else if (sig == SIGHUP) {
      if (!stopping_) reload();
    }
    if (stopping_) {
      chain_.clear();
      chain_new_ = chain_old_ = 0;
    }
    reap();  // SIGCHLDs coalesce; a missed one must not leave a zombie
    check_harakiri();
    check_deadlines();
    check_chain();
    spawn_due();
    if (!stopping_ && life_.touched()) reload();
    if (log_master::touched()) reopen_logs("touch-logreopen");
    life_.respawn_daemons();
    check_recycle();
  }
  log_master::stop(false);  // the workers' last lines first
  log(Level::kInfo, "stopped");
  return 0;
}

}  // namespace

int run_master(const Config& cfg, std::vector<Listener>& listeners, char** argv) {
  Master m(cfg, listeners, argv);
  return m.run();
}

void remember_start_dir() {
  char buf[4096];
  if (getcwd(buf, sizeof buf)) g_start_dir = buf;
}

bool adopt_inherited_sockets(std::vector<Listener>& listeners, std::string* why) {
  const char* env = getenv("SPINDLE_LISTEN_FDS");
  if (!env) return false;
  std::vector<int> fds;
  for (const char* p = env; *p;) {
    fds.push_back(atoi(p));
    const char* comma = strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  unsetenv("SPINDLE_LISTEN_FDS");
  if (fds.size() != listeners.size()) {
    *why = "the inherited sockets do not match the options";
    for (int fd : fds) close(fd);
    return false;
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    Listener& l = listeners[i];
    l.fd = fds[i];
    fcntl(l.fd, F_SETFD, FD_CLOEXEC);
    describe_listener(&l, listener_host(l.spec));
  }
  return true;
}

}  // namespace spindle::core
