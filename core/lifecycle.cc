#include "core/lifecycle.hh"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/config.hh"
#include "core/log.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {

// A daemon that lived less than this died at start: back off before the next.
constexpr std::int64_t kQuickDeathMs = 2000;
constexpr double kMaxBackoffSeconds = 60;

std::int64_t mtime_ns(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return -1;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::uint64_t rss_bytes(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<std::uint64_t>(resident) * sysconf(_SC_PAGESIZE) : 0;
}

bool run_command(const std::string& cmd, const char* phase) {
  log(Level::kInfo, "%s: running \"%s\"", phase, cmd.c_str());
  pid_t pid = fork();
  if (pid < 0) {
    log(Level::kError, "%s: fork: %s", phase, strerror(errno));
    return false;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  log(Level::kError, "%s: \"%s\" failed (%s %d)", phase, cmd.c_str(),
      WIFEXITED(status) ? "exit status" : "signal",
      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return false;
}

}  // namespace

bool run_hooks(const std::vector<std::string>& actions, const char* phase) {
  for (const std::string& a : actions) {
    std::size_t colon = a.find(':');
    std::string kind = colon == std::string::npos ? a : a.substr(0, colon);
    std::string arg = colon == std::string::npos ? std::string() : a.substr(colon + 1);
    if (kind == "exec" || kind == "sh") {
      if (!run_command(arg, phase)) return false;
    } else if (kind == "print" || kind == "log") {
      log(Level::kInfo, "%s", arg.c_str());
    } else if (kind == "mkdir") {
      if (mkdir(arg.c_str(), 0777) < 0 && errno != EEXIST) {
        log(Level::kError, "%s: mkdir %s: %s", phase, arg.c_str(), strerror(errno));
        return false;
      }
    } else if (kind == "unlink") {
      unlink(arg.c_str());
    } else if (kind == "write") {
      std::size_t sp = arg.find(' ');
      std::string file = arg.substr(0, sp);
      std::FILE* f = std::fopen(file.c_str(), "w");
      if (!f) {
        log(Level::kError, "%s: write %s: %s", phase, file.c_str(), strerror(errno));
        return false;
      }
      if (sp != std::string::npos) std::fputs(arg.c_str() + sp + 1, f);
      std::fclose(f);
    } else {
      log(Level::kWarn, "%s: hook action '%s' is not supported (exec, print, log, mkdir, "
                        "unlink, write are); skipped", phase, kind.c_str());
    }
  }
  return true;
}

Lifecycle::Lifecycle(const Config& cfg) : cfg_(cfg) {
  for (const std::string& c : cfg.attach_daemons) daemons_.push_back(Daemon{c});
  for (const std::string& f : cfg.touch_reload) mtimes_.push_back(mtime_ns(f));
}

bool Lifecycle::master_start() {
  if (!run_hooks(cfg_.hook_master_start, "hook-master-start")) return false;
  for (Daemon& d : daemons_) start_daemon(d);
  return true;
}

void Lifecycle::start_daemon(Daemon& d) {
  pid_t pid = fork();
  if (pid < 0) {
    log(Level::kError, "attach-daemon: fork: %s", strerror(errno));
    d.restart_at = Deadline::after(1);
    return;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    execl("/bin/sh", "sh", "-c", d.command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  d.pid = pid;
  d.started_ms = monotonic_ms();
  d.restart_at = Deadline::none();
  log(Level::kInfo, "attach-daemon: started \"%s\" (pid %d)", d.command.c_str(),
      static_cast<int>(pid));
}

bool Lifecycle::reaped(pid_t pid, int status) {
  for (Daemon& d : daemons_) {
    if (d.pid != pid) continue;
    d.pid = 0;
    if (stopping_) return true;
    bool quick = monotonic_ms() - d.started_ms < kQuickDeathMs;
    d.failures = quick ? d.failures + 1 : 0;
    double wait = quick ? std::min(kMaxBackoffSeconds, 0.5 * (1 << std::min(d.failures, 8))) : 0;
    // One line per death; a daemon that keeps failing at start says how
    // long it waits, doubling each time, instead of flooding the log.
    log(Level::kWarn, "attach-daemon: \"%s\" (pid %d) %s %d; respawning%s", d.command.c_str(),
        static_cast<int>(pid), WIFEXITED(status) ? "exited with status" : "killed by signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
        quick ? (" in " + std::to_string(static_cast<int>(wait * 1000)) + " ms").c_str() : "");
    d.restart_at = Deadline::after(wait);
    return true;
  }
  return false;
}

void Lifecycle::respawn_daemons() {
  if (stopping_) return;
  for (Daemon& d : daemons_)
    if (d.pid == 0 && d.restart_at.passed()) start_daemon(d);
}

bool Lifecycle::touched() {
  bool changed = false;
  for (std::size_t i = 0; i < mtimes_.size(); ++i) {
    std::int64_t m = mtime_ns(cfg_.touch_reload[i]);
    if (m != mtimes_[i]) {
      if (m >= 0 && mtimes_[i] >= 0) {
        log(Level::kInfo, "touch-reload: %s changed", cfg_.touch_reload[i].c_str());
        changed = true;
      }
      mtimes_[i] = m;
    }
  }
  return changed;
}

int Lifecycle::recycle_signal(pid_t pid, int id, std::int64_t started_ms, bool* for_rss) {
  *for_rss = false;
  if (std::find(recycled_.begin(), recycled_.end(), pid) != recycled_.end()) return 0;
  int sig = 0;
  if (cfg_.max_worker_lifetime > 0) {
    long limit = cfg_.max_worker_lifetime + static_cast<long>(id) * cfg_.max_worker_lifetime_delta;
    if (monotonic_ms() - started_ms >= limit * 1000) {
      log(Level::kInfo, "worker %d (pid %d) reached max-worker-lifetime (%lds); recycling", id,
          static_cast<int>(pid), limit);
      sig = SIGTERM;
    }
  }
  if (!sig && (cfg_.reload_on_rss > 0 || cfg_.evil_reload_on_rss > 0)) {
    std::uint64_t rss = rss_bytes(pid);
    std::uint64_t mb = rss >> 20;
    if (cfg_.evil_reload_on_rss > 0 && mb >= static_cast<std::uint64_t>(cfg_.evil_reload_on_rss)) {
      log(Level::kWarn, "worker %d (pid %d) uses %llu MB (evil-reload-on-rss %ld); killing", id,
          static_cast<int>(pid), static_cast<unsigned long long>(mb), cfg_.evil_reload_on_rss);
      sig = SIGKILL;
    } else if (cfg_.reload_on_rss > 0 && mb >= static_cast<std::uint64_t>(cfg_.reload_on_rss)) {
      log(Level::kInfo, "worker %d (pid %d) uses %llu MB (reload-on-rss %ld); recycling", id,
          static_cast<int>(pid), static_cast<unsigned long long>(mb), cfg_.reload_on_rss);
      sig = SIGTERM;
    }
    *for_rss = sig != 0;
  }
  if (sig) recycled_.push_back(pid);
  if (recycled_.size() > 4096) recycled_.erase(recycled_.begin());
  return sig;
}

void Lifecycle::stop() {
  stopping_ = true;
  for (Daemon& d : daemons_) {
    if (d.pid > 0) {
      log(Level::kInfo, "attach-daemon: stopping \"%s\" (pid %d)", d.command.c_str(),
          static_cast<int>(d.pid));
      kill(-d.pid, SIGTERM);
      kill(d.pid, SIGTERM);
    }
  }
}

}  // namespace spindle::core
