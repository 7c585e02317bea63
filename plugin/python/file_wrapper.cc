// wsgi.file_wrapper: the type an app returns to send a file.
//
// The WSGI handler recognises the type and sends the file with sendfile(2)
// when the file-like object has a real file descriptor; otherwise (or when a
// middleware wraps it) the object is an ordinary iterable of blocks.
#include "plugin/python/python.hh"

#include <structmember.h>

namespace spindle::python {

PyTypeObject* file_wrapper_type = nullptr;

namespace {

struct FileWrapperObject {
  PyObject_HEAD
  PyObject* filelike;
  Py_ssize_t blksize;
};

FileWrapperObject* as_wrapper(PyObject* o) { return reinterpret_cast<FileWrapperObject*>(o); }

PyObject* fw_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"filelike", "blksize", nullptr};
  PyObject* filelike;
  Py_ssize_t blksize = 8192;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper",
                                   const_cast<char**>(kwlist), &filelike, &blksize)) {
    return nullptr;
  }
  if (blksize <= 0) {
    PyErr_SetString(PyExc_ValueError, "file_wrapper: blksize must be positive");
    return nullptr;
  }
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  Py_INCREF(filelike);
  as_wrapper(self)->filelike = filelike;
  as_wrapper(self)->blksize = blksize;
  return self;
}

int fw_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(as_wrapper(self)->filelike);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int fw_clear(PyObject* self) {
  Py_CLEAR(as_wrapper(self)->filelike);
  return 0;
}

void fw_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  fw_clear(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* fw_iter(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* fw_next(PyObject* self) {
  FileWrapperObject* fw = as_wrapper(self);
  if (!fw->filelike) return nullptr;
  PyObject* block = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
  if (!block) return nullptr;
  if (PyBytes_Check(block) && PyBytes_GET_SIZE(block) == 0) {
    Py_DECREF(block);
    return nullptr;  // StopIteration
  }
  return block;
}

PyObject* fw_close(PyObject* self, PyObject*) {
  FileWrapperObject* fw = as_wrapper(self);
  if (fw->filelike) {
    PyObject* close = PyObject_GetAttrString(fw->filelike, "close");
    if (!close) {
      if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return nullptr;
      PyErr_Clear();
    } else {
      PyObject* r = PyObject_CallNoArgs(close);
      Py_DECREF(close);
      if (!r) return nullptr;
      Py_DECREF(r);
    }
  }
  Py_RETURN_NONE;
}

PyMethodDef fw_methods[] = {
    {"close", fw_close, METH_NOARGS, "Closes the file-like object, if it can be closed."},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef fw_members[] = {
    {"filelike", T_OBJECT, offsetof(FileWrapperObject, filelike), READONLY, nullptr},
    {"blksize", T_PYSSIZET, offsetof(FileWrapperObject, blksize), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot fw_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(fw_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(fw_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(fw_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(fw_clear)},
    {Py_tp_iter, reinterpret_cast<void*>(fw_iter)},
    {Py_tp_iternext, reinterpret_cast<void*>(fw_next)},
    {Py_tp_methods, fw_methods},
    {Py_tp_members, fw_members},
    {Py_tp_doc, const_cast<char*>("file_wrapper(filelike, blksize=8192): a file as a WSGI "
                                  "response, sent with sendfile(2) when it has a fileno().")},
    {0, nullptr},
};

PyType_Spec fw_spec = {"spindle.FileWrapper", sizeof(FileWrapperObject), 0,
                       Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, fw_slots};

}  // namespace

bool file_wrapper_init(PyObject* module) {
  file_wrapper_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&fw_spec));
  if (!file_wrapper_type) return false;
  Py_INCREF(file_wrapper_type);
  return PyModule_AddObject(module, "FileWrapper",
                            reinterpret_cast<PyObject*>(file_wrapper_type)) == 0;
}

PyObject* file_wrapper_filelike(PyObject* wrapper) { return as_wrapper(wrapper)->filelike; }

}  // namespace spindle::python
