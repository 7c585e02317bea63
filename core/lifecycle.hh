// The master's lifecycle extras: hook actions at start-up phases
// (--hook-PHASE ACTION, --exec-PHASE CMD), side processes it runs and
// respawns (--attach-daemon), graceful reload when a file is touched
// (--touch-reload), and worker recycling by age or memory
// (--max-worker-lifetime, --reload-on-rss, --evil-reload-on-rss).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/deadline.hh"

namespace spindle::core {

struct Config;

// Runs the actions of one phase in order: "exec:CMD" (through /bin/sh;
// a failure stops start-up), "print:TEXT" / "log:TEXT", "mkdir:DIR",
// "unlink:FILE", "write:FILE CONTENT". Returns false if one failed (logged).
bool run_hooks(const std::vector<std::string>& actions, const char* phase);

class Lifecycle {
 public:
  explicit Lifecycle(const Config& cfg);

  // Before the first worker: --hook-master-start, then the daemons.
  bool master_start();
  // Once per master tick.
  bool touched();  // a --touch-reload file changed since the last call
  void respawn_daemons();
  // 0, SIGTERM (graceful recycle) or SIGKILL for a worker; logs why, once
  // per pid. *for_rss says whether its memory (--reload-on-rss,
  // --evil-reload-on-rss) was the reason.
  int recycle_signal(pid_t pid, int id, std::int64_t started_ms, bool* for_rss);
  // True when pid was an attached daemon (it is respawned after a back-off).
  bool reaped(pid_t pid, int status);
  void stop();

 private:
  struct Daemon {
    std::string command;
    pid_t pid = 0;
    int failures = 0;   // quick deaths in a row: the back-off doubles
    Deadline restart_at;
    std::int64_t started_ms = 0;
  };
  void start_daemon(Daemon& d);

  const Config& cfg_;
  std::vector<Daemon> daemons_;
  std::vector<std::int64_t> mtimes_;  // of the --touch-reload files
  std::vector<pid_t> recycled_;
  bool stopping_ = false;
};

}  // namespace spindle::core
