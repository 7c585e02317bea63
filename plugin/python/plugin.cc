// The python plugin: its options and its hooks into the server's phases.
#include "core/plugin.hh"

#include <unistd.h>

#include "core/config.hh"
#include "core/log.hh"
#include "core/options.hh"
#include "plugin/python/python.hh"

namespace spindle::python {

Runtime& runtime() {
  static Runtime rt;
  return rt;
}

CoreSlot& core_slot(int id) {
  auto& cores = runtime().cores;
  if (id < 0) id = 0;
  if (static_cast<std::size_t>(id) >= cores.size()) cores.resize(id + 1);
  if (!cores[id]) {
    cores[id] = std::make_unique<CoreSlot>();
    cores[id]->id = id;
  }
  return *cores[id];
}

bool on_main_thread() { return PyThread_get_thread_ident() == runtime().main_thread; }

namespace {

class PythonPlugin final : public core::Plugin {
 public:
  std::string_view name() const override { return "python"; }

  void add_options(core::OptionTable& t) override {
    Settings& s = runtime().settings;
    using core::OptionTable;
    t.add({"wsgi-file", 0, true, "FILE", "load the WSGI application from a Python file",
           OptionTable::text(s.wsgi_file)});
    t.add({"file", 0, true, "FILE", "same as --wsgi-file", OptionTable::text(s.wsgi_file)});
    t.add({"module", 'w', true, "MOD[:CALLABLE]", "load the WSGI application from a module",
           OptionTable::text(s.module)});
    t.add({"wsgi", 0, true, "MOD[:CALLABLE]", "same as --module", OptionTable::text(s.module)});
    t.add({"callable", 0, true, "NAME", "the application's name in its file or module "
           "(default: application)", OptionTable::text(s.callable)});
    t.add({"pythonpath", 0, true, "DIR", "add DIR to sys.path (repeatable)",
           OptionTable::list(s.pythonpath), true});
    t.add({"python-path", 0, true, "DIR", "same as --pythonpath",
           OptionTable::list(s.pythonpath), true});
    t.add({"paste", 0, true, "config:FILE", "load the application with PasteDeploy",
           OptionTable::text(s.paste)});
  }

  bool master_init(const core::Config& cfg) override {
    Runtime& rt = runtime();
    Settings& s = rt.settings;
    int sources = !s.wsgi_file.empty() + !s.module.empty() + !s.paste.empty();
    if (sources != 1) {
      SPINDLE_LOG_ERROR("python: give exactly one application: --wsgi-file FILE, --module "
                        "MOD[:CALLABLE] or --paste config:FILE (%s)",
                        sources ? "got more than one" : "got none");
      return false;
    }
    rt.multiprocess = cfg.processes > 1;
    rt.processes = cfg.processes;
    rt.async_cores = cfg.async > 0 ? cfg.async : 1;
    rt.master_pid = getpid();
    if (!init_interpreter()) return false;
    rt.main_thread = PyThread_get_thread_ident();
    if (!load_app(s)) return false;
    if (!environ_init()) {
      log_exception("python: cannot prepare the WSGI environ");
      return false;
    }
    // The interpreter stays initialised and the GIL stays held: the workers
    // inherit both through fork().
    return true;
  }

  bool post_fork(const core::Config&, int worker_id) override {
    PyOS_AfterFork_Child();
    Runtime& rt = runtime();
    rt.worker_id = worker_id;
    rt.main_thread = PyThread_get_thread_ident();
    return true;
  }

  bool worker_start(const core::Config& cfg, core::Loop& loop, fibers::Engine& engine) override {
    if (!start_thread_states(cfg, loop, engine)) return false;
    runtime().loop = &loop;  // spindle.call_later() works from here on, postfork included
    return run_postfork_hooks();
  }

  void worker_stop() override {
    errors_flush_all();
    // Give the app's atexit handlers a chance (metrics flushes, temp files),
    // without a full finalisation that could wait on the app's threads.
    PyObject* atexit = PyImport_ImportModule("atexit");
    PyObject* r = atexit ? PyObject_CallMethod(atexit, "_run_exitfuncs", nullptr) : nullptr;
    if (!r) log_exception("python: atexit handlers failed");
    Py_XDECREF(r);
    Py_XDECREF(atexit);
    PyObject* out = PySys_GetObject("stdout");  // borrowed
    if (out && out != Py_None) {
      r = PyObject_CallMethod(out, "flush", nullptr);
      if (!r) PyErr_Clear();
      Py_XDECREF(r);
    }
  }

  core::App* app() override { return runtime().app ? &wsgi_app() : nullptr; }
};

}  // namespace
}  // namespace spindle::python

spindle::core::Plugin* spindle_plugin_python() {
  static spindle::python::PythonPlugin plugin;
  return &plugin;
}
