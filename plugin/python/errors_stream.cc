// wsgi.errors, and tracebacks to the log.
//
// One stream object serves every request of the worker. It keeps an
// unfinished line until its newline arrives, so print(x, file=errors), which
// writes x and "\n" separately, makes one log line and not two. The
// unfinished line is kept per async core (requests interleave whenever one
// parks, and one request's half line must not be glued to another's) and is
// logged when the request ends; outside a request, and from threads the app
// started, the worker's own buffer is used.
#include <string>

#include "core/log.hh"
#include "core/park.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

struct ErrorsObject {
  PyObject_HEAD
};

PyTypeObject* errors_type = nullptr;
PyObject* the_stream = nullptr;
std::string worker_pending;  // outside every request

// The unfinished line of whoever is writing.
std::string& pending() {
  int core = on_main_thread() ? core::current_core() : -1;
  return core < 0 ? worker_pending : core_slot(core).errors_pending;
}

// Logs every complete line in buf, keeping an unfinished tail.
void emit_lines(std::string& buf) {
  std::string::size_type nl = buf.rfind('\n');
  if (nl == std::string::npos) return;
  core::log_text(core::Level::kError, buf.data(), nl);
  buf.erase(0, nl + 1);
}

void flush(std::string& buf) {
  if (buf.empty()) return;
  core::log_text(core::Level::kError, buf.data(), buf.size());
  buf.clear();
}

bool append(PyObject* data) {
  std::string& buf = pending();
  if (PyUnicode_Check(data)) {
    Py_ssize_t n;
    const char* s = PyUnicode_AsUTF8AndSize(data, &n);
    if (!s) return false;
    buf.append(s, n);
  } else if (PyBytes_Check(data)) {
    buf.append(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
  } else {
    PyErr_Format(PyExc_TypeError, "wsgi.errors.write() takes str, not %.100s",
                 Py_TYPE(data)->tp_name);
    return false;
  }
  emit_lines(buf);
  return true;
}

PyObject* errors_write(PyObject*, PyObject* data) {
  Py_ssize_t n = PyUnicode_Check(data) ? PyUnicode_GET_LENGTH(data) : 0;
  if (!append(data)) return nullptr;
  return PyLong_FromSsize_t(n);
}

PyObject* errors_writelines(PyObject*, PyObject* lines) {
  PyObject* it = PyObject_GetIter(lines);
  if (!it) return nullptr;
  while (PyObject* line = PyIter_Next(it)) {
    bool ok = append(line);
    Py_DECREF(line);
    if (!ok) {
      Py_DECREF(it);
      return nullptr;
    }
  }
  Py_DECREF(it);
  if (PyErr_Occurred()) return nullptr;
  Py_RETURN_NONE;
}

PyObject* errors_flush_method(PyObject*, PyObject*) {
  errors_flush();
  Py_RETURN_NONE;
}

PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "Writes text to the server log."},
    {"writelines", errors_writelines, METH_O, "Writes each string of an iterable."},
    {"flush", errors_flush_method, METH_NOARGS, "Logs an unfinished line now."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot errors_slots[] = {
    {Py_tp_methods, errors_methods},
    {Py_tp_doc, const_cast<char*>("wsgi.errors: text written here goes to the server log.")},
    {0, nullptr},
};

PyType_Spec errors_spec = {"spindle.ErrorStream", sizeof(ErrorsObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                           errors_slots};

std::string exception_text(PyObject* type, PyObject* value, PyObject* tb) {
  static PyObject* format = nullptr;
  if (!format) {
    PyObject* mod = PyImport_ImportModule("traceback");
    if (mod) {
      format = PyObject_GetAttrString(mod, "format_exception");
      Py_DECREF(mod);
    }
  }
  std::string text;
  PyObject* lines = format ? PyObject_CallFunctionObjArgs(format, type, value ? value : Py_None,
                                                          tb ? tb : Py_None, nullptr)
                           : nullptr;
  PyObject* joined = nullptr;
  if (lines) {
    PyObject* empty = PyUnicode_FromStringAndSize("", 0);
    joined = empty ? PyUnicode_Join(empty, lines) : nullptr;
    Py_XDECREF(empty);
    Py_DECREF(lines);
  }
  Py_ssize_t n = 0;
  const char* s = joined ? PyUnicode_AsUTF8AndSize(joined, &n) : nullptr;
  if (s) {
    text.assign(s, n);
    while (!text.empty() && text.back() == '\n') text.pop_back();
  } else {
    // Formatting failed (out of memory, a broken __str__): say what we can.
    PyErr_Clear();
    text = type && PyType_Check(type) ? reinterpret_cast<PyTypeObject*>(type)->tp_name
                                      : "unknown exception";
    text += " (traceback unavailable)";
  }
  Py_XDECREF(joined);
  PyErr_Clear();
  return text;
}

}  // namespace

bool errors_init(PyObject* module) {
  errors_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&errors_spec));
  if (!errors_type) return false;
  the_stream = PyType_GenericAlloc(errors_type, 0);
  if (!the_stream) return false;
  Py_INCREF(errors_type);
  return PyModule_AddObject(module, "ErrorStream", reinterpret_cast<PyObject*>(errors_type)) == 0;
}

PyObject* errors_stream() { return the_stream; }

void errors_flush() { flush(pending()); }

void errors_flush_all() {
  for (const std::unique_ptr<CoreSlot>& slot : runtime().cores) {
    if (slot) flush(slot->errors_pending);
  }
  flush(worker_pending);
}

void log_exception(const char* what) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  if (!type) {
    core::log(core::Level::kError, "%s", what);
    return;
  }
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  std::string text = exception_text(type, value, tb);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  core::log(core::Level::kError, "%s", what);
  core::log_text(core::Level::kError, text.data(), text.size());
}

}  // namespace spindle::python
