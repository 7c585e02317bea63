// uWSGI's websocket calls (uwsgi.websocket_handshake, websocket_recv,
// websocket_recv_nb, websocket_send, websocket_send_binary), exposed as
// spindle._websocket_* and named by lib/uwsgi.py. They act on the request
// running on the calling core; recv parks that core (core/websocket.hh).
#include "core/websocket.hh"

#include "core/transport.hh"
#include "core/worker.hh"
#include "plugin/python/python.hh"

namespace spindle::python {

namespace {

Request* ws_request(const char* what) {
  if (!in_request_core(what)) return nullptr;
  Request& rq = core_slot(core::current_core()).request;
  if (!rq.ex) {
    PyErr_Format(PyExc_RuntimeError, "%s() needs a request", what);
    return nullptr;
  }
  return &rq;
}

core::WebSocket* open_ws(const char* what) {
  Request* rq = ws_request(what);
  if (!rq) return nullptr;
  if (!rq->ws) {
    PyErr_Format(PyExc_IOError, "%s(): no websocket handshake on this request", what);
    return nullptr;
  }
  return rq->ws.get();
}

PyObject* recv_impl(bool wait, const char* what) {
  core::WebSocket* ws = open_ws(what);
  if (!ws) return nullptr;
  std::string msg, err;
  bool binary = false;
  switch (ws->recv(&msg, &binary, wait, &err)) {
    case core::WebSocket::Recv::kMessage:
      return PyBytes_FromStringAndSize(msg.data(), static_cast<Py_ssize_t>(msg.size()));
    case core::WebSocket::Recv::kNothing:
      return PyBytes_FromStringAndSize("", 0);
    case core::WebSocket::Recv::kClosed:
      break;
  }
  return PyErr_Format(PyExc_IOError, "websocket closed: %s", err.c_str());
}

PyObject* send_impl(PyObject* arg, bool binary, const char* what) {
  core::WebSocket* ws = open_ws(what);
  if (!ws) return nullptr;
  std::string_view data;
  PyObject* tmp = nullptr;
  if (PyUnicode_Check(arg)) {
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!p) return nullptr;
    data = {p, static_cast<std::size_t>(n)};
  } else {
    if (!(tmp = PyBytes_FromObject(arg))) return nullptr;
    data = {PyBytes_AS_STRING(tmp), static_cast<std::size_t>(PyBytes_GET_SIZE(tmp))};
  }
  std::string err;
  bool ok = ws->send(data, binary, &err);
  Py_XDECREF(tmp);
  if (!ok) return PyErr_Format(PyExc_IOError, "unable to send websocket message: %s", err.c_str());
  Py_RETURN_NONE;
}

}  // namespace

PyObject* ws_handshake(PyObject*, PyObject* args) {
  const char* key = nullptr;
  Py_ssize_t key_len = 0;
  const char* origin = nullptr;  // uWSGI echoes it in a pre-RFC header; not sent
  Py_ssize_t origin_len = 0;
  const char* proto = nullptr;
  Py_ssize_t proto_len = 0;
  if (!PyArg_ParseTuple(args, "|z#z#z#:websocket_handshake", &key, &key_len, &origin, &origin_len,
                        &proto, &proto_len))
    return nullptr;
  Request* rq = ws_request("websocket_handshake");
  if (!rq) return nullptr;
  if (rq->ws) return PyErr_Format(PyExc_IOError, "websocket handshake already done");
  core::Exchange& ex = *rq->ex;
  const long kb = ex.transport().worker().cfg().websocket_max_kb;
  auto ws = std::make_unique<core::WebSocket>(ex, static_cast<std::uint64_t>(kb) * 1024);
  std::string err;
  if (!ws->handshake({key ? key : "", static_cast<std::size_t>(key_len)},
                     {proto ? proto : "", static_cast<std::size_t>(proto_len)}, &err))
    return PyErr_Format(PyExc_IOError, "unable to complete websocket handshake: %s", err.c_str());
  rq->ws = std::move(ws);
  rq->started = true;
  Py_RETURN_NONE;
}

PyObject* ws_recv(PyObject*, PyObject*) { return recv_impl(true, "websocket_recv"); }
PyObject* ws_recv_nb(PyObject*, PyObject*) { return recv_impl(false, "websocket_recv_nb"); }
PyObject* ws_send(PyObject*, PyObject* arg) { return send_impl(arg, false, "websocket_send"); }
PyObject* ws_send_binary(PyObject*, PyObject* arg) {
  return send_impl(arg, true, "websocket_send_binary");
}

// The app returned (code 1000) or raised (1011): a close frame with that
// code if none went out yet.
void ws_finish(Request& rq, int code) {
  if (rq.ws) {
    rq.ws->close(code, {});
    rq.ws.reset();
  }
}

}  // namespace spindle::python
