/* nativeext: a tiny C extension that native.py uses to exercise C code
 * running inside a parked-and-resumed request.
 *
 *   call_ensured(fn)   PyGILState_Ensure (GIL already held), fn(), Release
 *   call_released(fn)  releases the GIL, then PyGILState_Ensure, fn(),
 *                      Release, and takes the GIL back: what a C library
 *                      calling back into Python from a blocking call does
 *   gilstate()         (PyGILState_Check(), whether PyGILState_GetThisThreadState()
 *                      is the running thread state)
 *   overflow()         recurses in C without bound: never returns
 *
 * Build (the live tests do this in a temp dir):
 *   gcc -shared -fPIC -O0 $(python3-config --includes) nativeext.c \
 *       -o nativeext$(python3-config --extension-suffix)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *call_ensured(PyObject *self, PyObject *fn) {
  PyGILState_STATE st = PyGILState_Ensure();
  PyObject *r = PyObject_CallNoArgs(fn);
  PyGILState_Release(st);
  return r;
}

static PyObject *call_released(PyObject *self, PyObject *fn) {
  PyThreadState *saved = PyEval_SaveThread();
  PyGILState_STATE st = PyGILState_Ensure();
  PyObject *r = PyObject_CallNoArgs(fn);
  PyGILState_Release(st);
  PyEval_RestoreThread(saved);
  return r;
}

static PyObject *gilstate(PyObject *self, PyObject *unused) {
  int held = PyGILState_Check();
  int same = PyGILState_GetThisThreadState() == PyThreadState_Get();
  return Py_BuildValue("(OO)", held ? Py_True : Py_False, same ? Py_True : Py_False);
}

/* Each level keeps a 512-byte frame alive across the call below it, so the
 * stack grows page by page until it reaches the guard page. */
static int __attribute__((noinline)) dive(volatile char *above, unsigned long n) {
  volatile char pad[512];
  if (n == (unsigned long)-1) return 0; /* never: the stack ends long before */
  pad[0] = (char)n;
  pad[sizeof pad - 1] = above ? above[0] : 0;
  return dive(pad, n + 1) + pad[sizeof pad - 1];
}

static PyObject *overflow(PyObject *self, PyObject *unused) {
  return PyLong_FromLong(dive(NULL, 0));
}

static PyMethodDef methods[] = {
    {"call_ensured", call_ensured, METH_O, "fn() between PyGILState_Ensure and Release."},
    {"call_released", call_released, METH_O,
     "fn() under PyGILState_Ensure after releasing the GIL."},
    {"gilstate", gilstate, METH_NOARGS, "(PyGILState_Check(), GILState tstate is current)."},
    {"overflow", overflow, METH_NOARGS, "Recurse in C until the stack runs out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nativeext", "C code for examples/async/native.py.", -1, methods,
};

PyMODINIT_FUNC PyInit_nativeext(void) { return PyModule_Create(&module); }
