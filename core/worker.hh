// One worker process: its loop engine, suspend engine, async cores, the
// accept path and graceful stop. Built from one loop engine and one suspend
// engine; an impossible pairing is refused before the worker starts.
#pragma once

#include <memory>
#include <vector>

#include "core/config.hh"
#include "core/listener.hh"
#include "core/loop.hh"
#include "core/mailbox.hh"
#include "core/plugin.hh"
#include "core/scheduler.hh"
#include "core/static_files.hh"
#include "fibers/suspend.hh"

namespace spindle::core {

class Transport;
struct WorkerSlot;

class Worker {
 public:
  Worker(const Config& cfg, std::vector<Listener>& listeners, int id, WorkerSlot* slot);
  ~Worker();

  // Runs until stopped; returns the process exit status.
  int run();

  const Config& cfg() const { return cfg_; }
  Loop& loop() { return *loop_; }
  Scheduler& scheduler() { return *sched_; }
  const StaticFiles& static_files() const { return static_files_; }
  App* app() { return app_; }
  int id() const { return id_; }
  Mailbox& mailbox() { return mailbox_; }

  void add(Transport* t);
  // A closed transport: off the list now, destroyed at the end of the loop
  // iteration (a posted task), never under whoever closed it.
  void retire(Transport* t);
  void request_done();
  bool draining() const { return draining_; }

 private:
  static void on_accept(IoWatcher* w, int revents);
  static void on_signal(IoWatcher* w, int revents);
  static void on_mercy(Timer* t);
  static void on_accept_retry(Timer* t);
  static void on_reap(Task* t);
  void pause_accepting(int err);
  void accept_ready();
  void read_signals();  // begins the drain on a stop signal
  void begin_drain(const char* why);
  void maybe_finish_drain();
  bool setup();

  const Config& cfg_;
  std::vector<Listener>& listeners_;
  int id_;
  WorkerSlot* slot_;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<fibers::Engine> engine_;
  std::unique_ptr<Scheduler> sched_;
  App* app_ = nullptr;
  StaticFiles static_files_;
  int accept_epfd_ = -1;
  int signal_fd_ = -1;
  IoWatcher accept_io_;
  IoWatcher signal_io_;
  Timer mercy_;
  Timer accept_retry_;
  Mailbox mailbox_;  // calls from other threads (core/park.hh call_on_core_thread)
  bool out_of_fds_ = false;
  Transport* conns_ = nullptr;
  std::size_t conn_count_ = 0;      // open or closed but not yet destroyed
  std::vector<Transport*> closed_;  // waiting for on_reap
  Task reap_;
  long requests_ = 0;
  bool draining_ = false;
  bool mercy_spent_ = false;
};

// Finds the plugins providing an engine by name (nullptr if none).
Plugin* loop_provider(std::string_view name);
Plugin* suspend_provider(std::string_view name);

}  // namespace spindle::core
