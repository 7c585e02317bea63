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
// --greenlet the cores share the worker's, so a switch observer hides the
// running loop while a core runs and restores it after.
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

  std::string_view name() const override { return "tornado"; }
  void io_set(core::IoWatcher& w, int fd, int interest) override {
    inner_->io_set(w, fd, interest);
  }
  void io_close(core::IoWatcher& w) override { inner_->io_close(w); }
  void timer_start(core::Timer& t, double seconds) override { inner_->timer_start(t, seconds); }
  void timer_stop(core::Timer& t) override { inner_->timer_stop(t); }
  void post(core::Task& t) override { inner_->post(t); }
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

// --greenlet: the cores run on the worker's thread state, where asyncio
// keeps its running loop. Hide it while a core runs.
struct RunningLoopHider {
  PyObject* get = nullptr;  // asyncio.events._get_running_loop
  PyObject* set = nullptr;  // asyncio.events._set_running_loop
  PyObject* saved = nullptr;

  static void in(fibers::Context*, void* data) {
    auto* h = static_cast<RunningLoopHider*>(data);
    PyObject* running = PyObject_CallNoArgs(h->get);
    if (!running) {
      PyErr_Clear();
      return;
    }
    if (running == Py_None) {
      Py_DECREF(running);
      return;
    }
    h->saved = running;
    PyObject* r = PyObject_CallOneArg(h->set, Py_None);
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
  }

  static void out(fibers::Context*, void* data) {
    auto* h = static_cast<RunningLoopHider*>(data);
    if (!h->saved) return;
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyObject* r = PyObject_CallOneArg(h->set, h->saved);
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
    Py_CLEAR(h->saved);
    PyErr_Restore(exc_type, exc, tb);
  }
};

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
    if (cfg.loop != "tornado" || !loop_ || engine.name() != "greenlet") return true;
    PyObject* events = PyImport_ImportModule("asyncio.events");
    hider_.get = events ? PyObject_GetAttrString(events, "_get_running_loop") : nullptr;
    hider_.set = events ? PyObject_GetAttrString(events, "_set_running_loop") : nullptr;
    Py_XDECREF(events);
    if (!hider_.get || !hider_.set) {
      python::log_exception("tornado: asyncio.events lacks _get/_set_running_loop");
      return false;
    }
    fibers::SwitchObserver obs;
    obs.on_switch_in = RunningLoopHider::in;
    obs.on_switch_out = RunningLoopHider::out;
    obs.data = &hider_;
    engine.add_observer(obs);
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
