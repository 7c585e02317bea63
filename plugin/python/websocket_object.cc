// spindle.websocket(environ): the Pythonic face of a request's websocket.
//
//     def application(environ, start_response):
//         with spindle.websocket(environ) as ws:
//             for msg in ws:          # str (text) or bytes (binary), until closed
//                 ws.send(msg)
//
// recv(timeout=None) returns the next message, or None once the websocket
// is closed (the client's close frame, a protocol error, no answer to the
// pings, the connection gone, or close() called); TimeoutError when timeout
// seconds pass first. send(data): str goes as a text message, bytes-like as
// binary. send() may be called from any request of the same serving thread
// (or a loop callback): a broadcast over a set of websockets; it never waits
// there, and raises spindle.WebSocketClosed (a ConnectionError) when the
// websocket is closed or its client was dropped for reading too slowly
// (core/websocket.hh, "Sending"). recv() belongs to the request that made
// the websocket. The object outlives its request detached: closed, sends
// raise, recv returns None.
#include "core/park.hh"
#include "core/websocket.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

struct PyWebSocket {
  PyObject_HEAD
  core::WebSocket* ws;  // null once the request ended
  int close_code;       // the client's, kept when detached
};

PyTypeObject* ws_type = nullptr;
PyObject* closed_error = nullptr;

core::WebSocket* attached(PyObject* self) { return reinterpret_cast<PyWebSocket*>(self)->ws; }

// The websocket may be used from here: a serving thread, the one that owns it.
bool usable_here(core::WebSocket* ws, const char* what) {
  if (!on_main_thread()) {
    PyErr_Format(PyExc_RuntimeError, "WebSocket.%s() called from a thread the app started", what);
    return false;
  }
  if (!ws->on_owner_thread()) {
    PyErr_Format(PyExc_RuntimeError,
                 "WebSocket.%s(): the websocket belongs to another serving thread (--threads)",
                 what);
    return false;
  }
  return true;
}

PyObject* ws_recv_method(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:recv", const_cast<char**>(kw), &timeout))
    return nullptr;
  core::Deadline deadline;
  if (timeout != Py_None) {
    double t = PyFloat_AsDouble(timeout);
    if (t == -1 && PyErr_Occurred()) return nullptr;
    if (!(t >= 0)) {
      PyErr_SetString(PyExc_ValueError, "timeout must be a non-negative number or None");
      return nullptr;
    }
    deadline = core::Deadline::after(t);
  }
  core::WebSocket* ws = attached(self);
  if (!ws) Py_RETURN_NONE;
  if (!usable_here(ws, "recv")) return nullptr;
  if (core::current_core() != ws->owner()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "WebSocket.recv(): only the request that made the websocket receives on it");
    return nullptr;
  }
  std::string msg, err;
  bool binary = false;
  switch (ws->recv(&msg, &binary, true, deadline, &err)) {
    case core::WebSocket::Recv::kMessage:
      if (binary) return PyBytes_FromStringAndSize(msg.data(), static_cast<Py_ssize_t>(msg.size()));
      // Checked as UTF-8 on the way in.
      return PyUnicode_DecodeUTF8(msg.data(), static_cast<Py_ssize_t>(msg.size()), "strict");
    case core::WebSocket::Recv::kTimeout:
    case core::WebSocket::Recv::kNothing:
      PyErr_SetString(PyExc_TimeoutError, "no websocket message within the timeout");
      return nullptr;
    case core::WebSocket::Recv::kClosed:
      break;
  }
  Py_RETURN_NONE;
}

PyObject* ws_send_method(PyObject* self, PyObject* arg) {
  core::WebSocket* ws = attached(self);
  if (!ws) {
    PyErr_SetString(closed_error, "the websocket is closed (its request ended)");
    return nullptr;
  }
  if (!usable_here(ws, "send")) return nullptr;
  const bool binary = !PyUnicode_Check(arg);
  if (binary && !PyObject_CheckBuffer(arg)) {
    PyErr_Format(PyExc_TypeError, "WebSocket.send() takes str or bytes, not %.100s",
                 Py_TYPE(arg)->tp_name);
    return nullptr;
  }
  std::string err;
  if (!ws_send_object(*ws, arg, binary, &err)) {
    if (!PyErr_Occurred()) PyErr_SetString(closed_error, err.c_str());
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* ws_close_method(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"code", "reason", nullptr};
  int code = 1000;
  const char* reason = "";
  Py_ssize_t reason_len = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|is#:close", const_cast<char**>(kw), &code,
                                   &reason, &reason_len))
    return nullptr;
  if (!core::ws::valid_close_code(code)) {
    PyErr_Format(PyExc_ValueError, "%d is not a close code an endpoint may send", code);
    return nullptr;
  }
  core::WebSocket* ws = attached(self);
  if (!ws) Py_RETURN_NONE;
  if (!usable_here(ws, "close")) return nullptr;
  ws->close(code, {reason, static_cast<std::size_t>(reason_len)});
  Py_RETURN_NONE;
}

PyObject* ws_enter(PyObject* self, PyObject*) {
  Py_INCREF(self);
  return self;
}

// Leaving the block closes: 1000, or 1011 when an exception is leaving it.
PyObject* ws_exit(PyObject* self, PyObject* args) {
  core::WebSocket* ws = attached(self);
  if (ws && usable_here(ws, "__exit__")) {
    PyObject* type = PyTuple_Size(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None;
    ws->close(type == Py_None ? core::ws::kNormal : core::ws::kInternalError, {});
  }
  if (PyErr_Occurred()) return nullptr;
  Py_RETURN_FALSE;
}

PyObject* ws_iternext(PyObject* self) {
  PyObject* empty = PyTuple_New(0);
  if (!empty) return nullptr;
  PyObject* msg = ws_recv_method(self, empty, nullptr);
  Py_DECREF(empty);
  if (msg == Py_None) {
    Py_DECREF(msg);
    return nullptr;  // StopIteration
  }
  return msg;
}

PyObject* ws_get_closed(PyObject* self, void*) {
  core::WebSocket* ws = attached(self);
  return PyBool_FromLong(!ws || !ws->open());
}

PyObject* ws_get_close_code(PyObject* self, void*) {
  core::WebSocket* ws = attached(self);
  int code = ws ? ws->peer_close_code() : reinterpret_cast<PyWebSocket*>(self)->close_code;
  if (!code) Py_RETURN_NONE;
  return PyLong_FromLong(code);
}

PyObject* ws_get_subprotocol(PyObject* self, void* closure) {
  core::WebSocket* ws = attached(self);
  if (!ws || ws->subprotocol().empty()) Py_RETURN_NONE;
  return PyUnicode_FromStringAndSize(ws->subprotocol().data(),
                                     static_cast<Py_ssize_t>(ws->subprotocol().size()));
}

void ws_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(tp);
}

PyMethodDef ws_methods[] = {
    {"recv", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ws_recv_method)),
     METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None): the next message (str for text, bytes for binary), None once "
     "closed; TimeoutError after timeout seconds."},
    {"send", ws_send_method, METH_O,
     "send(data): str as a text message, bytes as binary. Any request of this serving thread "
     "may send; raises spindle.WebSocketClosed when closed."},
    {"close", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ws_close_method)),
     METH_VARARGS | METH_KEYWORDS, "close(code=1000, reason=''): sends a close frame once."},
    {"__enter__", ws_enter, METH_NOARGS, nullptr},
    {"__exit__", ws_exit, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef ws_getset[] = {
    {"closed", ws_get_closed, nullptr, "True once no more messages will come.", nullptr},
    {"close_code", ws_get_close_code, nullptr, "The client's close code, or None.", nullptr},
    {"subprotocol", ws_get_subprotocol, nullptr, "The chosen subprotocol, or None.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot ws_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(ws_dealloc)},
    {Py_tp_methods, ws_methods},
    {Py_tp_getset, ws_getset},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(ws_iternext)},
    {Py_tp_doc, const_cast<char*>("A request's websocket; see spindle.websocket().")},
    {0, nullptr},
};

PyType_Spec ws_spec = {"spindle.WebSocket", sizeof(PyWebSocket), 0,
                       Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, ws_slots};

// The first of the client's offered subprotocols that the app supports.
bool choose_subprotocol(core::Exchange& ex, PyObject* supported, std::string* chosen) {
  std::string_view offered;
  for (const core::Var& v : ex.vars())
    if (v.name == "HTTP_SEC_WEBSOCKET_PROTOCOL") offered = v.value;
  while (!offered.empty()) {
    std::size_t comma = offered.find(',');
    std::string_view one = offered.substr(0, comma);
    offered = comma == std::string_view::npos ? std::string_view() : offered.substr(comma + 1);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    if (one.empty()) continue;
    PyObject* name = PyUnicode_FromStringAndSize(one.data(), static_cast<Py_ssize_t>(one.size()));
    if (!name) return false;
    int found = PySequence_Contains(supported, name);
    Py_DECREF(name);
    if (found < 0) return false;
    if (found) {
      chosen->assign(one);
      return true;
    }
  }
  return true;
}

PyObject* m_websocket(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"environ", "protocols", nullptr};
  PyObject* environ = nullptr;
  PyObject* protocols = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:websocket", const_cast<char**>(kw),
                                   &environ, &protocols))
    return nullptr;
  if (!in_request_core("websocket")) return nullptr;
  Request& rq = core_slot(core::current_core()).request;
  if (!rq.ex) {
    PyErr_SetString(PyExc_RuntimeError, "spindle.websocket() needs a request");
    return nullptr;
  }
  if (rq.ws_obj) {  // asked twice: the same object
    Py_INCREF(rq.ws_obj);
    return rq.ws_obj;
  }
  if (!rq.ws) {
    std::string chosen;
    if (protocols != Py_None && !choose_subprotocol(*rq.ex, protocols, &chosen)) return nullptr;
    if (!ws_start(rq, {}, chosen, false)) return nullptr;
  }
  auto* obj = PyObject_New(PyWebSocket, ws_type);
  if (!obj) return nullptr;
  obj->ws = rq.ws.get();
  obj->close_code = 0;
  rq.ws_obj = reinterpret_cast<PyObject*>(obj);
  Py_INCREF(rq.ws_obj);
  return rq.ws_obj;
}

PyMethodDef functions[] = {
    {"websocket", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(m_websocket)),
     METH_VARARGS | METH_KEYWORDS,
     "websocket(environ, protocols=None): answers the request's websocket handshake and "
     "returns its spindle.WebSocket. protocols: the subprotocols the app speaks (the first "
     "the client offers is chosen)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

void ws_object_detach(PyObject* obj) {
  auto* w = reinterpret_cast<PyWebSocket*>(obj);
  if (w->ws) w->close_code = w->ws->peer_close_code();
  w->ws = nullptr;
}

bool websocket_init(PyObject* module) {
  ws_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&ws_spec));
  if (!ws_type) return false;
  closed_error = PyErr_NewExceptionWithDoc(
      "spindle.WebSocketClosed", "The websocket is closed: nothing more can be sent on it.",
      PyExc_ConnectionError, nullptr);
  if (!closed_error) return false;
  Py_INCREF(ws_type);
  Py_INCREF(closed_error);
  if (PyModule_AddObject(module, "WebSocket", reinterpret_cast<PyObject*>(ws_type)) < 0 ||
      PyModule_AddObject(module, "WebSocketClosed", closed_error) < 0)
    return false;
  return PyModule_AddFunctions(module, functions) == 0;
}

}  // namespace spindle::python
