// A worker process and its serving threads.
//
// A worker process runs --threads serving threads (thread 0 on the
// process's main thread). Each serving thread is a Worker: its own loop
// engine, suspend engine and --async cores, its own accept set on the shared
// listening sockets (EPOLLEXCLUSIVE: the kernel wakes one waiter, of any
// thread of any process, per connection) and the connections it accepted.
// Nothing of one thread's loop is touched by another: what crosses threads
// goes through the target's Mailbox.
//
// What is per process: the signals (thread 0 watches the signalfd), the
// --max-requests count, and the graceful stop, which starts on every thread
// at once and ends when the last thread has let go of its connections.
// Built from one loop engine and one suspend engine; an impossible pairing
// is refused before the worker starts.
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

// Runs worker `id` (1..processes) in this freshly forked process until it
// stops; returns the process exit status.
int run_worker_process(const Config& cfg, std::vector<Listener>& listeners, int id,
                       WorkerSlot* slot);

// One serving thread of a worker process.
class Worker {
 public:
  Worker(const Config& cfg, std::vector<Listener>& listeners, int id, int thread,
         WorkerSlot* slot);
  ~Worker();

  const Config& cfg() const { return cfg_; }
  Loop& loop() { return *loop_; }
  Scheduler& scheduler() { return *sched_; }
  const StaticFiles& static_files() const { return static_files_; }
  App* app() { return app_; }
  int id() const { return id_; }
  int thread() const { return thread_; }
  Mailbox& mailbox() { return mailbox_; }

  void add(Transport* t);
  // A closed transport: off the list now, destroyed at the end of the loop
  // iteration (a posted task), never under whoever closed it.
  void retire(Transport* t);
  void request_done();
  bool draining() const { return draining_; }

  // On this thread: builds the engines and cores, runs the plugins' start
  // hooks (worker_start on thread 0, thread_start on the others) and
  // starts accepting. False if the worker cannot serve (logged).
  bool setup(int signal_fd);
  // Runs this thread's loop until it stops.
  void run() { loop_->run(); }
  // This thread stops taking connections and finishes what it holds.
  void begin_drain();
  // Thread 0: another thread has finished (its loop stopped).
  void thread_finished();

 private:
  static void on_accept(IoWatcher* w, int revents);
  static void on_signal(IoWatcher* w, int revents);
  static void on_mercy(Timer* t);
  static void on_accept_retry(Timer* t);
  static void on_reap(Task* t);
  void pause_accepting(int err);
  bool has_room() const;
  void accept_ready();
  void read_signals();  // thread 0: begins the worker's drain on a stop signal
  void maybe_finish_drain();

  const Config& cfg_;
  std::vector<Listener>& listeners_;
  int id_;
  int thread_;
  WorkerSlot* slot_;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<fibers::Engine> engine_;
  std::unique_ptr<Scheduler> sched_;
  App* app_ = nullptr;
  StaticFiles static_files_;
  int accept_epfd_ = -1;
  int signal_fd_ = -1;  // thread 0 only
  IoWatcher accept_io_;
  IoWatcher signal_io_;
  Timer mercy_;
  Timer accept_retry_;
  Mailbox mailbox_;  // calls from other threads (core/park.hh call_on_core_thread)
  bool out_of_fds_ = false;
  bool accept_full_ = false;  // --threads: every core busy, let other threads accept
  Transport* conns_ = nullptr;
  std::size_t conn_count_ = 0;      // open or closed but not yet destroyed
  std::vector<Transport*> closed_;  // waiting for on_reap
  Task reap_;
  bool draining_ = false;
  bool mercy_spent_ = false;
  int others_finished_ = 0;  // thread 0: other threads whose loops stopped
};

// Finds the plugins providing an engine by name (nullptr if none).
Plugin* loop_provider(std::string_view name);
Plugin* suspend_provider(std::string_view name);

// Wakes a core of another serving thread of this worker (scheduler.cc's
// wake() for a core it does not own): the wake goes through that thread's
// mailbox. False if there is no such core.
bool wake_on_other_thread(int core_id, Wake why);

}  // namespace spindle::core
