#include "core/scheduler.hh"

#include <malloc.h>
#include <time.h>

#include <cstring>

#include "core/exchange.hh"
#include "core/protocol.hh"
#include "core/log.hh"
#include "core/stats.hh"
#include "core/worker.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {
thread_local Scheduler* g_scheduler = nullptr;  // one per serving thread
}

std::int64_t monotonic_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Scheduler::Scheduler(Loop& loop, fibers::Engine& engine, WorkerSlot* slot)
    : loop_(loop), engine_(engine), slot_(slot) {
  g_scheduler = this;
  trim_timer_.cb = on_trim;
}

Scheduler::~Scheduler() {
  if (trim_timer_.armed) loop_.timer_stop(trim_timer_);
  for (auto& c : cores_) {
    if (!c) continue;
    if (c->timer.armed) loop_.timer_stop(c->timer);
    if (c->ctx) engine_.destroy(c->ctx);
  }
  if (g_scheduler == this) g_scheduler = nullptr;
}

bool Scheduler::start(int n, int first_id) {
  first_id_ = first_id;
  limit_ = n > 0 ? static_cast<std::size_t>(n) : 1;
  // One core now proves the suspend engine can make them.
  Core* c = create_core();
  if (!c) return false;
  idle_.push_back(c);
  return true;
}

Core* Scheduler::create_core() {
  if (live_ >= limit_) return nullptr;
  int index;
  if (!free_ids_.empty()) {
    index = free_ids_.back();
    free_ids_.pop_back();
  } else {
    index = static_cast<int>(cores_.size());
    cores_.emplace_back();
  }
  int id = first_id_ + index;
  auto c = std::make_unique<Core>();
  c->id = id;
  c->timer.cb = on_timer;
  c->timer.data = c.get();
  c->task.cb = on_task;
  c->task.data = c.get();
  c->ctx = engine_.spawn(entry, id, c.get());
  if (!c->ctx) {
    free_ids_.push_back(index);
    if (!spawn_failed_)
      log(Level::kWarn, "cannot create async core %d (out of memory?); requests wait for a busy one",
          id);
    spawn_failed_ = true;
    return nullptr;
  }
  ++live_;
  cores_[static_cast<std::size_t>(index)] = std::move(c);
  return cores_[static_cast<std::size_t>(index)].get();
}

Core* Scheduler::idle_core() {
  if (!idle_.empty()) {
    Core* c = idle_.back();
    idle_.pop_back();
    return c;
  }
  return create_core();
}

Core* Scheduler::current() {
  fibers::Context* ctx = engine_.current();
  return ctx ? static_cast<Core*>(ctx->arg) : nullptr;
}

void Scheduler::submit(Exchange* ex) {
  if (cancelling_) {
    ex->protocol().fail(503, "the worker is stopping");
    return;
  }
  Core* c = idle_core();
  if (!c) {
    pending_.push_back(ex);
    stats::set_queued(pending_.size());
    return;
  }
  c->ex = ex;
  resume(*c, Wake::kReady);
}

bool Scheduler::run_on_core(void (*fn)(void*), void* arg) {
  if (current() || cancelling_) return false;
  Core* c = idle_core();
  if (!c) return false;
  c->job = fn;
  c->job_arg = arg;
  resume(*c, Wake::kReady);
  return true;
}

void Scheduler::entry(fibers::Context* ctx) {
  g_scheduler->run_core(*static_cast<Core*>(ctx->arg));
}

void Scheduler::run_core(Core& c) {
  for (;;) {
    if (c.job) {
      void (*fn)(void*) = c.job;
      c.job = nullptr;
      fn(c.job_arg);
      if (!pending_.empty()) {
        c.ex = pending_.front();
        pending_.pop_front();
        stats::set_queued(pending_.size());
      }
    }
    while (c.ex) {
      c.ex->run(c);
      c.ex = nullptr;
      if (!pending_.empty()) {
        c.ex = pending_.front();
        pending_.pop_front();
        stats::set_queued(pending_.size());
      }
    }
    // Enough idle cores already: end, and resume() destroys this one. Only
    // when resume() is the one running it: a core the app switched back to
    // itself (--greenlet, an IOLoop callback calling me.switch()) would end
    // unseen and keep its place under --async for ever, so it stays idle.
    if (idle_.size() >= kIdleCores && c.in_resume) return;
    idle_.push_back(&c);
    stats::set_state(c.id, stats::CoreState::kIdle);
    engine_.suspend();
  }
}

// Each switch publishes which core runs (core/stats.hh); what a core parks
// on is published by the park call before it suspends. The clock is read
// only for --harakiri (slot_ is set then).
void Scheduler::resume(Core& c, Wake why) {
  c.reason = why;
  c.parked = false;
  c.budget = kYieldEvery;
  c.ran_since_ms = 0;
  ++c.switches;
  stats::core_running(c.id, slot_ ? monotonic_ms() : 0);
  c.in_resume = true;
  engine_.resume(c.ctx);
  c.in_resume = false;
  stats::core_switched_out();
  if (c.ctx->finished) retire(c);
}

// A core that ended (run_core returned): nothing of it is armed or queued.
void Scheduler::retire(Core& c) {
  int index = c.id - first_id_;
  engine_.destroy(c.ctx);
  cores_[static_cast<std::size_t>(index)].reset();
  free_ids_.push_back(index);
  --live_;
  // What those cores' requests left in the C heap (connections, buffers,
  // interpreter objects) is free but scattered; a second later, once the
  // burst has drained, its whole pages go back to the kernel.
  if (!trim_timer_.armed) loop_.timer_start(trim_timer_, 1.0);
}

void Scheduler::on_trim(Timer*) { malloc_trim(0); }

void Scheduler::on_io(IoWatcher* w, int) {
  Core* c = static_cast<Core*>(w->data);
  if (c->parked) g_scheduler->resume(*c, Wake::kReady);
}

void Scheduler::on_timer(Timer* t) {
  Core* c = static_cast<Core*>(t->data);
  if (c->parked) g_scheduler->resume(*c, Wake::kTimeout);
}

void Scheduler::on_task(Task* t) {
  Core* c = static_cast<Core*>(t->data);
  if (c->parked) g_scheduler->resume(*c, c->reason);
}

Wake Scheduler::suspend_parked(Core& c, Deadline deadline) {
  if (cancelling_) return Wake::kCancelled;  // every wait fails from now on
  if (!deadline.is_none()) loop_.timer_start(c.timer, deadline.seconds_left());
  c.parked = true;
  engine_.suspend();
  if (c.timer.armed) loop_.timer_stop(c.timer);
  return c.reason;
}

// Whatever the core's response held back goes out before the core waits:
// a chunk never waits for a successor that waits for something. First, so
// that a flush which itself parks (a full socket) finds nothing armed yet.
void Scheduler::before_park(Core& c) {
  if (c.ex && c.ex->holding()) c.ex->flush();
}

Wake Scheduler::park(IoWatcher& w, int fd, int interest, Deadline deadline) {
  Core& c = *current();
  before_park(c);
  // The watcher is borrowed for the wait: its owner's callback comes back
  // afterwards, so the owner never has to reinstall it.
  IoCallback owner_cb = w.cb;
  void* owner_data = w.data;
  w.cb = on_io;
  w.data = &c;
  loop_.io_set(w, fd, interest);
  stats::set_state(c.id, interest & kWrite ? stats::CoreState::kWrite : stats::CoreState::kRead);
  Wake why = suspend_parked(c, deadline);
  loop_.io_set(w, fd, kNone);
  w.cb = owner_cb;
  w.data = owner_data;
  return why;
}

Wake Scheduler::sleep(double seconds) {
  Core& c = *current();
  before_park(c);
  stats::set_state(c.id, stats::CoreState::kTimer);
  return suspend_parked(c, Deadline::after(seconds));
}

Wake Scheduler::park_until_woken(Deadline deadline) {
  Core& c = *current();
  before_park(c);
  c.wakeable = true;
  stats::set_state(c.id, stats::CoreState::kWait);
  Wake why = suspend_parked(c, deadline);
  c.wakeable = false;
  return why;
}

void Scheduler::yield_now() {
  if (cancelling_) return;
  Core& c = *current();
  before_park(c);
  c.reason = Wake::kReady;
  stats::set_state(c.id, stats::CoreState::kReady);
  loop_.post(c.task);
  c.parked = true;
  engine_.suspend();
}

void Scheduler::yield_if_due() {
  Core& c = *current();
  if (--c.budget > 0 && !loop_.has_posted()) {
    const std::int64_t now = monotonic_ms();
    if (c.ran_since_ms == 0) c.ran_since_ms = now;
    if (now == c.ran_since_ms) return;  // still within the clock tick it started in
  }
  yield_now();
}

void Scheduler::cancel_all() {
  cancelling_ = true;
  // Requests not started yet get a clear answer rather than a start that
  // the stop would cut short.
  while (!pending_.empty()) {
    Exchange* ex = pending_.front();
    pending_.pop_front();
    ex->protocol().fail(503, "the worker is stopping");
  }
  stats::set_queued(0);
  for (std::size_t i = 0; i < cores_.size(); ++i) {
    Core* c = cores_[i].get();
    // A core with its task queued is about to run anyway.
    if (c && c->parked && !c->task.queued) resume(*c, Wake::kCancelled);
  }
}

bool Scheduler::wake(int core_id, Wake why, bool defer) {
  Core* c = core(core_id);
  if (!c || !c->wakeable || !c->parked) return false;
  c->wakeable = false;
  if (c->timer.armed) loop_.timer_stop(c->timer);
  if (defer || current()) {
    // Cores never switch to each other: hand the wake-up to the loop.
    c->reason = why;
    loop_.post(c->task);
  } else {
    resume(*c, why);
  }
  return true;
}

// --- the join, as free functions for plugins (core/park.hh) ---------------

Wake park(IoWatcher& w, int fd, int interest, Deadline deadline) {
  return g_scheduler->park(w, fd, interest, deadline);
}

Wake park_for(double seconds) { return g_scheduler->sleep(seconds < 0 ? 0 : seconds); }

Wake park_until_woken(Deadline deadline) { return g_scheduler->park_until_woken(deadline); }

void yield_now() { g_scheduler->yield_now(); }

void yield_if_due() { g_scheduler->yield_if_due(); }

bool run_on_core(void (*fn)(void*), void* arg) {
  return g_scheduler && g_scheduler->run_on_core(fn, arg);
}

bool wake(int core_id, Wake why) {
  if (g_scheduler && g_scheduler->core(core_id)) return g_scheduler->wake(core_id, why);
  return wake_on_other_thread(core_id, why);  // worker.cc
}

bool wake_soon(int core_id, Wake why) {
  return g_scheduler && g_scheduler->core(core_id) && g_scheduler->wake(core_id, why, true);
}

int current_core() {
  if (!g_scheduler) return -1;
  Core* c = g_scheduler->current();
  return c ? c->id : -1;
}

Core* current_core_ptr() { return g_scheduler ? g_scheduler->current() : nullptr; }

void forget_fd(IoWatcher& w) { g_scheduler->loop().io_close(w); }

}  // namespace spindle::core
