// spindle.call_later() and spindle.add_callback(): Python callables that the
// worker's loop runs.
//
// The callable runs from a loop callback, on the worker's main context (the
// main thread state; under --greenlet the main greenlet), never inside an
// async core. That is what uWSGI greenlet apps rely on:
//
//     me = greenlet.getcurrent()
//     spindle.call_later(0.2, me.switch)   # the loop brings us back
//     me.parent.switch()                   # step out to the loop
//
// and under fibers a callback may spindle.resume() a core parked in
// spindle.suspend(). Everything goes through the loop seam (a Timer, a Task),
// so it works on every loop engine: under --tornado the call is an IOLoop
// callback.
//
// Lifetime
//  - Each call allocates one LoopCall (C++ heap: Timer and Task keep their
//    engine slot aligned) holding the callable and its arguments. The loop
//    owns it while its timer is armed or its task queued; it is freed when
//    it has run or was cancelled. A Timer is always disarmed first: the
//    engine has already disarmed a timer whose callback runs, and cancel()
//    calls timer_stop() before freeing.
//  - The LoopCall is freed before the callable runs (the engines touch
//    neither a fired one-shot timer nor a task after calling its callback),
//    so the callable may cancel, schedule or switch greenlets freely.
//  - call_later() also returns a small Python handle that points at the
//    LoopCall until it ran or was cancelled. The handle does not keep the
//    call alive, nor the call the handle: dropping the handle does not
//    cancel anything.
//
// Errors in the callable are logged with their traceback; the loop carries on.
#include <cmath>
#include <new>
#include <string>

#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

struct Handle;

struct LoopCall {
  core::Timer timer;
  core::Task task;
  PyObject* fn = nullptr;    // owned
  PyObject* args = nullptr;  // owned: a tuple
  Handle* handle = nullptr;  // call_later's handle while it lives (not owned)
  const char* what = "";     // "call_later" or "add_callback", for the log
};

struct Handle {
  PyObject_HEAD
  LoopCall* call;  // nullptr once the call ran or was cancelled
};

PyTypeObject* handle_type = nullptr;

// Frees c (not armed, not queued) and gives its callable and arguments to
// the caller.
void release(LoopCall* c, PyObject** fn, PyObject** args) {
  *fn = c->fn;
  *args = c->args;
  if (c->handle) c->handle->call = nullptr;
  delete c;
}

void run(LoopCall* c) {
  PyObject *fn, *args;
  const char* what = c->what;
  release(c, &fn, &args);
  PyObject* r = PyObject_Call(fn, args, nullptr);
  if (r) {
    Py_DECREF(r);
  } else {
    // Name the callable without losing its error.
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject* repr = PyObject_Repr(fn);
    const char* s = repr ? PyUnicode_AsUTF8(repr) : nullptr;
    std::string line = std::string("python: the spindle.") + what + " callback " +
                       (s ? s : "?") + " raised";
    Py_XDECREF(repr);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    log_exception(line.c_str());
  }
  Py_DECREF(fn);
  Py_DECREF(args);
}

void on_timer(core::Timer* t) { run(static_cast<LoopCall*>(t->data)); }
void on_task(core::Task* t) { run(static_cast<LoopCall*>(t->data)); }

// The loop of this worker, or nullptr with RuntimeError set.
core::Loop* loop_for(const char* what) {
  if (!on_main_thread()) {
    PyErr_Format(PyExc_RuntimeError, "spindle.%s() called from a thread the app started", what);
    return nullptr;
  }
  core::Loop* loop = this_thread().loop;
  if (!loop) {
    PyErr_Format(PyExc_RuntimeError,
                 "spindle.%s() needs a worker's loop: call it in a request or a postfork "
                 "function, not while the app is imported",
                 what);
  }
  return loop;
}

// A new LoopCall for fn(*rest[0:n]), or nullptr with an error set.
LoopCall* new_call(PyObject* fn, PyObject* const* rest, Py_ssize_t n, const char* what) {
  if (!PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError, "spindle.%s: %.100s is not callable", what,
                 Py_TYPE(fn)->tp_name);
    return nullptr;
  }
  PyObject* tuple = PyTuple_New(n);
  if (!tuple) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    Py_INCREF(rest[i]);
    PyTuple_SET_ITEM(tuple, i, rest[i]);
  }
  auto* c = new (std::nothrow) LoopCall;  // no C++ exception may cross Python's frames
  if (!c) {
    Py_DECREF(tuple);
    PyErr_NoMemory();
    return nullptr;
  }
  Py_INCREF(fn);
  c->fn = fn;
  c->args = tuple;
  c->what = what;
  return c;
}

void drop(LoopCall* c) {
  PyObject *fn, *args;
  release(c, &fn, &args);
  Py_DECREF(fn);
  Py_DECREF(args);
}

PyObject* m_call_later(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 2) {
    PyErr_SetString(PyExc_TypeError, "call_later(seconds, fn, *args) needs seconds and fn");
    return nullptr;
  }
  double seconds = PyFloat_AsDouble(args[0]);
  if (seconds == -1 && PyErr_Occurred()) return nullptr;
  if (!(seconds >= 0) || std::isinf(seconds)) {
    PyErr_SetString(PyExc_ValueError, "call_later: seconds must be a finite number >= 0");
    return nullptr;
  }
  core::Loop* loop = loop_for("call_later");
  if (!loop) return nullptr;
  auto* h = PyObject_New(Handle, handle_type);
  if (!h) return nullptr;
  h->call = nullptr;
  LoopCall* c = new_call(args[1], args + 2, nargs - 2, "call_later");
  if (!c) {
    Py_DECREF(h);
    return nullptr;
  }
  c->handle = h;
  h->call = c;
  c->timer.cb = on_timer;
  c->timer.data = c;
  loop->timer_start(c->timer, seconds);
  return reinterpret_cast<PyObject*>(h);
}

PyObject* m_add_callback(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 1) {
    PyErr_SetString(PyExc_TypeError, "add_callback(fn, *args) needs fn");
    return nullptr;
  }
  core::Loop* loop = loop_for("add_callback");
  if (!loop) return nullptr;
  LoopCall* c = new_call(args[0], args + 1, nargs - 1, "add_callback");
  if (!c) return nullptr;
  c->task.cb = on_task;
  c->task.data = c;
  loop->post(c->task);
  Py_RETURN_NONE;
}

PyObject* handle_cancel(PyObject* self, PyObject*) {
  auto* h = reinterpret_cast<Handle*>(self);
  core::Loop* loop = loop_for("TimerHandle.cancel");
  if (!loop) return nullptr;
  if (!h->call) Py_RETURN_FALSE;  // it ran, or was cancelled already
  LoopCall* c = h->call;
  loop->timer_stop(c->timer);  // disarmed before it is freed
  drop(c);
  Py_RETURN_TRUE;
}

PyObject* handle_pending(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<Handle*>(self)->call != nullptr);
}

void handle_dealloc(PyObject* self) {
  auto* h = reinterpret_cast<Handle*>(self);
  if (h->call) h->call->handle = nullptr;  // the call still runs
  PyTypeObject* type = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(type);
}

PyMethodDef handle_methods[] = {
    {"cancel", handle_cancel, METH_NOARGS,
     "cancel(): the call will not happen; True if it had not run yet."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef handle_getset[] = {
    {"pending", handle_pending, nullptr,
     "True until the call has run or was cancelled.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot handle_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_doc, const_cast<char*>("A call scheduled by spindle.call_later().")},
    {0, nullptr},
};

PyType_Spec handle_spec = {"spindle.TimerHandle", sizeof(Handle), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, handle_slots};

template <typename F>
PyCFunction cfunc(F f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

PyMethodDef functions[] = {
    {"call_later", cfunc(m_call_later), METH_FASTCALL,
     "call_later(seconds, fn, *args): the worker's loop calls fn(*args) after seconds, outside "
     "every request (a greenlet's me.switch, a function that calls resume()). Returns a handle "
     "whose cancel() stops it."},
    {"add_callback", cfunc(m_add_callback), METH_FASTCALL,
     "add_callback(fn, *args): the worker's loop calls fn(*args) soon, outside every request."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

bool loop_calls_init(PyObject* module) {
  handle_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&handle_spec));
  if (!handle_type) return false;
  Py_INCREF(handle_type);
  if (PyModule_AddObject(module, "TimerHandle", reinterpret_cast<PyObject*>(handle_type)) < 0) {
    Py_DECREF(handle_type);
    return false;
  }
  return PyModule_AddFunctions(module, functions) == 0;
}

}  // namespace spindle::python
