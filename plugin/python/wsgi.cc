// One WSGI request (PEP 3333), run on an async core.
//
// handle() builds the environ, calls the app, sends what it returns and
// always closes the result. Whatever goes wrong in the app is logged with its
// traceback and answered 500 (or, once the head is out, by closing the
// connection); the traceback never reaches the client and the worker lives.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "core/log.hh"
#include "core/park.hh"
#include "core/plugin.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

// "GET /path?q" for log lines (built only when something failed).
std::string request_label(core::Exchange& ex) {
  std::string_view method = "?", uri = "?";
  for (const core::Var& v : ex.vars()) {
    if (v.name == "REQUEST_METHOD") method = v.value;
    if (v.name == "REQUEST_URI") uri = v.value;
  }
  std::string s(method);
  s += ' ';
  s += uri;
  return s;
}

enum class Sent { kDone, kError };

Sent no_start_response() {
  PyErr_SetString(PyExc_RuntimeError,
                  "the application produced a response without calling start_response()");
  return Sent::kError;
}

// uWSGI's async apps yield "" where they mean "suspend here" (often before
// start_response), and uWSGI lets it pass: an empty str counts as b"". Any
// other str is still an error (PEP 3333: the body is bytes).
bool empty_str(PyObject* item) {
  return PyUnicode_Check(item) && PyUnicode_GET_LENGTH(item) == 0;
}

Sent not_bytes(PyObject* item) {
  if (PyUnicode_Check(item)) {
    PyErr_SetString(PyExc_TypeError, "the application returned str (as a chunk of its body); "
                                     "a WSGI body is an iterable of bytes");
  } else {
    PyErr_Format(PyExc_TypeError, "the application's response must be bytes, got %.100s",
                 Py_TYPE(item)->tp_name);
  }
  return Sent::kError;
}

// A bare bytes object (`return b"..."`) is not an iterable of bytes, but
// uWSGI sends it whole and apps written for it (its Tornado example among
// them) rely on that. A bare str is an error that would otherwise be
// reported one character at a time.
Sent send_bare(Request& rq, PyObject* result) {
  if (PyUnicode_Check(result)) {
    PyErr_SetString(PyExc_TypeError,
                    "the application returned str; a WSGI body is an iterable of bytes");
    return Sent::kError;
  }
  if (!rq.started) return no_start_response();
  Py_ssize_t len = PyBytes_GET_SIZE(result);
  rq.ex->set_length_hint(static_cast<std::uint64_t>(len));
  if (len > 0 && !rq.ex->write(std::string_view(PyBytes_AS_STRING(result), len)))
    rq.client_gone = true;
  return Sent::kDone;
}

// A list or tuple: the whole body is known, so its length can be announced
// (Content-Length instead of chunked framing) and nothing yields in between.
Sent send_sequence(Request& rq, PyObject* seq) {
  PyObject* fast = seq;  // list and tuple share PySequence_Fast's accessors
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  std::uint64_t total = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PySequence_Fast_GET_ITEM(fast, i);
    if (empty_str(item)) continue;
    if (!PyBytes_Check(item)) return not_bytes(item);
    total += PyBytes_GET_SIZE(item);
  }
  if (!rq.started) return no_start_response();
  // Ignored by the exchange when the app set Content-Length or the head is
  // already out (write() was used).
  rq.ex->set_length_hint(total);
  // Re-read the size each turn: a write may park, and other requests could
  // change a list the app shares between them.
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); ++i) {
    PyObject* item = PySequence_Fast_GET_ITEM(fast, i);
    if (empty_str(item)) continue;
    if (!PyBytes_Check(item)) return not_bytes(item);
    Py_ssize_t len = PyBytes_GET_SIZE(item);
    if (len == 0) continue;
    Py_INCREF(item);
    // more: the items go out together at finish() (up to Exchange::kHoldMax).
    bool ok = rq.ex->write(std::string_view(PyBytes_AS_STRING(item), len), !runtime().app_switches);
    Py_DECREF(item);
    if (!ok) {
      rq.client_gone = true;
      break;
    }
  }
  return Sent::kDone;
}

// Any other iterable (a generator, typically): chunks produced back to back
// leave together (the exchange holds small ones until the next write, a
// park, or finish(), which adds the terminating chunk), and after each chunk
// the core yields to the loop when its fairness budget is spent or other
// work is queued (schedule_fix), so one long stream cannot starve the other
// cores while a short one never pays for the trip.
Sent send_iterable(Request& rq, PyObject* result) {
  PyObject* it = PyObject_GetIter(result);
  if (!it) return Sent::kError;
  Sent sent = Sent::kDone;
  while (PyObject* item = PyIter_Next(it)) {
    if (!PyBytes_Check(item) && !empty_str(item)) {
      sent = not_bytes(item);
      Py_DECREF(item);
      break;
    }
    Py_ssize_t len = PyBytes_Check(item) ? PyBytes_GET_SIZE(item) : 0;
    if (len > 0) {
      if (!rq.started) {
        Py_DECREF(item);
        sent = no_start_response();
        break;
      }
      bool ok = rq.ex->write(std::string_view(PyBytes_AS_STRING(item), len), !runtime().app_switches);
      if (!ok) {
        Py_DECREF(item);
        rq.client_gone = true;
        break;
      }
    }
    Py_DECREF(item);
    core::yield_if_due();
  }
  Py_DECREF(it);
  if (sent == Sent::kDone && PyErr_Occurred()) sent = Sent::kError;
  if (sent == Sent::kDone && !rq.client_gone && !rq.started) sent = no_start_response();
  return sent;
}

// wsgi.file_wrapper over a real file: sendfile(2) from the file's current
// position. False (and no error) when the object is not such a file, and the
// caller iterates it instead.
bool send_file(Request& rq, PyObject* wrapper, Sent* sent) {
  PyObject* filelike = file_wrapper_filelike(wrapper);
  if (!filelike) return false;
  PyObject* r = PyObject_CallMethod(filelike, "fileno", nullptr);
  long fd = r ? PyLong_AsLong(r) : -1;
  Py_XDECREF(r);
  struct stat st;
  if (fd < 0 || fd > INT32_MAX || fstat(static_cast<int>(fd), &st) != 0 || !S_ISREG(st.st_mode)) {
    PyErr_Clear();
    return false;
  }
  // tell() knows what a buffered file object already read ahead; the fd's
  // own offset is the answer for raw files.
  long long offset = -1;
  r = PyObject_CallMethod(filelike, "tell", nullptr);
  if (r) offset = PyLong_AsLongLong(r);
  Py_XDECREF(r);
  if (offset < 0) {
    PyErr_Clear();
    offset = lseek(static_cast<int>(fd), 0, SEEK_CUR);
    if (offset < 0) return false;
  }
  if (!rq.started) {
    *sent = no_start_response();
    return true;
  }
  // Sending to the end of the file lets the exchange announce its length.
  if (!rq.ex->sendfile(static_cast<int>(fd), static_cast<off_t>(offset), UINT64_MAX)) {
    rq.client_gone = true;
  }
  *sent = Sent::kDone;
  return true;
}

// PEP 3333: close() is called whatever happened. False if it raised (logged).
bool close_result(PyObject* result, core::Exchange* ex) {
  if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) return true;
  static PyObject* close_name = PyUnicode_InternFromString("close");
  PyObject* close = PyObject_GetAttr(result, close_name);
  if (!close) {
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
      PyErr_Clear();
      return true;
    }
  } else {
    PyObject* r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (r) {
      Py_DECREF(r);
      return true;
    }
  }
  std::string what = "python: close() of the response failed";
  if (ex) what += " in " + request_label(*ex);
  log_exception(what.c_str());
  return false;
}

void log_app_error(core::Exchange& ex) {
  std::string what = "python: exception in " + request_label(ex);
  log_exception(what.c_str());
}

// The request is over: keep the core's objects for the next one unless the
// app still holds them, in which case they are cut loose and replaced.
void release(CoreSlot& slot) {
  slot.request.ex = nullptr;
  if (slot.input && Py_REFCNT(slot.input) != 1) {
    input_detach(slot.input);
    Py_CLEAR(slot.input);
  }
  // The responder is held by us and by its two callables.
  if (slot.responder && (Py_REFCNT(slot.start_response) != 1 || Py_REFCNT(slot.write) != 1 ||
                         Py_REFCNT(slot.responder) != 3)) {
    responder_detach(slot.responder);
    Py_CLEAR(slot.start_response);
    Py_CLEAR(slot.write);
    Py_CLEAR(slot.responder);
  }
}

// --manage-script-name: the mountpoint moves from PATH_INFO to SCRIPT_NAME.
bool set_script_name(PyObject* env, const Route& route) {
  PyObject* script = PyUnicode_DecodeLatin1(route.script_name.data(),
                                            static_cast<Py_ssize_t>(route.script_name.size()),
                                            nullptr);
  PyObject* path = PyUnicode_DecodeLatin1(route.path_info.data(),
                                          static_cast<Py_ssize_t>(route.path_info.size()), nullptr);
  bool ok = script && path && PyDict_SetItemString(env, "SCRIPT_NAME", script) == 0 &&
            PyDict_SetItemString(env, "PATH_INFO", path) == 0;
  Py_XDECREF(script);
  Py_XDECREF(path);
  return ok;
}

class WsgiApp final : public core::App {
 public:
  void handle(core::Exchange& ex) override {
    static std::uint64_t served = 0;
    CoreSlot& slot = core_slot(core::current_core());
    Request& rq = slot.request;
    rq = Request{};
    rq.ex = &ex;
    rq.serial = ++served;
    bool failed = !serve(slot, ex);
    if (rq.bad_response && !failed) {
      SPINDLE_LOG_ERROR("python: %s: the application swallowed a start_response() error",
                        request_label(ex).c_str());
      failed = true;
    }
    if (failed) {
      ex.fail(500);
    } else {
      ex.finish();
    }
    errors_flush();
    release(slot);
  }

 private:
  // False when the app failed (already logged).
  bool serve(CoreSlot& slot, core::Exchange& ex) {
    Request& rq = slot.request;
    if (!slot.responder && !responder_new(slot)) {
      log_exception("python: cannot create start_response");
      return false;
    }
    if (slot.input) {
      input_attach(slot.input, &rq);
    } else if (!(slot.input = input_new(&rq))) {
      log_exception("python: cannot create wsgi.input");
      return false;
    }
    Route route;
    const MountedApp* app = choose_app(ex, &route);
    if (!app) {
      SPINDLE_LOG_ERROR("python: %s: no application is mounted for it (SCRIPT_NAME and "
                        "--mount do not match, and none is mounted at the root)",
                        request_label(ex).c_str());
      return false;
    }
    PyObject* env = build_environ(slot);
    if (env && route.rewrite && !set_script_name(env, route)) Py_CLEAR(env);
    if (!env) {
      log_exception("python: cannot build the environ");
      return false;
    }
    PyObject* args[2] = {env, slot.start_response};
    PyObject* result = PyObject_Vectorcall(app->callable, args, 2, nullptr);
    bool ok = true;
    if (!result) {
      // uWSGI's websocket loops end with the IOError of a closed socket.
      if (rq.ws && !rq.ws->open() && PyErr_ExceptionMatches(PyExc_OSError)) {
        PyErr_Clear();
        ws_finish(rq);
      } else {
        ws_finish(rq, 1011);
        ok = app_failed(rq, ex);
      }
    } else if (rq.ws) {
      // A websocket: the app's loop was the response; what it returns is
      // not sent (the connection left HTTP).
      ws_finish(rq);
      if (!close_result(result, nullptr)) ok = false;
      Py_DECREF(result);
    } else {
      Sent sent;
      if (PyBytes_Check(result) || PyUnicode_Check(result)) {
        sent = send_bare(rq, result);
      } else if (PyList_Check(result) || PyTuple_Check(result)) {
        sent = send_sequence(rq, result);
      } else if (Py_TYPE(result) == file_wrapper_type) {
        if (!send_file(rq, result, &sent)) sent = send_iterable(rq, result);
      } else {
        sent = send_iterable(rq, result);
      }
      if (sent == Sent::kError) ok = app_failed(rq, ex);
      // close() raising after the body was produced whole is logged with its
      // traceback and changes nothing on the wire: the body is terminated
      // as announced and the connection may carry the next request.
      close_result(result, &ex);
      Py_DECREF(result);
    }
    Py_DECREF(env);
    return ok;
  }

  // Logs the pending exception. An OSError from write() after the client
  // left is not the app's fault: it just stopped early. Nor is one from
  // wsgi.input when the body could not be read (the client went away or
  // stalled, or sent too much): one line says so, without a traceback, and
  // the request fails (fail() answers 413 for a body over --limit-post).
  static bool app_failed(Request& rq, core::Exchange& ex) {
    if (rq.client_gone && PyErr_ExceptionMatches(PyExc_OSError)) {
      PyErr_Clear();
      return true;
    }
    if (rq.body_failed && PyErr_ExceptionMatches(PyExc_OSError)) {
      PyErr_Clear();
      SPINDLE_LOG_WARN("python: %s: reading the request body failed: %s",
                       request_label(ex).c_str(), ex.error().c_str());
      return false;
    }
    log_app_error(ex);
    return false;
  }
};

}  // namespace

core::App& wsgi_app() {
  static WsgiApp app;
  return app;
}

}  // namespace spindle::python
