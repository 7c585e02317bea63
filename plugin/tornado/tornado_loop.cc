// The Tornado loop engine (--tornado N, or --loop tornado --async N).
//
// One loop per worker, which the server's I/O and the app's Tornado code
// share. The server's fds, timers and posted tasks are watchers of the libev
// engine, in C++; Tornado's IOLoop runs on asyncio's SelectorEventLoop,
// whose selector is that same libev loop (poller.hh, and
// plugin/python/lib/_spindle_loop.py). run() is IOLoop.start(): asyncio
// drives the iterations and each select() runs the libev loop until asyncio
// has work, so Python runs per batch of app events, never per server event.
//
// The asyncio loop is the one the app captured at import time in the master
// if it did (IOLoop.instance() in uWSGI's Tornado docs), moved onto this
// worker with a fresh selector and wake-up pipe before anything runs; else
// a new one. Either way it becomes current, so post-fork hooks (a
// tornado.web.Application's listen()) and requests see it.
//
// Requests never see the loop as *running*: under fibers each core has its
// own thread state (asyncio keeps the running loop per thread state); under
// --greenlet the cores share the worker's, so the running loop is unset
// while poll() runs the server's callbacks, and a greenlet trace function
// hides it whenever the app itself switches to a request's greenlet from an
// asyncio callback.
#include "plugin/python/python.hh"  // <Python.h> first

#include "core/config.hh"
#include "core/log.hh"
#include "core/options.hh"
#include "core/plugin.hh"
#include "fibers/suspend.hh"
#include "plugin/tornado/poller.hh"

namespace spindle::tornado {
namespace {

// A call into Python whose result is not needed: drop it, or log the error
// with its traceback.
void check(PyObject* result, const char* what) {
  if (result) {
    Py_DECREF(result);
    return;
  }
  python::log_exception(what);
}

std::unique_ptr<core::Loop> make_ev_loop() {
  for (core::Plugin* p : core::plugins())
    for (std::string_view n : p->loop_names())
      if (n == "ev") return p->make_loop("ev");
  return nullptr;
}

class TornadoLoop final : public core::Loop {
 public:
  explicit TornadoLoop(std::unique_ptr<core::Loop> inner) : inner_(std::move(inner)) {}
  ~TornadoLoop() override {
    // The Python objects stay (the interpreter is not finalised); the
    // poller's watchers live in inner_, which goes with us.
    if (poller_) Poller::of(poller_)->detach();
  }

  bool init() {
    poller_ = Poller::create(*inner_);
    if (!poller_) {
      python::log_exception("tornado: cannot create the loop poller");
      return false;
    }
    PyObject* mod = PyImport_ImportModule("_spindle_loop");
    PyObject* aio = mod ? PyObject_CallMethod(mod, "adopt", "O", poller_) : nullptr;
    Py_XDECREF(mod);
    if (!aio) {
      python::log_exception("tornado: cannot set up the worker's asyncio loop");
      return false;
    }
    aio_ = aio;
    // The IOLoop for it: the app's, if it made one at import; else a new one.
    static const char kIOLoop[] =
        "import warnings\n"
        "import tornado.ioloop\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', DeprecationWarning)\n"
        "    io = tornado.ioloop.IOLoop.current()\n";
    PyObject* ns = PyDict_New();
    PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins());
    PyObject* r = PyRun_String(kIOLoop, Py_file_input, ns, ns);
    if (!r) {
      python::log_exception("tornado: cannot create the IOLoop (is python3-tornado installed?)");
      Py_DECREF(ns);
      return false;
    }
    Py_DECREF(r);
    ioloop_ = PyDict_GetItemString(ns, "io");
    Py_XINCREF(ioloop_);
    Py_DECREF(ns);
    return ioloop_ != nullptr;
  }

  PyObject* asyncio_loop() const { return aio_; }
  Poller& poller() const { return *Poller::of(poller_); }

  std::string_view name() const override { return "tornado"; }
  void io_set(core::IoWatcher& w, int fd, int interest) override {
    inner_->io_set(w, fd, interest);
  }
  void io_close(core::IoWatcher& w) override { inner_->io_close(w); }
  void timer_start(core::Timer& t, double seconds) override { inner_->timer_start(t, seconds); }
  void timer_stop(core::Timer& t) override { inner_->timer_stop(t); }
  void post(core::Task& t) override { inner_->post(t); }
  bool has_posted() const override { return inner_->has_posted(); }
  double now() override { return inner_->now(); }
  void run_once(double timeout) override { inner_->run_once(timeout); }
  void set_blocking_hooks(void (*release)(void*), void (*acquire)(void*), void* data) override {
    inner_->set_blocking_hooks(release, acquire, data);
  }

  void run() override {
    check(PyObject_CallMethod(ioloop_, "start", nullptr), "tornado: IOLoop.start");
  }

  void stop() override {
    Poller::of(poller_)->stop();
    check(PyObject_CallMethod(aio_, "stop", nullptr), "tornado: stop");
  }

 private:
  std::unique_ptr<core::Loop> inner_;
  PyObject* poller_ = nullptr;
  PyObject* aio_ = nullptr;
  PyObject* ioloop_ = nullptr;
};

// --greenlet: the cores are greenlets on the worker's thread state, where
// asyncio keeps its running loop. A greenlet trace function hides it while
// any greenlet other than the worker's main one runs: whether the server
// resumed the core or the app switched to it itself (me.switch() from an
// IOLoop callback, as uWSGI's Tornado docs do), and puts it back when main
// runs again.
class RunningLoopHider {
 public:
  // While `poller` runs the server's callbacks the running loop is unset
  // already (poller.hh): nothing to do for the switches made there.
  bool install(const Poller& poller) {
    poller_ = &poller;
    PyObject* events = PyImport_ImportModule("asyncio.events");
    get_ = events ? PyObject_GetAttrString(events, "_get_running_loop") : nullptr;
    set_ = events ? PyObject_GetAttrString(events, "_set_running_loop") : nullptr;
    Py_XDECREF(events);
    PyObject* greenlet = get_ && set_ ? PyImport_ImportModule("greenlet") : nullptr;
    main_ = greenlet ? PyObject_CallMethod(greenlet, "getcurrent", nullptr) : nullptr;
    static PyMethodDef def = {"spindle_hide_running_loop",
                              reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(trace)),
                              METH_FASTCALL, "Hides asyncio's running loop from request greenlets."};
    PyObject* self = main_ ? PyCapsule_New(this, "spindle.hider", nullptr) : nullptr;
    PyObject* fn = self ? PyCFunction_New(&def, self) : nullptr;
    Py_XDECREF(self);
    PyObject* prev = fn ? PyObject_CallMethod(greenlet, "settrace", "O", fn) : nullptr;
    Py_XDECREF(fn);
    Py_XDECREF(greenlet);
    if (!prev) return false;
    if (prev != Py_None) previous_ = prev;  // the app's own tracer, still called
    else Py_DECREF(prev);
    return true;
  }

 private:
  // trace(event, (origin, target)), called by greenlet on every switch.
  static PyObject* trace(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    auto* h = static_cast<RunningLoopHider*>(PyCapsule_GetPointer(self, "spindle.hider"));
    if (!h) return nullptr;
    if (!h->poller_->polling() && nargs == 2 && PyTuple_Check(args[1]) &&
        PyTuple_GET_SIZE(args[1]) == 2) {
      PyObject* origin = PyTuple_GET_ITEM(args[1], 0);
      PyObject* target = PyTuple_GET_ITEM(args[1], 1);
      if (target == h->main_) h->restore();
      else if (origin == h->main_) h->hide();
    }
    if (h->previous_) return PyObject_Vectorcall(h->previous_, args, nargs, nullptr);
    Py_RETURN_NONE;
  }

  void hide() {
    PyObject* running = PyObject_CallNoArgs(get_);
    if (!running || running == Py_None) {
      Py_XDECREF(running);
      PyErr_Clear();
      return;
    }
    Py_XSETREF(saved_, running);
    check(PyObject_CallOneArg(set_, Py_None), "tornado: hiding the running loop");
  }

  void restore() {
    if (!saved_) return;
    PyObject* loop = saved_;
    saved_ = nullptr;
    check(PyObject_CallOneArg(set_, loop), "tornado: restoring the running loop");
    Py_DECREF(loop);
  }

  const Poller* poller_ = nullptr;
  PyObject* get_ = nullptr;       // asyncio.events._get_running_loop
  PyObject* set_ = nullptr;       // asyncio.events._set_running_loop
  PyObject* main_ = nullptr;      // the worker's main greenlet
  PyObject* previous_ = nullptr;  // a tracer the app had set
  PyObject* saved_ = nullptr;     // main's running loop while another greenlet runs
};

class TornadoPlugin final : public core::Plugin {
 public:
  std::string_view name() const override { return "tornado"; }
  // Tornado's worker start needs the interpreter (python) and runs its
  // IOLoop on libev (ev).
  std::vector<std::string_view> depends_on() const override { return {"python", "ev"}; }

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
    std::unique_ptr<core::Loop> inner = make_ev_loop();
    if (!inner) {
      SPINDLE_LOG_ERROR("tornado: the libev engine is not built in");
      return nullptr;
    }
    auto loop = std::make_unique<TornadoLoop>(std::move(inner));
    if (!loop->init()) return nullptr;
    loop_ = loop.get();
    return loop;
  }

  bool worker_start(const core::Config& cfg, core::Loop&, fibers::Engine& engine) override {
    if (cfg.loop != "tornado" || !loop_ || !engine.shares_thread_state()) return true;
    if (!hider_.install(loop_->poller())) {
      python::log_exception("tornado: cannot hide the running loop from request greenlets");
      return false;
    }
    return true;
  }

 private:
  TornadoLoop* loop_ = nullptr;
  RunningLoopHider hider_;
};

}  // namespace
}  // namespace spindle::tornado

spindle::core::Plugin* spindle_plugin_tornado() {
  static spindle::tornado::TornadoPlugin plugin;
  return &plugin;
}
