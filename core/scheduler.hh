// The async-core scheduler: up to --async cores per worker, each a context
// of the suspend engine that serves one connection's requests at a time.
//
// Cores on demand: a core (its context, its stack, a plugin's per-core state)
// is created when a request finds no idle one, up to the limit, and an idle
// core beyond kIdleCores ends and is destroyed, so --async 100000 costs
// nothing until that many requests are in flight. Core ids are reused; an id
// is stable while its core lives.
//
// Flow: the scheduler schedules exchanges (core/exchange.hh). A protocol
// whose request head is complete submit()s its exchange from a loop
// callback. An idle core (or a new one) takes it at once; with every core
// busy the exchange waits in a FIFO (never dropped) and the next core to
// finish takes it. A core parks only through park() (core/park.hh) and is resumed
// only from the main context: by the loop callback of what it waits for, or
// by a posted Task (wake-ups from other cores, schedule_fix).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/loop.hh"
#include "core/park.hh"
#include "fibers/suspend.hh"

namespace spindle::core {

class Exchange;
struct WorkerSlot;

struct Core {
  int id = 0;
  fibers::Context* ctx = nullptr;
  Exchange* ex = nullptr;
  void (*job)(void*) = nullptr;   // run_on_core(): work without an exchange
  void* job_arg = nullptr;
  Timer timer;
  Task task;                      // posted to resume this core (yield, cross-core wake)
  Wake reason = Wake::kReady;
  bool parked = false;
  bool wakeable = false;          // parked in park_until_woken()
  bool in_resume = false;         // resumed by Scheduler::resume(), which retires it if it ends
  int budget = 0;                 // yield_if_due() calls left before a yield
  std::uint32_t switches = 0;     // resumes so far (the access log's %(switches))
  std::int64_t ran_since_ms = 0;  // coarse clock at the first of them (0: not read yet)
};

// The core running now on this thread, or null (loop side, no scheduler).
Core* current_core_ptr();

class Scheduler {
 public:
  Scheduler(Loop& loop, fibers::Engine& engine, WorkerSlot* slot);
  ~Scheduler();

  // Idle cores kept ready; a core that finds more idle ones ends itself.
  static constexpr std::size_t kIdleCores = 128;
  // yield_if_due() yields at the latest after this many calls.
  static constexpr int kYieldEvery = 64;

  // Allows up to n cores and creates the first. Their ids are
  // first_id..first_id+n-1: unique across the serving threads of a worker.
  // False if it cannot be.
  bool start(int n, int first_id = 0);

  void submit(Exchange* ex);
  bool run_on_core(void (*fn)(void*), void* arg);  // see core/park.hh
  std::size_t live() const { return live_; }  // cores that exist now
  std::size_t busy() const { return live_ - idle_.size(); }
  std::size_t waiting() const { return pending_.size(); }

  Loop& loop() { return loop_; }
  fibers::Engine& engine() { return engine_; }
  Core* current();
  Core* core(int id) {
    id -= first_id_;
    return id >= 0 && id < static_cast<int>(cores_.size()) ? cores_[id].get() : nullptr;
  }

  // A worker that must stop: wakes every parked core with Wake::kCancelled,
  // makes every later wait fail the same way at once, and answers requests
  // that have not started with 503.
  void cancel_all();

  // The join (see core/park.hh).
  Wake park(IoWatcher& w, int fd, int interest, Deadline deadline);
  Wake park_until_woken(Deadline deadline);
  Wake sleep(double seconds);  // not wakeable: only the timer ends it
  void yield_now();
  void yield_if_due();
  bool wake(int core_id, Wake why, bool defer = false);

 private:
  static void entry(fibers::Context* ctx);
  static void on_io(IoWatcher* w, int revents);
  static void on_timer(Timer* t);
  static void on_task(Task* t);
  static void on_trim(Timer* t);
  void run_core(Core& c);
  Core* idle_core();  // an idle core, a new one, or nullptr at the limit
  Core* create_core();
  void resume(Core& c, Wake why);
  void retire(Core& c);
  Wake suspend_parked(Core& c, Deadline deadline);
  void before_park(Core& c);

  Loop& loop_;
  fibers::Engine& engine_;
  WorkerSlot* slot_;
  int first_id_ = 0;
  std::vector<std::unique_ptr<Core>> cores_;  // by id - first_id_; null where no core lives
  std::vector<int> free_ids_;                 // indexes below cores_.size() with no core
  std::vector<Core*> idle_;
  std::size_t live_ = 0;
  std::size_t limit_ = 0;
  bool spawn_failed_ = false;  // logged once
  Timer trim_timer_;           // gives freed heap pages back after cores retire
  std::deque<Exchange*> pending_;
  bool cancelling_ = false;
};

}  // namespace spindle::core
