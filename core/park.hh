// The join: the one way request code waits.
//
// Every wait inside an async core goes through park(): it arms the watcher
// and/or the timer, suspends the core, and on wake-up disarms both and says
// why it woke. Loop callbacks never run request code; they only wake cores.
//
// Who may call what
//  - park(), park_for(), current_core() and yield_now(): from inside a core.
//  - wake(): from anywhere (a loop callback or another core); from a core it
//    is deferred through the loop, so cores never switch to each other.
#pragma once

#include "core/deadline.hh"
#include "core/loop.hh"

namespace spindle::core {

enum class Wake { kReady, kTimeout, kCancelled };

class Core;  // an async core (core/scheduler.hh)

// Parks the current core until fd is ready for `interest` on watcher w
// (which the caller owns and which must watch only fd), or the deadline
// passed (Deadline::none(): no time limit).
Wake park(IoWatcher& w, int fd, int interest, Deadline deadline);

// Parks the current core for `seconds` (sub-millisecond resolution); wake()
// does not cut it short.
Wake park_for(double seconds);

// Parks the current core until someone calls wake() on it (or the deadline
// passed).
Wake park_until_woken(Deadline deadline);

// Re-queues the current core through the loop (schedule_fix): other ready
// work runs first, then this core continues.
void yield_now();

// yield_now() when it is due, else returns at once: when posted tasks wait,
// or when the core has run past its fairness budget since it was last
// resumed (Scheduler::kYieldEvery calls, or a tick of the coarse clock).
// After every chunk of a streamed response: a long stream cannot starve the
// other cores, and a short one pays no trip through the loop.
void yield_if_due();

// Wakes a parked core with a reason. Returns false if that core is not
// parked in park_until_woken() (nothing happens then).
bool wake(int core_id, Wake why);

// As wake(), but always through the loop (a posted task), even from a loop
// callback: the woken core never runs on the caller's stack, so the caller
// may go on touching what that core could destroy. This thread's cores only.
bool wake_soon(int core_id, Wake why);

// From the main context only: runs fn(arg) at once on an idle or new core,
// as a request without a connection would run (it may park; the core is
// free again when fn returns). False when every core allowed by --async is
// busy. Internal: the benchmark's driver parks 100,000 cores with it.
bool run_on_core(void (*fn)(void* arg), void* arg);

// The index of the running core, or -1 on the main context.
int current_core();

// From any thread, at any time: runs fn(arg) soon on the loop of the worker
// thread that owns core `core_id`, as a loop callback there (so it may
// wake() that core). This is how a thread the app started (a
// ThreadPoolExecutor's, an asyncio loop's) hands a result back. False if
// there is no such core or its loop has stopped taking calls: fn will not
// run and arg stays the caller's.
bool call_on_core_thread(int core_id, void (*fn)(void* arg), void* arg);

// This worker's number (1..processes), 0 in the master.
int worker_id();

// After park() on a watcher whose fd the caller is about to close: drops
// whatever the loop engine keeps for that fd. Request code never touches
// the loop otherwise; plugins that run their own watchers get the loop in
// their worker_start hook.
void forget_fd(IoWatcher& w);

}  // namespace spindle::core
