// Cost of one suspend+resume round trip of an async core including the
// interpreter-state swap the python plugin does on every switch: the core's
// PyThreadState in, the worker's back out, and PyGILState's thread-local
// re-pointed both ways (see plugin/python/gilstate.cc).
//
//   make build/bench/py_switch && build/bench/py_switch [round_trips]
#include <Python.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "fibers/suspend.hh"

namespace spindle::python {
void point_gilstate_at(PyThreadState* tstate);
}

namespace {

using spindle::fibers::Context;
using spindle::fibers::Engine;
using spindle::python::point_gilstate_at;

Engine* g_engine = nullptr;
PyThreadState* g_main = nullptr;

void switch_in(Context* to, void*) {
  auto* ts = static_cast<PyThreadState*>(to->arg);
  PyThreadState_Swap(ts);
  point_gilstate_at(ts);
}

void switch_out(Context*, void*) {
  PyThreadState_Swap(g_main);
  point_gilstate_at(g_main);
}

void spin(Context*) {
  for (;;) g_engine->suspend();
}

double time_round_trips(Context* ctx, long n) {
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) g_engine->resume(ctx);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 10'000'000;
  Py_InitializeEx(0);
  g_main = PyThreadState_Get();
  PyThreadState* core_state = PyThreadState_New(PyThreadState_GetInterpreter(g_main));
  auto engine = spindle::fibers::make_fiber_engine(128 * 1024);
  g_engine = engine.get();
  engine->add_observer({switch_in, switch_out, nullptr});
  Context* ctx = engine->spawn(spin, 0, core_state);
  if (!ctx) return 1;
  time_round_trips(ctx, n / 10 + 1);  // warm up
  const double ns = time_round_trips(ctx, n);
  if (PyThreadState_Get() != g_main || PyGILState_GetThisThreadState() != g_main) {
    std::fprintf(stderr, "py_switch: the worker's thread state was not restored\n");
    return 1;
  }
  std::printf("py_switch: %ld round trips, %.1f ns per suspend+resume with the thread-state swap\n",
              n, ns);
  std::fflush(stdout);
  std::_Exit(0);  // the core stays parked; no interpreter teardown needed
}
