// The async-core scheduler: a fixed set of cores per worker, each a context
// of the suspend engine that serves one connection's requests at a time.
//
// Flow: the scheduler schedules exchanges (core/exchange.hh). A protocol
// whose request head is complete submit()s its exchange from a loop
// callback. A free core takes it at once; with every core busy the exchange
// waits in a FIFO (never dropped) and the next core to finish takes it. A core parks only through park() (core/park.hh) and is resumed
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
  Timer timer;
  Task task;                      // posted to resume this core (yield, cross-core wake)
  Wake reason = Wake::kReady;
  bool parked = false;
  bool wakeable = false;          // parked in park_until_woken()
};

class Scheduler {
 public:
  Scheduler(Loop& loop, fibers::Engine& engine, WorkerSlot* slot);
  ~Scheduler();

  // Spawns n cores. False if a stack could not be allocated.
  bool start(int n);

  void submit(Exchange* ex);
  std::size_t busy() const { return cores_.size() - free_.size(); }
  std::size_t waiting() const { return pending_.size(); }

  Loop& loop() { return loop_; }
  fibers::Engine& engine() { return engine_; }
  Core* current();
  Core* core(int id) { return id >= 0 && id < static_cast<int>(cores_.size()) ? cores_[id].get() : nullptr; }

  // A worker that must stop: wakes every parked core with Wake::kCancelled,
  // makes every later wait fail the same way at once, and answers requests
  // that have not started with 503.
  void cancel_all();

  // The join (see core/park.hh).
  Wake park(IoWatcher& w, int fd, int interest, double timeout);
  Wake park_until_woken(double timeout);
  Wake sleep(double seconds);  // not wakeable: only the timer ends it
  void yield_now();
  bool wake(int core_id, Wake why);

 private:
  static void entry(fibers::Context* ctx);
  static void on_io(IoWatcher* w, int revents);
  static void on_timer(Timer* t);
  static void on_task(Task* t);
  void run_core(Core& c);
  void resume(Core& c, Wake why);
  Wake suspend_parked(Core& c, double timeout);

  Loop& loop_;
  fibers::Engine& engine_;
  WorkerSlot* slot_;
  std::vector<std::unique_ptr<Core>> cores_;
  std::vector<Core*> free_;
  std::deque<Exchange*> pending_;
  bool cancelling_ = false;
};

}  // namespace spindle::core
