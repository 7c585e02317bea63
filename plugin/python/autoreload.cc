// --py-autoreload N (development): every N seconds worker 1 looks at the
// source file of every module in sys.modules; when one changed since the
// worker started, it logs which and sends SIGHUP to the master, whose
// graceful reload loads the code anew (as uWSGI's auto-reloader does).
//
// It runs as a timer on the worker's loop, so it needs no thread and works
// with every loop engine. One worker watching is enough: every worker runs
// the same code, and several would ask for several reloads.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <unordered_map>

#include "core/log.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

struct Watch {
  core::Timer timer;
  core::Loop* loop = nullptr;
  double every = 1;
  std::unordered_map<std::string, std::int64_t> mtimes;  // file -> mtime (ns)
};

Watch& watch() {
  static Watch w;
  return w;
}

std::int64_t mtime_of(const std::string& file) {
  struct stat st;
  if (stat(file.c_str(), &st) != 0) return -1;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// The first file whose mtime moved, or "" (and records new files).
std::string changed_file() {
  Watch& w = watch();
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  PyObject* items = PyDict_Items(modules);       // a copy: imports may run meanwhile
  if (!items) {
    PyErr_Clear();
    return {};
  }
  std::string changed;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items) && changed.empty(); ++i) {
    PyObject* mod = PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 1);
    PyObject* file = PyObject_GetAttrString(mod, "__file__");
    if (!file || !PyUnicode_Check(file)) {
      Py_XDECREF(file);
      PyErr_Clear();
      continue;
    }
    const char* utf8 = PyUnicode_AsUTF8(file);
    std::string path = utf8 ? utf8 : "";
    Py_DECREF(file);
    if (!utf8) {
      PyErr_Clear();
      continue;
    }
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".pyc") == 0) path.pop_back();
    std::int64_t now = mtime_of(path);
    if (now < 0) continue;
    auto [it, inserted] = w.mtimes.emplace(path, now);
    if (!inserted && it->second != now) changed = path;
  }
  Py_DECREF(items);
  return changed;
}

void on_timer(core::Timer*) {
  Watch& w = watch();
  std::string file = changed_file();
  if (file.empty()) {
    w.loop->timer_start(w.timer, w.every);
    return;
  }
  SPINDLE_LOG_INFO("py-autoreload: %s changed; asking the master to reload", file.c_str());
  kill(getppid(), SIGHUP);
}

}  // namespace

void start_autoreload(core::Loop& loop, int seconds) {
  if (seconds <= 0 || runtime().worker_id != 1) return;
  Watch& w = watch();
  w.loop = &loop;
  w.every = seconds;
  w.timer.cb = on_timer;
  changed_file();  // the baseline: what this worker runs now
  loop.timer_start(w.timer, w.every);
}

}  // namespace spindle::python
