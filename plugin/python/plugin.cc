// The python plugin: its options and its hooks into the server's phases.
#include "core/plugin.hh"

#include <unistd.h>

#include <cstdlib>
#include <string>

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

ThreadRuntime& this_thread() {
  static thread_local ThreadRuntime tr;
  return tr;
}

bool on_main_thread() { return this_thread().serving; }

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
    t.add({"pp", 0, true, "DIR", "same as --pythonpath", OptionTable::list(s.pythonpath), true});
    t.add({"paste", 0, true, "config:FILE", "load the application with PasteDeploy",
           OptionTable::text(s.paste)});
    t.add({"mount", 0, true, "MOUNTPOINT=APP",
           "load another application (FILE.py, FILE.wsgi, MOD:CALLABLE, FILE.ini) at "
           "MOUNTPOINT (repeatable)", OptionTable::list(s.mounts), true});
    t.add({"manage-script-name", 0, false, "",
           "choose the mounted app by the longest prefix of PATH_INFO and move it to SCRIPT_NAME",
           OptionTable::flag(s.manage_script_name)});
    for (const char* name : {"import", "pyimport", "python-import"}) {
      t.add({name, 0, true, "MODULE", "import MODULE (or run FILE.py) before the application "
             "(repeatable)",
             OptionTable::list(s.imports), true});
    }
    t.add({"pyargv", 0, true, "\"ARGS\"", "sys.argv for the app: spindle, then ARGS split on blanks",
           OptionTable::text(s.pyargv)});
    t.add({"wsgi-disable-file-wrapper", 0, false, "", "leave wsgi.file_wrapper out of the environ",
           OptionTable::flag(s.disable_file_wrapper)});
    for (const char* name : {"py-autoreload", "python-autoreload", "py-auto-reload",
                             "python-auto-reload"}) {
      t.add({name, 0, true, "SECONDS",
             "development: reload when an imported module's file changes, checked every SECONDS",
             OptionTable::integer(s.autoreload, 0, 86400)});
    }
    for (const char* name : {"home", "virtualenv", "venv", "pyhome"}) {
      std::string opt = name;
      t.add({name, opt == "home" ? 'H' : '\0', true, "DIR",
             "import from the virtualenv DIR (made with /usr/bin/python3 -m venv)",
             [&s, opt](std::string_view v) -> std::string {
               if (v.empty()) return "expected a directory, got an empty string";
               s.home.assign(v);
               s.home_option = opt;
               return {};
             }});
    }
  }

  std::string check(const core::Config& cfg) override {
    Settings& s = runtime().settings;
    s.lazy_apps = cfg.lazy_apps;
    for (const std::string& m : s.mounts) {
      std::string mountpoint, why;
      AppSource src;
      if (!parse_mount(m, &mountpoint, &src, &why)) return "--mount: " + why;
    }
    return check_home(s);
  }

  bool master_init(const core::Config& cfg) override {
    Runtime& rt = runtime();
    Settings& s = rt.settings;
    int sources = !s.wsgi_file.empty() + !s.module.empty() + !s.paste.empty();
    if (sources + s.mounts.size() == 0) {
      SPINDLE_LOG_ERROR("python: give one application: --wsgi-file FILE, --module "
                        "MOD[:CALLABLE] or --paste config:FILE, and/or --mount "
                        "MOUNTPOINT=APP (%s)",
                        sources ? "got more than one" : "got none");
      return false;
    }
    rt.multiprocess = cfg.processes > 1;
    rt.processes = cfg.processes;
    rt.async_cores = (cfg.async > 0 ? cfg.async : 1) * cfg.threads;
    rt.threads = cfg.threads;
    rt.master_pid = getpid();
    if (!init_interpreter()) return false;
    this_thread().serving = true;
    if (!environ_init()) {
      log_exception("python: cannot prepare the WSGI environ");
      return false;
    }
    // --lazy-apps: each worker loads the apps itself, after fork (a reload's
    // trial run still loads them here, to check the new code imports).
    if ((!s.lazy_apps || getenv("SPINDLE_CHECK_ONLY")) && !load_apps(s)) return false;
    // The interpreter stays initialised and the GIL stays held: the workers
    // inherit both through fork().
    return true;
  }

  bool post_fork(const core::Config&, int worker_id) override {
    PyOS_AfterFork_Child();
    runtime().worker_id = worker_id;
    return true;
  }

  bool worker_start(const core::Config& cfg, core::Loop& loop, fibers::Engine& engine) override {
    // spindle.call_later() works from here on, postfork included.
    if (!start_thread_states(cfg, loop, engine, 0)) return false;
    install_traceback_dumper(engine);
    Runtime& rt = runtime();
    if (rt.settings.lazy_apps) {
      if (!load_apps(rt.settings)) return false;
      SPINDLE_LOG_INFO("python: worker %d loaded its apps (lazy-apps)", rt.worker_id);
    }
    start_autoreload(loop, rt.settings.autoreload);
    return run_postfork_hooks();
  }

  bool thread_start(const core::Config& cfg, core::Loop& loop, fibers::Engine& engine,
                    int thread) override {
    return start_thread_states(cfg, loop, engine, thread);
  }

  void thread_stop() override { stop_thread(); }

  void worker_stop() override {
    resume_after_threads();
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

  core::App* app() override { return runtime().apps.empty() ? nullptr : &wsgi_app(); }
};

}  // namespace
}  // namespace spindle::python

spindle::core::Plugin* spindle_plugin_python() {
  static spindle::python::PythonPlugin plugin;
  return &plugin;
}
