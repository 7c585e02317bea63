// The C++ half of the worker's asyncio selector (--tornado).
//
// asyncio's SelectorEventLoop calls its selector's select(timeout) once per
// iteration; spindle's selector (plugin/python/lib/_spindle_loop.py) hands
// that to poll() here, which runs the worker's own loop -- server sockets,
// timers, posted tasks and cores, all without Python -- until one of:
//   - an fd the app registered (watch()) is ready: poll() returns them;
//   - the timeout has passed;
//   - a callback gave asyncio work: its ready queue is no longer empty, or a
//     timer was scheduled (the earliest deadline may have moved);
//   - stop() was called.
// So Python runs once per batch of app events, never once per server event.
//
// While it runs the server's callbacks, asyncio's running loop is unset:
// requests resumed there, and the server's own loop callbacks
// (spindle.call_later), are not asyncio callbacks and must not see a running
// loop (under --greenlet they share the thread state run_forever() set it on).
//
// Ownership: the Python object owns the Poller; the Tornado engine holds a
// reference to it for the worker's lifetime. Everything runs on the worker's
// main thread with the GIL held (the loop releases it while it sleeps).
#pragma once

#include "plugin/python/python.hh"  // <Python.h> first

#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/loop.hh"

namespace spindle::tornado {

class Poller {
 public:
  // The Python object for a poller on `loop` (new reference), or nullptr
  // with an error set.
  static PyObject* create(core::Loop& loop);
  static Poller* of(PyObject* obj);

  // poll() returns as soon as the running iteration ends.
  void stop() { stopping_ = true; }
  // Whether poll() is running the server's callbacks now.
  bool polling() const { return polling_; }

  // The loop is going away: drop every watcher; from now on watch() and
  // poll() raise RuntimeError (the Python object may outlive the loop).
  void detach();

  // Python methods.
  PyObject* watch(int fd, int events);
  PyObject* poll(double timeout);  // timeout < 0: none
  PyObject* attach(PyObject* aio_loop);

  ~Poller();

 private:
  struct AppFd {
    core::IoWatcher w;
    Poller* owner;
  };

  explicit Poller(core::Loop& loop) : loop_(&loop) {}
  static void on_ready(core::IoWatcher* w, int revents);
  bool asyncio_has_work(Py_ssize_t scheduled_before) const;

  core::Loop* loop_;  // nullptr once detached
  std::unordered_map<int, std::unique_ptr<AppFd>> fds_;
  std::vector<std::pair<int, int>> ready_;
  PyObject* ready_queue_ = nullptr;  // the asyncio loop's _ready (a deque)
  PyObject* scheduled_ = nullptr;    // its _scheduled (a heap, a list)
  PyObject* get_running_ = nullptr;  // asyncio.events._get_running_loop
  PyObject* set_running_ = nullptr;  // asyncio.events._set_running_loop
  bool stopping_ = false;
  bool polling_ = false;
};

}  // namespace spindle::tornado
