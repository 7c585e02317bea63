// The loop-engine seam.
//
// Everything a worker does is a callback from its loop engine: readiness of
// an fd, expiry of a timer, or a posted task. An engine is a small set of
// operations chosen by name at start-up (--loop ev, --loop tornado).
//
// Ownership and lifetime
//  - IoWatcher, Timer and Task objects live inside the objects that own them
//    (a connection, an async core). The engine never allocates per event and
//    never frees them; it keeps pointers to them only while they are armed.
//  - An owner must disarm (io_stop / timer_stop) before it is destroyed.
//    io_close() also forgets any engine state tied to the fd; call it before
//    close(fd).
//  - Callbacks run on the main context (never inside an async core). They may
//    arm, re-arm or disarm any watcher, including their own, and may resume
//    cores. They must not throw.
//
// Time
//  - Only relative durations, in seconds (double), cross the seam; engines
//    must honour sub-millisecond values. now() is a monotonic clock in
//    seconds, cached per loop iteration where the engine can.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

namespace spindle::core {

enum Interest : int { kNone = 0, kRead = 1, kWrite = 2 };

struct IoWatcher;
struct Timer;
struct Task;
using IoCallback = void (*)(IoWatcher* w, int revents);  // revents: Interest bits
using TimerCallback = void (*)(Timer* t);
using TaskCallback = void (*)(Task* t);

// Space an engine may use inside each watcher for its own bookkeeping (an
// ev_io, a Python handle, ...). Engines static_assert that they fit.
inline constexpr std::size_t kEngineSlot = 64;

struct IoWatcher {
  IoCallback cb = nullptr;
  void* data = nullptr;  // the owner's; engines don't touch it
  int fd = -1;
  int interest = kNone;  // what is armed now (kept by the engine)
  bool initialised = false;
  alignas(16) unsigned char engine[kEngineSlot];
};

struct Timer {
  TimerCallback cb = nullptr;
  void* data = nullptr;
  bool armed = false;  // kept by the engine
  bool initialised = false;
  alignas(16) unsigned char engine[kEngineSlot];
};

// A one-shot "run soon" item (schedule_fix, cross-core wake-ups). Posting an
// already queued task is a no-op.
struct Task {
  TaskCallback cb = nullptr;
  void* data = nullptr;
  Task* next = nullptr;
  bool queued = false;
};

class Loop {
 public:
  virtual ~Loop() = default;
  virtual std::string_view name() const = 0;

  // Watches fd for the given interest (kRead|kWrite); kNone stops watching.
  // Changing the interest of an armed watcher is allowed and cheap.
  virtual void io_set(IoWatcher& w, int fd, int interest) = 0;
  void io_stop(IoWatcher& w) { io_set(w, w.fd, kNone); }
  // Stops the watcher and forgets the fd (call before close(fd)).
  virtual void io_close(IoWatcher& w) = 0;

  // Arms a one-shot timer `seconds` from now (re-arming restarts it).
  virtual void timer_start(Timer& t, double seconds) = 0;
  virtual void timer_stop(Timer& t) = 0;

  // Runs t->cb(t) soon, after the current callback returns, in FIFO order,
  // and without waiting for I/O first.
  virtual void post(Task& t) = 0;

  // Whether posted tasks wait to run (other work is known to be ready).
  virtual bool has_posted() const { return false; }

  // Runs until stop() is called.
  virtual void run() = 0;
  virtual void stop() = 0;

  // One iteration: waits for events at most `timeout` seconds (< 0: until
  // one arrives; 0: not at all), runs the callbacks of what is ready and the
  // posted tasks, and returns. For a loop that is driven by another one's
  // poll step (the Tornado engine runs asyncio's loop on this one).
  virtual void run_once(double timeout) = 0;

  virtual double now() = 0;

  // Called with the loop about to block in the kernel and right after it woke
  // (a language plugin releases and re-takes its interpreter lock there).
  virtual void set_blocking_hooks(void (*release)(void*), void (*acquire)(void*),
                                  void* data) = 0;
};

}  // namespace spindle::core
