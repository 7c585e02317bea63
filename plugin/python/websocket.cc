// uWSGI's websocket calls (uwsgi.websocket_handshake, websocket_recv,
// websocket_recv_nb, websocket_send, websocket_send_binary), exposed as
// spindle._websocket_* and named by lib/uwsgi.py. They act on the request
// running on the calling core, as in uWSGI; recv parks that core
// (core/websocket.hh). What both faces share (the handshake, the end of the
// request) is here too; the object face is websocket_object.cc.
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
  // No deadline: the keep-alive pings decide how long a silent client may
  // stay (uWSGI's --websocket-ping-freq / --websocket-pong-tolerance).
  switch (ws->recv(&msg, &binary, wait, core::Deadline::none(), &err)) {
    case core::WebSocket::Recv::kMessage:
      return PyBytes_FromStringAndSize(msg.data(), static_cast<Py_ssize_t>(msg.size()));
    case core::WebSocket::Recv::kNothing:
    case core::WebSocket::Recv::kTimeout:
      return PyBytes_FromStringAndSize("", 0);
    case core::WebSocket::Recv::kClosed:
      break;
  }
  return PyErr_Format(PyExc_IOError, "websocket closed: %s", err.c_str());
}

PyObject* send_impl(PyObject* arg, bool binary, const char* what) {
  core::WebSocket* ws = open_ws(what);
  if (!ws) return nullptr;
  std::string err;
  if (!ws_send_object(*ws, arg, binary, &err)) {
    if (PyErr_Occurred()) return nullptr;
    return PyErr_Format(PyExc_IOError, "unable to send websocket message: %s", err.c_str());
  }
  Py_RETURN_NONE;
}

}  // namespace

bool ws_send_object(core::WebSocket& ws, PyObject* arg, bool binary, std::string* err) {
  std::string_view data;
  PyObject* tmp = nullptr;
  if (PyUnicode_Check(arg)) {
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!p) return false;
    data = {p, static_cast<std::size_t>(n)};
  } else {
    if (!(tmp = PyBytes_FromObject(arg))) return false;
    data = {PyBytes_AS_STRING(tmp), static_cast<std::size_t>(PyBytes_GET_SIZE(tmp))};
  }
  bool ok = ws.send(data, binary, err);
  Py_XDECREF(tmp);
  return ok;
}

core::WebSocket* ws_start(Request& rq, std::string_view key, std::string_view proto,
                          bool echo_proto) {
  if (rq.ws) {
    PyErr_SetString(PyExc_IOError, "websocket handshake already done");
    return nullptr;
  }
  core::Exchange& ex = *rq.ex;
  const core::Config& cfg = ex.transport().worker().cfg();
  core::WebSocket::Limits lim;
  lim.max_message = static_cast<std::uint64_t>(cfg.websocket_max_kb) * 1024;
  lim.ping_freq = cfg.websocket_ping_freq;
  lim.pong_tolerance = cfg.websocket_pong_tolerance;
  lim.send_buffer = static_cast<std::size_t>(cfg.websocket_send_buffer_kb) * 1024;
  lim.send_timeout = cfg.socket_timeout;
  lim.deflate = cfg.websocket_deflate;
  auto ws = std::make_unique<core::WebSocket>(ex, lim);
  std::string err;
  if (!ws->handshake(key, proto, echo_proto, &err)) {
    PyErr_Format(PyExc_IOError, "unable to complete websocket handshake: %s", err.c_str());
    return nullptr;
  }
  rq.ws = std::move(ws);
  rq.started = true;
  return rq.ws.get();
}

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
  if (!ws_start(*rq, {key ? key : "", static_cast<std::size_t>(key_len)},
                {proto ? proto : "", static_cast<std::size_t>(proto_len)}, true))
    return nullptr;
  Py_RETURN_NONE;
}

PyObject* ws_recv(PyObject*, PyObject*) { return recv_impl(true, "websocket_recv"); }
PyObject* ws_recv_nb(PyObject*, PyObject*) { return recv_impl(false, "websocket_recv_nb"); }
PyObject* ws_send(PyObject*, PyObject* arg) { return send_impl(arg, false, "websocket_send"); }
PyObject* ws_send_binary(PyObject*, PyObject* arg) {
  return send_impl(arg, true, "websocket_send_binary");
}

// The app returned (code 1000) or raised (1011): a close frame with that
// code if none went out yet, sent before the connection closes. The app's
// websocket object outlives the request detached (it reports closed).
void ws_finish(Request& rq, int code) {
  if (!rq.ws) return;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);  // the wait below runs other requests
  rq.ws->finish(code);
  if (rq.ws_obj) {
    ws_object_detach(rq.ws_obj);
    Py_CLEAR(rq.ws_obj);
  }
  rq.ws.reset();
  PyErr_Restore(type, value, tb);
}

}  // namespace spindle::python
