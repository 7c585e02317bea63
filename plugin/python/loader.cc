// Starting the interpreter and loading the application, once, in the master.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "core/log.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

// The interpreter this binary links against. Naming it explicitly keeps
// CPython's path discovery from following whatever "python3" comes first on
// PATH (another installation would bring another standard library).
constexpr const wchar_t* kProgramName = L"/usr/bin/python3";

bool check(PyStatus status, const char* what) {
  if (!PyStatus_Exception(status)) return true;
  SPINDLE_LOG_ERROR("python: %s: %s%s%s", what, status.func ? status.func : "",
                    status.func ? ": " : "", status.err_msg ? status.err_msg : "failed");
  return false;
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return path;
  return std::string(cwd) + "/" + path;
}

std::string dir_of(const std::string& path) {
  std::string::size_type slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Puts dirs at the front of sys.path, in order, skipping those already there.
bool prepend_sys_path(const std::vector<std::string>& dirs) {
  PyObject* path = PySys_GetObject("path");  // borrowed
  if (!path || !PyList_Check(path)) {
    SPINDLE_LOG_ERROR("python: sys.path is not a list");
    return false;
  }
  Py_ssize_t at = 0;
  for (const std::string& d : dirs) {
    PyObject* s = PyUnicode_DecodeFSDefaultAndSize(d.data(), static_cast<Py_ssize_t>(d.size()));
    int present = s ? PySequence_Contains(path, s) : -1;
    if (present < 0 || (present == 0 && PyList_Insert(path, at++, s) < 0)) {
      Py_XDECREF(s);
      log_exception("python: cannot set sys.path");
      return false;
    }
    Py_DECREF(s);
  }
  return true;
}

bool is_identifier(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_';
    if (!ok) return false;
  }
  return true;
}

// Runs FILE as a module, the way `python FILE` would run it, except that
// __name__ is not "__main__" (an `if __name__ == "__main__": app.run()` block
// must not start a development server inside the worker). The module is named
// after the file and registered in sys.modules, so another module of the app
// importing it by name gets this one instead of a second copy.
PyObject* run_file(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  std::string stem = base.substr(0, base.find('.'));
  std::string name = is_identifier(stem) ? stem : "spindle_wsgi_file";
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  // Two files with one name (--mount) must not replace each other.
  if (PyDict_GetItemString(modules, name.c_str())) name = "spindle_wsgi_file";
  for (int n = 2; PyDict_GetItemString(modules, name.c_str()); ++n)
    name = "spindle_wsgi_file_" + std::to_string(n);

  PyObject* machinery = PyImport_ImportModule("importlib.machinery");
  PyObject* util = PyImport_ImportModule("importlib.util");
  PyObject* loader = nullptr;
  PyObject* spec = nullptr;
  PyObject* mod = nullptr;
  PyObject* r = nullptr;
  bool ok = false;
  if (!machinery || !util) goto done;
  // SourceFileLoader accepts any suffix (app.wsgi as well as app.py).
  loader = PyObject_CallMethod(machinery, "SourceFileLoader", "ss", name.c_str(), path.c_str());
  if (!loader) goto done;
  spec = PyObject_CallMethod(util, "spec_from_loader", "sO", name.c_str(), loader);
  if (!spec) goto done;
  mod = PyObject_CallMethod(util, "module_from_spec", "O", spec);
  if (!mod) goto done;
  if (PyDict_SetItemString(modules, name.c_str(), mod) < 0) goto done;
  r = PyObject_CallMethod(loader, "exec_module", "O", mod);
  if (!r) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyDict_DelItemString(modules, name.c_str());
    PyErr_Clear();
    PyErr_Restore(t, v, tb);
    goto done;
  }
  ok = true;
done:
  Py_XDECREF(r);
  Py_XDECREF(spec);
  Py_XDECREF(loader);
  Py_XDECREF(util);
  Py_XDECREF(machinery);
  if (!ok) Py_CLEAR(mod);
  return mod;
}

PyObject* paste_app(const std::string& uri) {
  std::string full = uri;
  if (full.find(':') == std::string::npos) full = "config:" + full;
  PyObject* deploy = PyImport_ImportModule("paste.deploy");
  if (!deploy) return nullptr;
  char cwd[PATH_MAX];
  const char* here = getcwd(cwd, sizeof cwd) ? cwd : ".";
  PyObject* loadapp = PyObject_GetAttrString(deploy, "loadapp");
  Py_DECREF(deploy);
  if (!loadapp) return nullptr;
  PyObject* args = Py_BuildValue("(s)", full.c_str());
  PyObject* kw = Py_BuildValue("{s:s}", "relative_to", here);
  PyObject* app = args && kw ? PyObject_Call(loadapp, args, kw) : nullptr;
  Py_XDECREF(kw);
  Py_XDECREF(args);
  Py_DECREF(loadapp);
  return app;
}

// Resolves a dotted attribute path ("app" or "factory.app") on a module.
PyObject* get_callable(PyObject* mod, const std::string& dotted) {
  Py_INCREF(mod);
  PyObject* obj = mod;
  std::string::size_type start = 0;
  while (obj && start <= dotted.size()) {
    std::string::size_type dot = dotted.find('.', start);
    std::string part = dotted.substr(start, dot == std::string::npos ? dot : dot - start);
    PyObject* next = PyObject_GetAttrString(obj, part.c_str());
    Py_DECREF(obj);
    obj = next;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return obj;
}

}  // namespace

bool init_interpreter() {
  if (PyImport_AppendInittab("spindle", init_spindle_module) < 0) {
    SPINDLE_LOG_ERROR("python: cannot register the spindle module");
    return false;
  }
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // The server owns the signals; SIGINT must not become KeyboardInterrupt.
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  // print() in an app should reach the log now, not when a buffer fills.
  config.buffered_stdio = 0;
  const Settings& s = runtime().settings;
  bool ok = check(PyConfig_SetString(&config, &config.program_name, kProgramName),
                  "program name");
  ok = ok && apply_home(&config, s);
  // sys.argv: "spindle", then --pyargv split on blanks (as uWSGI does).
  std::vector<std::string> words{"spindle"};
  std::string word;
  for (char c : s.pyargv + " ") {
    if (c != ' ' && c != '\t') {
      word += c;
    } else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  PyWideStringList argv = {0, nullptr};
  for (const std::string& w : words) {
    wchar_t* wide = Py_DecodeLocale(w.c_str(), nullptr);
    ok = ok && wide && check(PyWideStringList_Append(&argv, wide), "argv");
    PyMem_RawFree(wide);
  }
  ok = ok && check(PyConfig_SetWideStringList(&config, &config.argv, argv.length, argv.items), "argv");
  for (Py_ssize_t i = 0; i < argv.length; ++i) PyMem_RawFree(argv.items[i]);
  PyMem_RawFree(argv.items);
  ok = ok && check(Py_InitializeFromConfig(&config), "cannot initialise the interpreter");
  PyConfig_Clear(&config);
  if (!ok) return false;
  PyObject* mod = PyImport_ImportModule("spindle");  // readies the types wsgi needs
  if (!mod) {
    log_exception("python: cannot import the spindle module");
    return false;
  }
  Py_DECREF(mod);
  return install_embedded_modules() && extend_spindle_module();
}

bool set_python_path(const Settings& s) {
  std::vector<std::string> front;
  if (!s.wsgi_file.empty()) front.push_back(dir_of(absolute(s.wsgi_file)));
  for (const std::string& m : s.mounts) {
    AppSource src;
    std::string mountpoint, why;
    if (parse_mount(m, &mountpoint, &src, &why) && src.kind == AppSource::kFile)
      front.push_back(dir_of(absolute(src.spec)));
  }
  for (const std::string& d : s.pythonpath) front.push_back(absolute(d));
  // The working directory (after --chdir), as uWSGI's "." entry: a project
  // laid out as DIR/proj/wsgi.py imports `proj.settings` from DIR.
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd)) front.emplace_back(cwd);
  return prepend_sys_path(front);
}

bool run_imports(const Settings& s) {
  for (const std::string& name : s.imports) {
    // A path (as uWSGI allows) is run as a file, otherwise a module name.
    bool file = name.find('/') != std::string::npos ||
                (name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0);
    PyObject* mod = file ? run_file(absolute(name)) : PyImport_ImportModule(name.c_str());
    if (!mod) {
      std::string what = "python: --import " + name + " failed";
      log_exception(what.c_str());
      return false;
    }
    Py_DECREF(mod);
  }
  return true;
}

namespace {

// `module = pkg.mod:create_app()`: a callable name ending in "()" is a factory
// that returns the app.
PyObject* resolve_callable(PyObject* mod, std::string attr) {
  bool call = attr.size() > 2 && attr.compare(attr.size() - 2, 2, "()") == 0;
  if (call) attr.resize(attr.size() - 2);
  PyObject* obj = get_callable(mod, attr);
  if (!obj || !call) return obj;
  PyObject* app = PyObject_CallNoArgs(obj);
  Py_DECREF(obj);
  return app;
}

}  // namespace

PyObject* load_callable(const AppSource& src, std::string* label) {
  PyObject* app = nullptr;
  std::string where = src.spec;
  if (src.kind == AppSource::kFile) {
    std::string path = absolute(src.spec);
    if (access(path.c_str(), R_OK) != 0) {
      SPINDLE_LOG_ERROR("python: %s: cannot read it", src.spec.c_str());
      return nullptr;
    }
    *label = src.spec + ":" + src.callable;
    if (PyObject* mod = run_file(path)) {
      app = resolve_callable(mod, src.callable);
      Py_DECREF(mod);
    }
  } else if (src.kind == AppSource::kModule) {
    std::string name = src.spec;
    std::string attr = src.callable;
    std::string::size_type colon = name.find(':');
    if (colon != std::string::npos) {
      attr = name.substr(colon + 1);
      name.resize(colon);
    }
    // uWSGI also takes a path-like module ("mysite/wsgi.py").
    if (name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0)
      name.resize(name.size() - 3);
    for (char& c : name)
      if (c == '/') c = '.';
    if (name.empty() || attr.empty()) {
      SPINDLE_LOG_ERROR("python: --module %s: expected MOD or MOD:CALLABLE", src.spec.c_str());
      return nullptr;
    }
    where = name;
    *label = name + ":" + attr;
    if (PyObject* mod = PyImport_ImportModule(name.c_str())) {
      app = resolve_callable(mod, attr);
      Py_DECREF(mod);
    }
  } else {
    *label = "paste " + src.spec;
    app = paste_app(src.spec);
  }
  if (!app) {
    std::string what = "python: cannot load the application from " + where;
    log_exception(what.c_str());
    return nullptr;
  }
  if (!PyCallable_Check(app)) {
    SPINDLE_LOG_ERROR("python: %s is not callable (a %s)", label->c_str(), Py_TYPE(app)->tp_name);
    Py_DECREF(app);
    return nullptr;
  }
  return app;
}

}  // namespace spindle::python
