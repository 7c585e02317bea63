// start_response and write(): the two callables PEP 3333 hands to the app.
//
// Both are builtin functions bound to one small Responder object that points
// at the core's Request. Each core reuses its three objects from request to
// request while the app keeps no reference to them (wsgi.cc checks), which
// keeps allocation off the hot path.
#include <cstring>
#include <string>

#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

struct ResponderObject {
  PyObject_HEAD
  CoreSlot* slot;
  Request* req;  // nullptr once the request ended
};

PyTypeObject* responder_type = nullptr;

ResponderObject* as_responder(PyObject* o) { return reinterpret_cast<ResponderObject*>(o); }

Request* live(PyObject* self, const char* what) {
  Request* req = as_responder(self)->req;
  if (!req || !req->ex) {
    PyErr_Format(PyExc_RuntimeError, "%s called after the request ended", what);
    return nullptr;
  }
  return req;
}

// A str whose characters all fit in latin-1: its 1-byte representation is
// exactly the latin-1 encoding, so it can be viewed without encoding.
bool latin1(PyObject* s, const char* what, std::string_view* out) {
  if (!PyUnicode_Check(s)) {
    PyErr_Format(PyExc_TypeError, "start_response(): %s must be str, not %.100s", what,
                 Py_TYPE(s)->tp_name);
    return false;
  }
  if (PyUnicode_READY(s) < 0) return false;
  if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
    PyErr_Format(PyExc_ValueError, "start_response(): %s %R is not latin-1 encodable", what, s);
    return false;
  }
  *out = std::string_view(reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(s)),
                          PyUnicode_GET_LENGTH(s));
  return true;
}

// Re-raises the exception described by an exc_info triple.
PyObject* reraise(PyObject* exc_info) {
  if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
    PyErr_SetString(PyExc_TypeError, "start_response(): exc_info must be a 3-tuple");
    return nullptr;
  }
  PyObject* type = PyTuple_GET_ITEM(exc_info, 0);
  PyObject* value = PyTuple_GET_ITEM(exc_info, 1);
  PyObject* tb = PyTuple_GET_ITEM(exc_info, 2);
  if (tb == Py_None) tb = nullptr;
  Py_INCREF(type);
  Py_INCREF(value);
  Py_XINCREF(tb);
  PyErr_Restore(type, value, tb);
  return nullptr;
}

PyObject* start_response(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames) {
  PyObject* given[3] = {nullptr, nullptr, Py_None};
  static const char* kNames[3] = {"status", "response_headers", "exc_info"};
  if (nargs > 3) {
    PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)",
                 nargs);
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) given[i] = args[i];
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    const char* key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
    int slot = -1;
    for (int j = 0; j < 3 && key; ++j) {
      if (std::strcmp(key, kNames[j]) == 0) slot = j;
    }
    if (slot < 0 || slot < nargs) {
      PyErr_Format(PyExc_TypeError, "start_response() got an unexpected keyword argument %R",
                   PyTuple_GET_ITEM(kwnames, k));
      return nullptr;
    }
    given[slot] = args[nargs + k];
  }
  if (!given[0] || !given[1]) {
    PyErr_SetString(PyExc_TypeError, "start_response() needs status and response_headers");
    return nullptr;
  }
  Request* req = live(self, "start_response()");
  if (!req) return nullptr;
  PyObject* exc_info = given[2];
  if (exc_info != Py_None) {
    // The app is replacing its response after an error: allowed only while
    // nothing went out; otherwise the error goes back up to abort.
    if (req->ex->head_sent()) return reraise(exc_info);
  } else if (req->started) {
    PyErr_SetString(PyExc_AssertionError,
                    "start_response() called a second time without exc_info");
    return nullptr;
  }

  std::string_view status;
  if (!latin1(given[0], "status", &status)) return nullptr;
  PyObject* list = given[1];
  if (!PyList_Check(list)) {
    PyErr_Format(PyExc_TypeError, "start_response(): response_headers must be a list, not %.100s",
                 Py_TYPE(list)->tp_name);
    return nullptr;
  }
  Py_ssize_t n = PyList_GET_SIZE(list);
  // Views into the app's str objects: they live for this call, and the
  // exchange copies what it keeps before start_response returns.
  static std::vector<core::Header> headers;
  headers.clear();
  headers.reserve(n);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(list, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      PyErr_Format(PyExc_TypeError,
                   "start_response(): each header must be a (name, value) tuple, not %R", item);
      return nullptr;
    }
    std::string_view name, value;
    if (!latin1(PyTuple_GET_ITEM(item, 0), "header name", &name) ||
        !latin1(PyTuple_GET_ITEM(item, 1), "header value", &value)) {
      return nullptr;
    }
    headers.push_back({name, value});
  }
  std::string why;
  if (!req->ex->start_response(status, headers, &why)) {
    req->bad_response = true;
    PyErr_Format(PyExc_ValueError, "start_response(): %s", why.c_str());
    return nullptr;
  }
  req->started = true;
  req->bad_response = false;
  PyObject* write = as_responder(self)->slot->write;
  Py_INCREF(write);
  return write;
}

PyObject* write(PyObject* self, PyObject* data) {
  Request* req = live(self, "write()");
  if (!req) return nullptr;
  if (!req->started) {
    PyErr_SetString(PyExc_AssertionError, "write() before start_response()");
    return nullptr;
  }
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "write() takes bytes, not %.100s", Py_TYPE(data)->tp_name);
    return nullptr;
  }
  Py_ssize_t n = PyBytes_GET_SIZE(data);
  if (req->client_gone) {
    PyErr_Format(PyExc_OSError, "write(): %s", req->ex->error().c_str());
    return nullptr;
  }
  if (n > 0) {
    // Parks while the socket is full; data stays alive: the caller holds it.
    if (!req->ex->write(std::string_view(PyBytes_AS_STRING(data), n))) {
      req->client_gone = true;
      PyErr_Format(PyExc_OSError, "write(): %s", req->ex->error().c_str());
      return nullptr;
    }
  }
  Py_RETURN_NONE;
}

PyMethodDef start_response_def = {
    "start_response",
    reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(start_response)),
    METH_FASTCALL | METH_KEYWORDS,
    "start_response(status, response_headers, exc_info=None) -> write"};

PyMethodDef write_def = {"write", write, METH_O, "write(data): sends body bytes now."};

void responder_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyType_Slot responder_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(responder_dealloc)},
    {0, nullptr},
};

PyType_Spec responder_spec = {"spindle.Responder", sizeof(ResponderObject), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                              responder_slots};

}  // namespace

bool responder_init(PyObject*) {
  responder_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&responder_spec));
  return responder_type != nullptr;
}

bool responder_new(CoreSlot& slot) {
  PyObject* self = PyType_GenericAlloc(responder_type, 0);
  if (!self) return false;
  as_responder(self)->slot = &slot;
  as_responder(self)->req = &slot.request;
  PyObject* sr = PyCFunction_New(&start_response_def, self);
  PyObject* wr = sr ? PyCFunction_New(&write_def, self) : nullptr;
  if (!wr) {
    Py_XDECREF(sr);
    Py_DECREF(self);
    return false;
  }
  slot.responder = self;
  slot.start_response = sr;
  slot.write = wr;
  return true;
}

void responder_detach(PyObject* self) { as_responder(self)->req = nullptr; }

}  // namespace spindle::python
