// spindle._waker(): the thread-safe way to end a spindle.wait().
//
// A Waker belongs to the core that made it. Calling it, from any thread
// (a ThreadPoolExecutor's worker, an asyncio loop running in another
// thread, a done-callback), sends one message to the loop of the core's
// worker thread (core::call_on_core_thread: an eventfd that loop watches);
// there, with the GIL held like every loop callback, the message marks the
// waker fired and wakes the core if it is parked in waker.park(). Only the
// core that made it may park on it.
//
//     waker = spindle._waker()
//     future.add_done_callback(waker)     # any arguments are ignored
//     while not future.done():
//         waker.park(timeout)             # False on timeout
//
// Each message holds a reference to the waker until the loop ran it, so a
// waker dropped by the app early stays valid; a message that arrives after
// the wait ended only marks a waker nobody parks on any more. Because it is
// a wake of that one waker, never of "the core", a late message cannot cut
// short a later, unrelated wait of the same core.
#include "core/park.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

struct Waker {
  PyObject_HEAD
  int core;
  bool fired;   // a message reached the loop
  bool parked;  // the core is parked in park()
};

PyTypeObject* waker_type = nullptr;

// On the core's loop, GIL held.
void delivered(void* arg) {
  auto* w = static_cast<Waker*>(arg);
  w->fired = true;
  if (w->parked) core::wake(w->core, core::Wake::kReady);
  Py_DECREF(reinterpret_cast<PyObject*>(w));
}

PyObject* waker_call(PyObject* self, PyObject*, PyObject*) {
  auto* w = reinterpret_cast<Waker*>(self);
  if (w->fired) Py_RETURN_NONE;
  Py_INCREF(self);
  if (!core::call_on_core_thread(w->core, delivered, self)) Py_DECREF(self);  // the worker stops
  Py_RETURN_NONE;
}

PyObject* waker_park(PyObject* self, PyObject* args) {
  auto* w = reinterpret_cast<Waker*>(self);
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTuple(args, "|O:park", &timeout)) return nullptr;
  core::Deadline deadline;  // None: no time limit
  if (timeout != Py_None) {
    double seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1 && PyErr_Occurred()) return nullptr;
    if (!(seconds >= 0)) {
      PyErr_SetString(PyExc_ValueError, "timeout must be a non-negative number or None");
      return nullptr;
    }
    deadline = core::Deadline::after(seconds);
  }
  if (!in_request_core("_waker.park")) return nullptr;
  if (core::current_core() != w->core) {
    PyErr_SetString(PyExc_RuntimeError, "a spindle waker can only be parked on by its own core");
    return nullptr;
  }
  if (w->fired) Py_RETURN_TRUE;
  w->parked = true;
  core::Wake why = core::park_until_woken(deadline);
  w->parked = false;
  if (why == core::Wake::kCancelled) return raise_cancelled();
  return PyBool_FromLong(w->fired);
}

PyObject* waker_fired(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<Waker*>(self)->fired);
}

void waker_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(tp);
}

PyMethodDef waker_methods[] = {
    {"park", waker_park, METH_VARARGS,
     "park(timeout=None): parks this core until the waker is called (True) or timeout "
     "seconds pass (False)."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef waker_getset[] = {
    {"fired", waker_fired, nullptr, "True once a call reached the core's loop.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot waker_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(waker_call)},
    {Py_tp_dealloc, reinterpret_cast<void*>(waker_dealloc)},
    {Py_tp_methods, waker_methods},
    {Py_tp_getset, waker_getset},
    {Py_tp_doc, const_cast<char*>("Wakes the core that made it; callable from any thread.")},
    {0, nullptr},
};

PyType_Spec waker_spec = {"spindle.Waker", sizeof(Waker), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, waker_slots};

PyObject* m_waker(PyObject*, PyObject*) {
  if (!in_request_core("_waker")) return nullptr;
  auto* w = PyObject_New(Waker, waker_type);
  if (!w) return nullptr;
  w->core = core::current_core();
  w->fired = false;
  w->parked = false;
  return reinterpret_cast<PyObject*>(w);
}

PyMethodDef functions[] = {
    {"_waker", m_waker, METH_NOARGS,
     "_waker(): a callable that wakes this core from any thread (see spindle.wait)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

bool waker_init(PyObject* module) {
  waker_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&waker_spec));
  if (!waker_type) return false;
  Py_INCREF(waker_type);
  if (PyModule_AddObject(module, "Waker", reinterpret_cast<PyObject*>(waker_type)) < 0) {
    Py_DECREF(waker_type);
    return false;
  }
  return PyModule_AddFunctions(module, functions) == 0;
}

}  // namespace spindle::python
