// The Tornado loop engine (--tornado N, or --loop tornado --async N).
//
// Every server I/O becomes a callback of Tornado's IOLoop: fds through
// add_handler/update_handler/remove_handler, timers through call_later/
// remove_timeout, posted tasks (schedule_fix) through add_callback. The
// IOLoop is created in each worker, after fork, and made current there, so
// code the app runs in its post-fork hooks (a tornado.web.Application's
// listen(), say) and the WSGI cores share one loop.
//
// The callables handed to the IOLoop are small "trampoline" objects that
// point back at the core's watcher, timer or task queue. A watcher keeps its
// trampoline while it is open (io_close drops it); a timer gets one per arm,
// dropped when it fires or is stopped, because Timer has no close.
#include "plugin/python/python.hh"

#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/config.hh"
#include "core/log.hh"
#include "core/options.hh"
#include "core/plugin.hh"
#include "core/task_queue.hh"

namespace spindle::tornado {

using core::IoWatcher;
using core::Task;
using core::Timer;

namespace {

enum class Kind { kIo, kTimer, kDrain };

struct Trampoline {
  PyObject_HEAD
  Kind kind;
  void* target;
};

// Every watcher of one fd, behind one IOLoop handler: the IOLoop takes a
// single handler per fd, while two cores may wait on the same fd
// (spindle.wait_fd_read on a shared pipe). Entries live as long as the
// loop, one per fd number ever watched, so a handler never outlives its
// target and fd reuse costs nothing.
struct FdEntry {
  Trampoline* tramp = nullptr;
  std::vector<IoWatcher*> watchers;
  long registered = 0;  // events the IOLoop watches for this fd; 0: none
};

struct IoSlot {
  FdEntry* entry;  // the entry this watcher is in, or nullptr
};

struct TimerSlot {
  Trampoline* tramp;
  PyObject* handle;  // what call_later returned, while armed
};

static_assert(sizeof(IoSlot) <= core::kEngineSlot);
static_assert(sizeof(TimerSlot) <= core::kEngineSlot);

// Tornado's IOLoop event bits.
constexpr long kRead = 0x001, kWrite = 0x004, kError = 0x018;

PyTypeObject* g_tramp_type = nullptr;
class TornadoLoop;
TornadoLoop* g_loop = nullptr;

IoSlot* io_slot(IoWatcher& w) { return reinterpret_cast<IoSlot*>(w.engine); }
TimerSlot* timer_slot(Timer& t) { return reinterpret_cast<TimerSlot*>(t.engine); }

Trampoline* new_tramp(Kind kind, void* target) {
  Trampoline* t = PyObject_New(Trampoline, g_tramp_type);
  if (t) {
    t->kind = kind;
    t->target = target;
  }
  return t;
}

void tramp_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(tp);
}

PyObject* tramp_call(PyObject* self, PyObject* args, PyObject*);

bool init_tramp_type() {
  if (g_tramp_type) return true;
  static PyType_Slot slots[] = {
      {Py_tp_call, reinterpret_cast<void*>(tramp_call)},
      {Py_tp_dealloc, reinterpret_cast<void*>(tramp_dealloc)},
      {0, nullptr},
  };
  static PyType_Spec spec = {"spindle.ioloop_callback", sizeof(Trampoline), 0, Py_TPFLAGS_DEFAULT,
                             slots};
  g_tramp_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
  return g_tramp_type != nullptr;
}

// A call into the IOLoop failed: that is a bug or a dead loop, never the
// client's doing. Log it with its traceback and carry on.
void check(PyObject* result, const char* what) {
  if (result) {
    Py_DECREF(result);
    return;
  }
  python::log_exception(what);
}

class TornadoLoop final : public core::Loop {
 public:
  bool init() {
    if (!init_tramp_type()) return false;
    // A fresh asyncio loop per worker, never one the master made while
    // importing the app; the IOLoop that wraps it becomes current.
    static const char kSetup[] =
        "import asyncio, warnings\n"
        "import tornado.ioloop\n"
        "aio = asyncio.new_event_loop()\n"
        "asyncio.set_event_loop(aio)\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', DeprecationWarning)\n"
        "    io = tornado.ioloop.IOLoop.current()\n";
    PyObject* ns = PyDict_New();
    PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins());
    PyObject* r = PyRun_String(kSetup, Py_file_input, ns, ns);
    if (!r) {
      python::log_exception("tornado: cannot create the IOLoop (is python3-tornado installed?)");
      Py_DECREF(ns);
      return false;
    }
    Py_DECREF(r);
    aio_ = PyDict_GetItemString(ns, "aio");
    ioloop_ = PyDict_GetItemString(ns, "io");
    Py_XINCREF(aio_);
    Py_XINCREF(ioloop_);
    Py_DECREF(ns);
    add_handler_ = PyObject_GetAttrString(ioloop_, "add_handler");
    update_handler_ = PyObject_GetAttrString(ioloop_, "update_handler");
    remove_handler_ = PyObject_GetAttrString(ioloop_, "remove_handler");
    call_later_ = PyObject_GetAttrString(ioloop_, "call_later");
    remove_timeout_ = PyObject_GetAttrString(ioloop_, "remove_timeout");
    add_callback_ = PyObject_GetAttrString(ioloop_, "add_callback");
    drain_ = new_tramp(Kind::kDrain, this);
    if (!add_handler_ || !update_handler_ || !remove_handler_ || !call_later_ ||
        !remove_timeout_ || !add_callback_ || !drain_) {
      python::log_exception("tornado: the IOLoop lacks an expected method");
      return false;
    }
    g_loop = this;
    return true;
  }

  std::string_view name() const override { return "tornado"; }
  PyObject* asyncio_loop() const { return aio_; }

  void io_set(IoWatcher& w, int fd, int interest) override {
    IoSlot* s = io_slot(w);
    if (!w.initialised) {
      s->entry = nullptr;
      w.initialised = true;
      w.fd = fd;
      w.interest = core::kNone;
    }
    if (fd == w.fd && interest == w.interest && (s->entry != nullptr) == (interest != core::kNone))
      return;
    if (s->entry && (fd != w.fd || interest == core::kNone)) detach(w);
    w.fd = fd;
    w.interest = interest;
    if (interest == core::kNone) return;
    if (!s->entry) {
      FdEntry& e = entry(fd);
      e.watchers.push_back(&w);
      s->entry = &e;
    }
    sync(*s->entry, fd);
  }

  void io_close(IoWatcher& w) override {
    if (!w.initialised) return;
    if (io_slot(w)->entry) detach(w);
    w.interest = core::kNone;
    w.fd = -1;
    w.initialised = false;
  }

  // The IOLoop reported events on an fd: each watcher that asked for them
  // gets its callback. Callbacks may detach any watcher, their own too.
  void dispatch(FdEntry& e, long events) {
    int rev = ((events & kRead) ? core::kRead : 0) | ((events & kWrite) ? core::kWrite : 0);
    IoWatcher* batch[8];
    std::vector<IoWatcher*> many;
    IoWatcher** list = batch;
    std::size_t n = e.watchers.size();
    if (n > 8) {
      many = e.watchers;
      list = many.data();
    } else {
      std::copy(e.watchers.begin(), e.watchers.end(), batch);
    }
    for (std::size_t i = 0; i < n; ++i) {
      IoWatcher* w = list[i];
      if (std::find(e.watchers.begin(), e.watchers.end(), w) == e.watchers.end()) continue;
      // An error or hang-up: let whoever waits find out from its own syscall.
      int mine = (events & kError) ? w->interest : (rev & w->interest);
      if (mine) w->cb(w, mine);
    }
  }

 private:
  FdEntry& entry(int fd) {
    auto& slot = fds_[fd];
    if (!slot) {
      slot = std::make_unique<FdEntry>();
      slot->tramp = new_tramp(Kind::kIo, slot.get());
    }
    return *slot;
  }

  void detach(IoWatcher& w) {
    IoSlot* s = io_slot(w);
    FdEntry& e = *s->entry;
    e.watchers.erase(std::find(e.watchers.begin(), e.watchers.end(), &w));
    s->entry = nullptr;
    sync(e, w.fd);
  }

  // Tells the IOLoop the union of what this fd's watchers want.
  void sync(FdEntry& e, int fd) {
    long want = 0;
    for (IoWatcher* w : e.watchers)
      want |= ((w->interest & core::kRead) ? kRead : 0) | ((w->interest & core::kWrite) ? kWrite : 0);
    if (want == e.registered) return;
    if (want == 0) {
      check(PyObject_CallFunction(remove_handler_, "i", fd), "tornado: remove_handler");
    } else if (e.registered) {
      check(PyObject_CallFunction(update_handler_, "il", fd, want), "tornado: update_handler");
    } else {
      PyObject* r = PyObject_CallFunction(add_handler_, "iOl", fd,
                                          reinterpret_cast<PyObject*>(e.tramp), want);
      if (!r) {
        python::log_exception("tornado: add_handler");
        return;  // registered stays 0: nothing to remove later
      }
      Py_DECREF(r);
    }
    e.registered = want;
  }

 public:
  void timer_start(Timer& t, double seconds) override {
    if (t.armed) timer_stop(t);
    TimerSlot* s = timer_slot(t);
    t.initialised = true;
    s->tramp = new_tramp(Kind::kTimer, &t);
    s->handle = PyObject_CallFunction(call_later_, "dO", seconds,
                                      reinterpret_cast<PyObject*>(s->tramp));
    if (!s->handle) python::log_exception("tornado: call_later");
    t.armed = true;
  }

  void timer_stop(Timer& t) override {
    if (!t.initialised || !t.armed) return;
    TimerSlot* s = timer_slot(t);
    if (s->handle) check(PyObject_CallFunctionObjArgs(remove_timeout_, s->handle, nullptr),
                         "tornado: remove_timeout");
    release(s);
    t.armed = false;
  }

  static void release(TimerSlot* s) {
    Py_CLEAR(s->handle);
    Py_XDECREF(reinterpret_cast<PyObject*>(s->tramp));
    s->tramp = nullptr;
  }

  // One add_callback per batch of posted tasks, not one per task.
  void post(Task& t) override {
    if (tasks_.push(t) && !drain_scheduled_) {
      drain_scheduled_ = true;
      check(PyObject_CallFunctionObjArgs(add_callback_, reinterpret_cast<PyObject*>(drain_),
                                         nullptr),
            "tornado: add_callback");
    }
  }

  void drain() {
    drain_scheduled_ = false;
    tasks_.drain();
  }

  void run() override {
    check(PyObject_CallMethod(ioloop_, "start", nullptr), "tornado: IOLoop.start");
  }
  void stop() override { check(PyObject_CallMethod(ioloop_, "stop", nullptr), "tornado: stop"); }

  double now() override {
    PyObject* r = PyObject_CallMethod(ioloop_, "time", nullptr);
    double v = r ? PyFloat_AsDouble(r) : 0;
    if (!r) python::log_exception("tornado: IOLoop.time");
    Py_XDECREF(r);
    return v;
  }

  // asyncio's selector releases the GIL around its own poll.
  void set_blocking_hooks(void (*)(void*), void (*)(void*), void*) override {}

 private:
  PyObject* aio_ = nullptr;
  PyObject* ioloop_ = nullptr;
  PyObject* add_handler_ = nullptr;
  PyObject* update_handler_ = nullptr;
  PyObject* remove_handler_ = nullptr;
  PyObject* call_later_ = nullptr;
  PyObject* remove_timeout_ = nullptr;
  PyObject* add_callback_ = nullptr;
  Trampoline* drain_ = nullptr;
  core::TaskQueue tasks_;
  std::unordered_map<int, std::unique_ptr<FdEntry>> fds_;
  bool drain_scheduled_ = false;
};

PyObject* tramp_call(PyObject* self, PyObject* args, PyObject*) {
  auto* t = reinterpret_cast<Trampoline*>(self);
  switch (t->kind) {
    case Kind::kIo: {
      long events = 0;
      if (PyTuple_GET_SIZE(args) >= 2) events = PyLong_AsLong(PyTuple_GET_ITEM(args, 1));
      g_loop->dispatch(*static_cast<FdEntry*>(t->target), events);
      break;
    }
    case Kind::kTimer: {
      auto* tm = static_cast<Timer*>(t->target);
      // The IOLoop holds its own reference while it calls us.
      TornadoLoop::release(timer_slot(*tm));
      tm->armed = false;
      tm->cb(tm);
      break;
    }
    case Kind::kDrain:
      static_cast<TornadoLoop*>(t->target)->drain();
      break;
  }
  Py_RETURN_NONE;
}

class TornadoPlugin final : public core::Plugin {
 public:
  std::string_view name() const override { return "tornado"; }

  void add_engine_options(core::OptionTable& t, core::Config& cfg) override {
    static int cores = 0;
    core::Setter parse = core::OptionTable::integer(cores, 1, 100000);
    t.add({"tornado", 0, true, "N",
           "Tornado's IOLoop as the loop engine with N async cores (= --loop tornado --async N)",
           [&cfg, parse](std::string_view v) -> std::string {
             std::string err = parse(v);
             if (!err.empty()) return err;
             cfg.loop = "tornado";
             cfg.async = cores;
             return "";
           }});
  }

  std::vector<std::string_view> loop_names() const override { return {"tornado"}; }

  std::unique_ptr<core::Loop> make_loop(std::string_view) override {
    auto loop = std::make_unique<TornadoLoop>();
    if (!loop->init()) return nullptr;
    return loop;
  }

  // Each fiber core has a thread state of its own, and asyncio keeps the
  // running loop per thread state: point every core at the worker's loop so
  // that asyncio.get_running_loop() and IOLoop.current() work in requests.
  bool worker_start(const core::Config& cfg, core::Loop& loop, fibers::Engine&) override {
    if (cfg.loop != "tornado" || !g_loop) return true;
    PyObject* events = PyImport_ImportModule("asyncio.events");
    PyObject* set_running = events ? PyObject_GetAttrString(events, "_set_running_loop") : nullptr;
    Py_XDECREF(events);
    if (!set_running) {
      python::log_exception("tornado: asyncio.events._set_running_loop is missing");
      return false;
    }
    bool ok = true;
    for (auto& slot : python::runtime().cores) {
      if (!slot || !slot->tstate) continue;
      PyThreadState* prev = PyThreadState_Swap(slot->tstate);
      PyObject* r = PyObject_CallFunctionObjArgs(set_running, g_loop->asyncio_loop(), nullptr);
      if (!r) {
        python::log_exception("tornado: cannot set the running loop of a core");
        ok = false;
      }
      Py_XDECREF(r);
      PyThreadState_Swap(prev);
    }
    Py_DECREF(set_running);
    (void)loop;
    return ok;
  }
};

}  // namespace
}  // namespace spindle::tornado

spindle::core::Plugin* spindle_plugin_tornado() {
  static spindle::tornado::TornadoPlugin plugin;
  return &plugin;
}
