// The `spindle` module, importable by the app.
//
// Its waits park the calling core (other requests keep running) and so work
// only inside a request, on the worker's own thread; elsewhere they raise
// RuntimeError. A wait cut short by the server (graceful stop) raises
// spindle.Cancelled, a BaseException so that `except Exception` in the app
// does not swallow it.
//
// call_later() and add_callback(), which run callables from the loop rather
// than park, live in loop_calls.cc. What is simpler in Python (connect, wait)
// lives in lib/_spindle_async.py and is added to this module by
// extend_spindle_module().
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "core/access_log.hh"
#include "core/log.hh"
#include "core/park.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

PyObject* cancelled_error = nullptr;
PyObject* postfork_hooks = nullptr;  // list, in registration order

}  // namespace

bool in_request_core(const char* what) {
  if (!on_main_thread()) {
    PyErr_Format(PyExc_RuntimeError, "spindle.%s() called from a thread the app started", what);
    return false;
  }
  if (core::current_core() < 0) {
    PyErr_Format(PyExc_RuntimeError, "spindle.%s() can only be called while serving a request",
                 what);
    return false;
  }
  return true;
}

PyObject* raise_cancelled() {
  PyErr_SetString(cancelled_error, "the wait was cancelled by the server");
  return nullptr;
}

namespace {

bool in_core(const char* what) { return in_request_core(what); }

// None or a number of seconds (>= 0) -> no deadline or that many seconds
// from now.
bool timeout_arg(PyObject* o, core::Deadline* out) {
  *out = core::Deadline::none();
  if (!o || o == Py_None) return true;
  double t = PyFloat_AsDouble(o);
  if (t == -1 && PyErr_Occurred()) return false;
  if (t < 0 || t != t) {
    PyErr_SetString(PyExc_ValueError, "timeout must be a non-negative number or None");
    return false;
  }
  *out = core::Deadline::after(t);
  return true;
}

PyObject* cancelled() { return raise_cancelled(); }

PyObject* m_worker_id(PyObject*, PyObject*) { return PyLong_FromLong(core::worker_id()); }

PyObject* m_core_id(PyObject*, PyObject*) {
  return PyLong_FromLong(on_main_thread() ? core::current_core() : -1);
}

// Tells requests apart for state kept per core across calls (uwsgi.py): 0
// outside a request, else a number no other request of this worker had.
PyObject* m_request_serial(PyObject*, PyObject*) {
  int core = on_main_thread() ? core::current_core() : -1;
  if (core < 0) return PyLong_FromLong(0);
  return PyLong_FromUnsignedLongLong(core_slot(core).request.serial);
}

PyObject* m_sleep(PyObject*, PyObject* arg) {
  double seconds = PyFloat_AsDouble(arg);
  if (seconds == -1 && PyErr_Occurred()) return nullptr;
  if (seconds < 0 || seconds != seconds) {
    PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
    return nullptr;
  }
  if (!in_core("sleep")) return nullptr;
  if (core::park_for(seconds) == core::Wake::kCancelled) return cancelled();
  Py_RETURN_NONE;
}

PyObject* wait_fd(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, int interest,
                  const char* what) {
  PyObject* fdobj = nullptr;
  PyObject* timeout = Py_None;
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  if (nargs > 2) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments", what);
    return nullptr;
  }
  if (nargs > 0) fdobj = args[0];
  if (nargs > 1) timeout = args[1];
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, k);
    if (nargs < 2 && PyUnicode_CompareWithASCIIString(name, "timeout") == 0) {
      timeout = args[nargs + k];
    } else if (nargs < 1 && PyUnicode_CompareWithASCIIString(name, "fd") == 0) {
      fdobj = args[nargs + k];
    } else {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", what, name);
      return nullptr;
    }
  }
  if (!fdobj) {
    PyErr_Format(PyExc_TypeError, "%s() needs a file descriptor", what);
    return nullptr;
  }
  int fd = PyObject_AsFileDescriptor(fdobj);  // an int or an object with fileno()
  if (fd < 0) return nullptr;
  core::Deadline deadline;
  if (!timeout_arg(timeout, &deadline) || !in_core(what)) return nullptr;
  // The app owns fd and may close it while this core waits (another request
  // or a loop callback may). Watch a duplicate: the loop's registration then
  // always names an open file, never an fd number that was closed and maybe
  // reused meanwhile (libev aborts the worker on a watched fd that was
  // closed under it). Closing the app's fd leaves the wait to its timeout or
  // to the file's own end (a peer's close makes it readable).
  int watched = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (watched < 0) return PyErr_SetFromErrno(PyExc_OSError);
  CoreSlot& slot = core_slot(core::current_core());
  core::Wake why = core::park(slot.watcher, watched, interest, deadline);
  core::forget_fd(slot.watcher);
  close(watched);
  if (why == core::Wake::kCancelled) return cancelled();
  return PyBool_FromLong(why == core::Wake::kReady);
}

PyObject* m_wait_fd_read(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kw) {
  return wait_fd(args, nargs, kw, core::kRead, "wait_fd_read");
}

PyObject* m_wait_fd_write(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kw) {
  return wait_fd(args, nargs, kw, core::kWrite, "wait_fd_write");
}

PyObject* m_suspend(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:suspend", const_cast<char**>(kwlist),
                                   &timeout)) {
    return nullptr;
  }
  core::Deadline deadline;
  if (!timeout_arg(timeout, &deadline) || !in_core("suspend")) return nullptr;
  CoreSlot& slot = core_slot(core::current_core());
  slot.suspended = true;
  core::Wake why = core::park_until_woken(deadline);
  slot.suspended = false;
  if (why == core::Wake::kCancelled) return cancelled();
  return PyBool_FromLong(why == core::Wake::kReady);
}

PyObject* m_yield_now(PyObject*, PyObject*) {
  if (!in_core("yield_now")) return nullptr;
  core::yield_now();
  Py_RETURN_NONE;
}

PyObject* m_masterpid(PyObject*, PyObject*) { return PyLong_FromLong(runtime().master_pid); }

PyObject* m_log(PyObject*, PyObject* arg) {
  PyObject* s = PyObject_Str(arg);
  if (!s) return nullptr;
  Py_ssize_t n;
  const char* text = PyUnicode_AsUTF8AndSize(s, &n);
  if (text) core::log_text(core::Level::kInfo, text, static_cast<std::size_t>(n));
  Py_DECREF(s);
  if (!text) return nullptr;
  Py_RETURN_NONE;
}

PyObject* m_resume(PyObject*, PyObject* arg) {
  long id = PyLong_AsLong(arg);
  if (id == -1 && PyErr_Occurred()) return nullptr;
  if (!on_main_thread()) {
    PyErr_SetString(PyExc_RuntimeError, "spindle.resume() called from a thread the app started");
    return nullptr;
  }
  // Only a core parked in suspend(): the core also parks its sleeps in
  // park_until_woken(), and resume() must not cut a spindle.sleep() short.
  const auto& cores = runtime().cores;
  if (id < 0 || static_cast<std::size_t>(id) >= cores.size() || !cores[id] ||
      !cores[id]->suspended) {
    return PyBool_FromLong(0);
  }
  return PyBool_FromLong(core::wake(static_cast<int>(id), core::Wake::kReady));
}

PyObject* m_postfork(PyObject*, PyObject* fn) {
  if (!PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError, "spindle.postfork: %.100s is not callable",
                 Py_TYPE(fn)->tp_name);
    return nullptr;
  }
  if (PyList_Append(postfork_hooks, fn) < 0) return nullptr;
  Py_INCREF(fn);
  return fn;
}

template <typename F>
PyCFunction cfunc(F f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

void run_callable(void* arg) {
  auto* fn = static_cast<PyObject*>(arg);
  PyObject* r = PyObject_CallNoArgs(fn);
  if (!r) log_exception("python: exception in a function run by spindle._run_on_core()");
  Py_XDECREF(r);
  Py_DECREF(fn);
}

// Internal (the benchmark's driver): fn() on a core of its own, no request.
PyObject* m_run_on_core(PyObject*, PyObject* fn) {
  if (!PyCallable_Check(fn)) {
    PyErr_SetString(PyExc_TypeError, "_run_on_core(fn): fn must be callable");
    return nullptr;
  }
  if (!on_main_thread() || core::current_core() >= 0) {
    PyErr_SetString(PyExc_RuntimeError,
                    "spindle._run_on_core() runs from the loop (call_later), not in a request");
    return nullptr;
  }
  Py_INCREF(fn);
  if (!core::run_on_core(run_callable, fn)) {
    Py_DECREF(fn);
    PyErr_SetString(PyExc_RuntimeError, "spindle._run_on_core(): every async core is busy");
    return nullptr;
  }
  Py_RETURN_NONE;
}

// uwsgi.set_logvar / get_logvar: the request's log variables (strings).
PyObject* m_set_logvar(PyObject*, PyObject* args) {
  const char *k, *v;
  Py_ssize_t kn, vn;
  if (!PyArg_ParseTuple(args, "s#s#", &k, &kn, &v, &vn)) return nullptr;
  if (!on_main_thread() ||
      !core::set_request_logvar({k, static_cast<std::size_t>(kn)}, {v, static_cast<std::size_t>(vn)})) {
    PyErr_SetString(PyExc_RuntimeError, "set_logvar() outside a request");
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* m_get_logvar(PyObject*, PyObject* args) {
  const char* k;
  Py_ssize_t kn;
  if (!PyArg_ParseTuple(args, "s#", &k, &kn)) return nullptr;
  std::string value;
  if (!on_main_thread() || !core::get_request_logvar({k, static_cast<std::size_t>(kn)}, &value))
    Py_RETURN_NONE;
  return PyUnicode_DecodeLatin1(value.data(), static_cast<Py_ssize_t>(value.size()), "replace");
}

PyMethodDef methods[] = {
    {"_set_logvar", m_set_logvar, METH_VARARGS, "_set_logvar(name, value): see uwsgi.set_logvar."},
    {"_get_logvar", m_get_logvar, METH_VARARGS, "_get_logvar(name): see uwsgi.get_logvar."},
    {"worker_id", m_worker_id, METH_NOARGS, "worker_id(): this worker's number (1..processes)."},
    {"core_id", m_core_id, METH_NOARGS,
     "core_id(): the async core serving this request, -1 outside a request."},
    {"_request_serial", m_request_serial, METH_NOARGS,
     "_request_serial(): identifies the running request within the worker (0 outside one)."},
    {"sleep", m_sleep, METH_O, "sleep(seconds): parks this request; others keep running."},
    {"wait_fd_read", cfunc(m_wait_fd_read), METH_FASTCALL | METH_KEYWORDS,
     "wait_fd_read(fd, timeout=None): True when fd is readable, False on timeout."},
    {"wait_fd_write", cfunc(m_wait_fd_write), METH_FASTCALL | METH_KEYWORDS,
     "wait_fd_write(fd, timeout=None): True when fd is writable, False on timeout."},
    {"suspend", cfunc(m_suspend), METH_VARARGS | METH_KEYWORDS,
     "suspend(timeout=None): parks this request until resume(core_id); True when resumed, "
     "False on timeout."},
    {"yield_now", m_yield_now, METH_NOARGS,
     "yield_now(): lets every other ready request run once, then continues."},
    {"masterpid", m_masterpid, METH_NOARGS, "masterpid(): the pid of the master process."},
    {"_run_on_core", m_run_on_core, METH_O,
     "_run_on_core(fn): internal; from the loop, runs fn() at once on a free async core."},
    {"log", m_log, METH_O, "log(message): writes message to the server log (level INFO)."},
    {"resume", m_resume, METH_O,
     "resume(core_id): wakes a request parked in suspend(); False if it is not parked there."},
    {"postfork", m_postfork, METH_O,
     "@postfork: runs the function in every worker after fork, before it serves requests."},
    {"_websocket_handshake", ws_handshake, METH_VARARGS, "uwsgi.websocket_handshake"},
    {"_websocket_recv", ws_recv, METH_NOARGS, "uwsgi.websocket_recv"},
    {"_websocket_recv_nb", ws_recv_nb, METH_NOARGS, "uwsgi.websocket_recv_nb"},
    {"_websocket_send", ws_send, METH_O, "uwsgi.websocket_send"},
    {"_websocket_send_binary", ws_send_binary, METH_O, "uwsgi.websocket_send_binary"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "spindle", "The spindle application server, seen from the app.", -1,
    methods, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace

PyObject* init_spindle_module() {
  PyObject* m = PyModule_Create(&module_def);
  if (!m) return nullptr;
  postfork_hooks = PyList_New(0);
  cancelled_error = PyErr_NewExceptionWithDoc(
      "spindle.Cancelled", "A wait was cancelled by the server (it is stopping).",
      PyExc_BaseException, nullptr);
  if (!postfork_hooks || !cancelled_error || !input_init(m) || !errors_init(m) ||
      !file_wrapper_init(m) || !responder_init(m) || !loop_calls_init(m) ||
      !waker_init(m) || !websocket_init(m)) {
    Py_DECREF(m);
    return nullptr;
  }
  Py_INCREF(cancelled_error);
  const Runtime& rt = runtime();
  if (PyModule_AddObject(m, "Cancelled", cancelled_error) < 0 ||
      PyModule_AddStringConstant(m, "version", "spindle") < 0 ||
      PyModule_AddIntConstant(m, "processes", rt.processes) < 0 ||
      PyModule_AddIntConstant(m, "cores", rt.async_cores) < 0 ||
      PyModule_AddIntConstant(m, "threads", rt.threads) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}

bool extend_spindle_module() {
  PyObject* spindle = PyImport_ImportModule("spindle");
  PyObject* helpers = spindle ? PyImport_ImportModule("_spindle_async") : nullptr;
  PyObject* names = helpers ? PyObject_GetAttrString(helpers, "__all__") : nullptr;
  PyObject* seq = names ? PySequence_Fast(names, "_spindle_async.__all__ must be a list") : nullptr;
  bool ok = seq != nullptr;
  for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(seq); ++i) {
    PyObject* name = PySequence_Fast_GET_ITEM(seq, i);
    PyObject* value = PyObject_GetAttr(helpers, name);
    ok = value && PyObject_SetAttr(spindle, name, value) == 0;
    Py_XDECREF(value);
  }
  Py_XDECREF(seq);
  Py_XDECREF(names);
  Py_XDECREF(helpers);
  Py_XDECREF(spindle);
  if (!ok) log_exception("python: cannot complete the spindle module");
  return ok;
}

namespace {

// Calls a post-fork function; on failure logs why, naming `kind` and the
// function, and returns false.
bool call_postfork(PyObject* fn, const char* kind) {
  Py_INCREF(fn);
  PyObject* r = PyObject_CallNoArgs(fn);
  if (r) {
    Py_DECREF(r);
    Py_DECREF(fn);
    return true;
  }
  // As in uWSGI, a hook that raises is logged and the worker serves anyway:
  // one failing hook (a cache that is down) must not take the site down.
  // SystemExit is the hook asking the worker not to start.
  bool fatal = PyErr_ExceptionMatches(PyExc_SystemExit);
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);  // keep the hook's error while asking its name
  PyObject* name = PyObject_GetAttrString(fn, "__qualname__");
  const char* s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : nullptr;
  std::string what = std::string("python: ") + kind + " " + (s ? s : "?") +
                     (fatal ? " raised SystemExit; the worker will not start"
                            : " raised; the worker serves anyway");
  Py_XDECREF(name);
  PyErr_Clear();
  PyErr_Restore(type, value, tb);
  log_exception(what.c_str());
  Py_DECREF(fn);
  return !fatal;
}

}  // namespace

bool run_postfork_hooks() {
  Py_ssize_t n = postfork_hooks ? PyList_GET_SIZE(postfork_hooks) : 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (!call_postfork(PyList_GET_ITEM(postfork_hooks, i), "postfork function")) return false;
  }
  // uWSGI's own hook: `uwsgi.post_fork_hook = f` in an app that imported uwsgi.
  PyObject* uwsgi = PyDict_GetItemString(PyImport_GetModuleDict(), "uwsgi");  // borrowed
  if (!uwsgi) return true;
  PyObject* hook = PyObject_GetAttrString(uwsgi, "post_fork_hook");
  if (!hook) {
    PyErr_Clear();
    return true;
  }
  bool ok = true;
  if (hook != Py_None) {
    if (!PyCallable_Check(hook)) {
      SPINDLE_LOG_ERROR("python: uwsgi.post_fork_hook is not callable (a %s); the worker will "
                        "not start", Py_TYPE(hook)->tp_name);
      ok = false;
    } else {
      ok = call_postfork(hook, "uwsgi.post_fork_hook");
    }
  }
  Py_DECREF(hook);
  return ok;
}

}  // namespace spindle::python
