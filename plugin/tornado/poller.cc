// See poller.hh.
#include "plugin/tornado/poller.hh"

#include <time.h>

#include <algorithm>

namespace spindle::tornado {
namespace {

struct PyPoller {
  PyObject_HEAD
  Poller* poller;
};

PyTypeObject* g_type = nullptr;

// A call whose result does not matter; an error in it is logged.
void check_call(PyObject* r) {
  if (r) Py_DECREF(r);
  else python::log_exception("tornado: setting asyncio's running loop");
}

double monotonic() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

PyObject* m_watch(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "watch(fd, events)");
    return nullptr;
  }
  int fd = static_cast<int>(PyLong_AsLong(args[0]));
  int events = static_cast<int>(PyLong_AsLong(args[1]));
  if (PyErr_Occurred()) return nullptr;
  return Poller::of(self)->watch(fd, events);
}

PyObject* m_poll(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  double timeout = -1;
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "poll(timeout=None)");
    return nullptr;
  }
  if (nargs == 1 && args[0] != Py_None) {
    timeout = PyFloat_AsDouble(args[0]);
    if (timeout == -1 && PyErr_Occurred()) return nullptr;
    timeout = std::max(0.0, timeout);
  }
  return Poller::of(self)->poll(timeout);
}

PyObject* m_attach(PyObject* self, PyObject* loop) { return Poller::of(self)->attach(loop); }

void dealloc(PyObject* self) {
  delete reinterpret_cast<PyPoller*>(self)->poller;
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(tp);
}

PyMethodDef methods[] = {
    {"watch", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(m_watch)), METH_FASTCALL,
     "watch(fd, events): watch fd for EVENT_READ|EVENT_WRITE; 0 stops."},
    {"poll", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(m_poll)), METH_FASTCALL,
     "poll(timeout=None) -> [(fd, events)]: run the worker's loop (see poller.hh)."},
    {"attach", m_attach, METH_O, "attach(loop): the asyncio loop whose queues poll() watches."},
    {nullptr, nullptr, 0, nullptr},
};

bool init_type() {
  if (g_type) return true;
  static PyType_Slot slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
      {Py_tp_methods, methods},
      {0, nullptr},
  };
  static PyType_Spec spec = {"spindle.LoopPoller", sizeof(PyPoller), 0, Py_TPFLAGS_DEFAULT, slots};
  g_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
  return g_type != nullptr;
}

}  // namespace

PyObject* Poller::create(core::Loop& loop) {
  if (!init_type()) return nullptr;
  PyPoller* obj = PyObject_New(PyPoller, g_type);
  if (!obj) return nullptr;
  obj->poller = new Poller(loop);
  return reinterpret_cast<PyObject*>(obj);
}

Poller* Poller::of(PyObject* obj) { return reinterpret_cast<PyPoller*>(obj)->poller; }

Poller::~Poller() {
  detach();
  Py_XDECREF(ready_queue_);
  Py_XDECREF(scheduled_);
  Py_XDECREF(get_running_);
  Py_XDECREF(set_running_);
}

void Poller::detach() {
  if (loop_)
    for (auto& [fd, app] : fds_) loop_->io_close(app->w);
  fds_.clear();
  loop_ = nullptr;
}

namespace {
PyObject* detached() {
  PyErr_SetString(PyExc_RuntimeError, "the worker's loop is gone");
  return nullptr;
}
}  // namespace

PyObject* Poller::watch(int fd, int events) {
  if (!loop_) return detached();
  events &= core::kRead | core::kWrite;
  auto it = fds_.find(fd);
  if (events == core::kNone) {
    if (it != fds_.end()) {
      loop_->io_close(it->second->w);  // a pending event is dropped with it
      fds_.erase(it);
    }
    Py_RETURN_NONE;
  }
  if (it == fds_.end()) {
    auto app = std::make_unique<AppFd>();
    app->w.cb = on_ready;
    app->w.data = app.get();
    app->owner = this;
    it = fds_.emplace(fd, std::move(app)).first;
  }
  loop_->io_set(it->second->w, fd, events);
  Py_RETURN_NONE;
}

void Poller::on_ready(core::IoWatcher* w, int revents) {
  auto* app = static_cast<AppFd*>(w->data);
  app->owner->ready_.emplace_back(w->fd, revents);
}

PyObject* Poller::attach(PyObject* aio_loop) {
  PyObject* ready = PyObject_GetAttrString(aio_loop, "_ready");
  PyObject* scheduled = ready ? PyObject_GetAttrString(aio_loop, "_scheduled") : nullptr;
  if (!scheduled || !PyList_Check(scheduled)) {
    Py_XDECREF(ready);
    Py_XDECREF(scheduled);
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_TypeError, "attach(): not an asyncio BaseEventLoop");
    return nullptr;
  }
  Py_XSETREF(ready_queue_, ready);
  Py_XSETREF(scheduled_, scheduled);
  PyObject* events = PyImport_ImportModule("asyncio.events");
  if (!events) return nullptr;
  Py_XSETREF(get_running_, PyObject_GetAttrString(events, "_get_running_loop"));
  Py_XSETREF(set_running_, PyObject_GetAttrString(events, "_set_running_loop"));
  Py_DECREF(events);
  if (!get_running_ || !set_running_) return nullptr;
  Py_RETURN_NONE;
}

bool Poller::asyncio_has_work(Py_ssize_t scheduled_before) const {
  if (scheduled_ && PyList_GET_SIZE(scheduled_) != scheduled_before) return true;
  if (!ready_queue_) return false;
  Py_ssize_t n = PyObject_Size(ready_queue_);
  if (n < 0) PyErr_Clear();
  return n > 0;
}

PyObject* Poller::poll(double timeout) {
  if (!loop_) return detached();
  ready_.clear();
  const Py_ssize_t scheduled_before = scheduled_ ? PyList_GET_SIZE(scheduled_) : 0;
  const double deadline = timeout > 0 ? monotonic() + timeout : 0;
  PyObject* running = get_running_ ? PyObject_CallNoArgs(get_running_) : nullptr;
  if (!running) PyErr_Clear();
  if (running == Py_None) Py_CLEAR(running);
  if (running) check_call(PyObject_CallOneArg(set_running_, Py_None));
  polling_ = true;
  for (;;) {
    double left = timeout < 0 ? -1 : timeout == 0 ? 0 : std::max(0.0, deadline - monotonic());
    loop_->run_once(left);
    if (PyErr_Occurred()) {
      // Loop callbacks must not leave errors behind; never let one surface
      // as this call's result.
      python::log_exception("tornado: a loop callback left a Python error");
    }
    if (!ready_.empty() || stopping_ || left == 0) break;
    if (asyncio_has_work(scheduled_before)) break;
    if (timeout > 0 && monotonic() >= deadline) break;
  }
  polling_ = false;
  if (running) {
    check_call(PyObject_CallOneArg(set_running_, running));
    Py_DECREF(running);
  }
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(ready_.size()));
  if (!out) return nullptr;
  for (std::size_t i = 0; i < ready_.size(); ++i) {
    PyObject* item = Py_BuildValue("(ii)", ready_[i].first, ready_[i].second);
    if (!item) {
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), item);
  }
  ready_.clear();
  return out;
}

}  // namespace spindle::tornado
