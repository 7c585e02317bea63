// Re-pointing PyGILState's thread-local at a core's thread state.
//
// CPython 3.11 keeps, per OS thread, the thread state that PyGILState_Ensure()
// should use, and PyThreadState_Swap() leaves it alone. With one thread state
// per async core on one OS thread, an extension calling PyGILState_Ensure()
// inside a request (ctypes and cffi callbacks, many bindings) would find the
// worker's main state, see it is not current, and wait for the GIL its own
// thread holds: a deadlock. The key lives in the private runtime struct, so
// this one file is compiled as core code; 3.12 moves the thread-local itself.
//
// This file must not include python.hh: Py_BUILD_CORE changes what <Python.h>
// declares, and the rest of the plugin is built against the public API only.
#define Py_BUILD_CORE 1
#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
// pycore_atomic.h picks <stdatomic.h>, which is C only under g++ 12; the GCC
// builtins branch has the same layout (a struct around one integer).
#undef HAVE_STD_ATOMIC
#include "internal/pycore_runtime.h"
#endif

namespace spindle::python {

void point_gilstate_at(PyThreadState* tstate) {
#if PY_VERSION_HEX < 0x030C0000
  PyThread_tss_set(&_PyRuntime.gilstate.autoTSSkey, tstate);
#else
  (void)tstate;
#endif
}

}  // namespace spindle::python
