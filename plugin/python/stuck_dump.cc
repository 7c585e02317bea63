// The Python traceback in a stuck worker's dump (core/stuck.hh).
//
// The dump is written from a signal handler, possibly while the worker is
// deep in a Python loop that never yields, so it must not allocate, take
// the GIL or run Python code. CPython's own faulthandler has the one
// function made for that: it walks a thread state's frames and writes them
// with write(2). It is exported but declared only in CPython's internal
// headers (3.8 to 3.14 keep the signature), hence the declaration here.
#include <unistd.h>

#include <cstring>

#include "core/stats.hh"
#include "core/stuck.hh"
#include "fibers/suspend.hh"
#include "plugin/python/python.hh"

extern "C" void _Py_DumpTraceback(int fd, PyThreadState* tstate);

namespace spindle::python {
namespace {

bool g_shared_tstate = false;  // the greenlet engine: one thread state for every core

void put(int fd, const char* s) {
  std::size_t n = strlen(s);
  ssize_t ignored = ::write(fd, s, n);
  (void)ignored;
}

void dump(int fd, int core) {
  Runtime& rt = runtime();
  PyThreadState* ts = nullptr;
  if (core < 0) {
    ts = rt.main_tstate;
  } else if (!g_shared_tstate) {
    if (static_cast<std::size_t>(core) < rt.cores.size() && rt.cores[core])
      ts = rt.cores[core]->tstate;
  } else if (core::stats::is_running(core)) {
    // Under greenlet the thread state holds the frames of the greenlet on
    // the CPU; a parked greenlet keeps its frames to itself.
    ts = rt.main_tstate;
  } else {
    put(fd, "  (a parked greenlet: its frames are not reachable from a signal handler)\n");
    return;
  }
  if (!ts) {
    put(fd, "  (no Python thread state)\n");
    return;
  }
  _Py_DumpTraceback(fd, ts);
}

}  // namespace

void install_traceback_dumper(const fibers::Engine& engine) {
  g_shared_tstate = engine.shares_thread_state();
  core::set_traceback_dumper(dump);
}

}  // namespace spindle::python
