// wsgi.input: the request body as a stream, read through Exchange::read().
//
// Reads park the core (never the worker) until bytes arrive. Nothing is read
// before the app asks, so an app that ignores the body never triggers
// "100 Continue". read(n) returns n bytes unless the body ends first, like a
// buffered file, because frameworks treat a short read as the end. A small
// internal buffer serves readline(); large reads go straight into the
// result.
//
// Memory follows the bytes that really arrived, never what the client
// claims: a read of a body announced as 100 TB starts with at most 1 MiB and
// grows as data comes in. readline() without a size keeps PEP 3333's
// meaning (the whole line, however long) and grows the same way, so a body
// with no newline costs what --limit-post lets the client send.
#include <algorithm>
#include <cstring>

#include "plugin/python/python.hh"

namespace spindle::python {

PyTypeObject* input_type = nullptr;

namespace {

constexpr std::size_t kBufferSize = 8192;
constexpr std::size_t kKeepBuffer = 64 * 1024;  // larger buffers are freed between requests
constexpr Py_ssize_t kUnknownChunk = 64 * 1024;       // first allocation, chunked body
constexpr std::int64_t kFirstAlloc = 1024 * 1024;     // at most, whatever the body claims

struct InputObject {
  PyObject_HEAD
  Request* req;
  char* buf;
  std::size_t cap, pos, end;
  std::int64_t consumed;  // body bytes taken from the exchange
  bool eof;
};

InputObject* as_input(PyObject* o) { return reinterpret_cast<InputObject*>(o); }

bool live(InputObject* in) {
  if (in->req && in->req->ex) return true;
  PyErr_SetString(PyExc_ValueError, "wsgi.input: the request has ended");
  return false;
}

// Body bytes not yet taken from the exchange, or -1 if unknown (chunked).
std::int64_t remaining(InputObject* in) {
  std::int64_t cl = in->req->content_length;
  return cl < 0 ? -1 : std::max<std::int64_t>(0, cl - in->consumed);
}

// Reads from the exchange into dst. Returns the count (0 at the end of the
// body) or -1 with OSError set; the request then remembers that its body
// failed, so the OSError the app lets through is logged as what it is (the
// client went away, or was too slow) and not as a bug in the app.
Py_ssize_t pull(InputObject* in, char* dst, std::size_t n) {
  if (in->eof) return 0;
  // With a known length, the end is known too: no extra read (and no park)
  // just to learn it.
  if (remaining(in) == 0) {
    in->eof = true;
    return 0;
  }
  ssize_t got = in->req->ex->read(dst, n);
  if (got < 0) {
    in->req->body_failed = true;
    PyErr_Format(PyExc_OSError, "wsgi.input: %s", in->req->ex->error().c_str());
    return -1;
  }
  if (got == 0) in->eof = true;
  in->consumed += got;
  return got;
}

// Makes room at the end of the buffer and reads into it. 0 at the end of the
// body, -1 on error.
Py_ssize_t fill(InputObject* in) {
  if (in->pos == in->end) in->pos = in->end = 0;
  if (in->end == in->cap) {
    if (in->pos > 0) {
      std::memmove(in->buf, in->buf + in->pos, in->end - in->pos);
      in->end -= in->pos;
      in->pos = 0;
    } else {
      std::size_t cap = in->cap ? in->cap * 2 : kBufferSize;
      char* grown = static_cast<char*>(PyMem_Realloc(in->buf, cap));
      if (!grown) {
        PyErr_NoMemory();
        return -1;
      }
      in->buf = grown;
      in->cap = cap;
    }
  }
  Py_ssize_t got = pull(in, in->buf + in->end, in->cap - in->end);
  if (got > 0) in->end += got;
  return got;
}

PyObject* take(InputObject* in, std::size_t n) {
  PyObject* r = PyBytes_FromStringAndSize(in->buf + in->pos, n);
  if (r) in->pos += n;
  return r;
}

// size < 0: everything up to the end of the body.
PyObject* read_bytes(InputObject* in, Py_ssize_t size) {
  std::size_t avail = in->end - in->pos;
  if (size >= 0 && avail >= static_cast<std::size_t>(size)) return take(in, size);
  std::int64_t rest = remaining(in);
  Py_ssize_t alloc = avail + (rest >= 0 ? std::min(rest, kFirstAlloc) : kUnknownChunk);
  if (size >= 0) alloc = std::min(alloc, size);
  if (alloc < 1) alloc = 1;
  PyObject* out = PyBytes_FromStringAndSize(nullptr, alloc);
  if (!out) return nullptr;
  if (avail > 0) std::memcpy(PyBytes_AS_STRING(out), in->buf + in->pos, avail);
  in->pos = in->end = 0;
  Py_ssize_t have = avail;
  while (!in->eof && (size < 0 || have < size)) {
    if (remaining(in) == 0) {
      in->eof = true;
      break;
    }
    if (have == alloc) {
      // Doubling only once the bytes are here keeps the memory within twice
      // what arrived; a known remainder caps it exactly.
      Py_ssize_t grown = alloc * 2;
      if (size >= 0) grown = std::min(grown, size);
      std::int64_t rest_now = remaining(in);
      if (rest_now > 0 && rest_now < grown - have) grown = have + rest_now;
      alloc = grown;
      if (_PyBytes_Resize(&out, alloc) < 0) return nullptr;
    }
    Py_ssize_t got = pull(in, PyBytes_AS_STRING(out) + have, alloc - have);
    if (got < 0) {
      Py_DECREF(out);
      return nullptr;
    }
    have += got;
  }
  if (have != alloc && _PyBytes_Resize(&out, have) < 0) return nullptr;
  return out;
}

PyObject* read_line(InputObject* in, Py_ssize_t size) {
  std::size_t limit = size < 0 ? SIZE_MAX : static_cast<std::size_t>(size);
  std::size_t scanned = 0;  // bytes after pos already known to hold no '\n'
  for (;;) {
    std::size_t avail = in->end - in->pos;
    std::size_t window = std::min(avail, limit);
    if (window > scanned) {
      const char* start = in->buf + in->pos;
      const void* nl = std::memchr(start + scanned, '\n', window - scanned);
      if (nl) return take(in, static_cast<const char*>(nl) - start + 1);
    }
    if (avail >= limit || in->eof) return take(in, window);
    scanned = window;
    if (fill(in) < 0) return nullptr;
  }
}

// Parses an optional size argument: absent or None means -1.
bool size_arg(PyObject* const* args, Py_ssize_t nargs, const char* name, Py_ssize_t* out) {
  *out = -1;
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", name, nargs);
    return false;
  }
  if (nargs == 0 || args[0] == Py_None) return true;
  if (!PyIndex_Check(args[0])) {
    PyErr_Format(PyExc_TypeError, "%s(): size must be an integer or None, not %.100s", name,
                 Py_TYPE(args[0])->tp_name);
    return false;
  }
  *out = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
  if (*out == -1 && PyErr_Occurred()) return false;
  if (*out < 0) *out = -1;
  return true;
}

PyObject* input_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t size;
  if (!size_arg(args, nargs, "read", &size) || !live(as_input(self))) return nullptr;
  return read_bytes(as_input(self), size);
}

PyObject* input_readline(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t size;
  if (!size_arg(args, nargs, "readline", &size) || !live(as_input(self))) return nullptr;
  return read_line(as_input(self), size);
}

PyObject* input_readlines(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t hint;
  if (!size_arg(args, nargs, "readlines", &hint) || !live(as_input(self))) return nullptr;
  PyObject* lines = PyList_New(0);
  if (!lines) return nullptr;
  Py_ssize_t total = 0;
  for (;;) {
    PyObject* line = read_line(as_input(self), -1);
    if (!line) {
      Py_DECREF(lines);
      return nullptr;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(line);
    if (n == 0) {
      Py_DECREF(line);
      break;
    }
    int rc = PyList_Append(lines, line);
    Py_DECREF(line);
    if (rc < 0) {
      Py_DECREF(lines);
      return nullptr;
    }
    total += n;
    if (hint > 0 && total >= hint) break;
  }
  return lines;
}

PyObject* input_iter(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* input_next(PyObject* self) {
  if (!live(as_input(self))) return nullptr;
  PyObject* line = read_line(as_input(self), -1);
  if (line && PyBytes_GET_SIZE(line) == 0) Py_CLEAR(line);  // StopIteration
  return line;
}

void input_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyMem_Free(as_input(self)->buf);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef input_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_read)),
     METH_FASTCALL, "read(size=-1): up to size bytes of the body (all of it by default)."},
    {"readline", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_readline)),
     METH_FASTCALL, "readline(size=-1): one line, newline included."},
    {"readlines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_readlines)),
     METH_FASTCALL, "readlines(hint=-1): the remaining lines."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot input_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(input_dealloc)},
    {Py_tp_iter, reinterpret_cast<void*>(input_iter)},
    {Py_tp_iternext, reinterpret_cast<void*>(input_next)},
    {Py_tp_methods, input_methods},
    {Py_tp_doc, const_cast<char*>("wsgi.input: the request body, read as it arrives.")},
    {0, nullptr},
};

PyType_Spec input_spec = {"spindle.Input", sizeof(InputObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                          input_slots};

}  // namespace

bool input_init(PyObject* module) {
  input_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&input_spec));
  if (!input_type) return false;
  Py_INCREF(input_type);
  return PyModule_AddObject(module, "Input", reinterpret_cast<PyObject*>(input_type)) == 0;
}

PyObject* input_new(Request* req) {
  PyObject* self = PyType_GenericAlloc(input_type, 0);
  if (!self) return nullptr;
  InputObject* in = as_input(self);
  in->buf = nullptr;
  in->cap = 0;
  input_attach(self, req);
  return self;
}

void input_attach(PyObject* self, Request* req) {
  InputObject* in = as_input(self);
  in->req = req;
  in->pos = in->end = 0;
  in->consumed = 0;
  in->eof = false;
  if (in->cap > kKeepBuffer) {
    PyMem_Free(in->buf);
    in->buf = nullptr;
    in->cap = 0;
  }
}

void input_detach(PyObject* self) { as_input(self)->req = nullptr; }

}  // namespace spindle::python
