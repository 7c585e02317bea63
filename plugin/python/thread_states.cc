// One PyThreadState per async core, swapped in and out with the core.
//
// A core's thread state isolates what CPython keeps per thread: the frame
// stack, the exception being handled, recursion depth, contextvars and the
// thread-state dict (so threading.local is per core). Swapping costs a few
// stores, so it is done on every switch rather than only for cores that run
// Python.
#include "core/config.hh"
#include "core/log.hh"
#include "fibers/suspend.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

void switch_in(fibers::Context* to, void*) {
  CoreSlot& slot = core_slot(to->id);
  if (!slot.tstate) {  // a core beyond --async: never expected, but never NULL either
    slot.tstate = PyThreadState_New(PyThreadState_GetInterpreter(runtime().main_tstate));
  }
  PyThreadState* ts = slot.tstate;
  PyThreadState_Swap(ts);
  point_gilstate_at(ts);
}

void switch_out(fibers::Context*, void*) {
  PyThreadState* ts = runtime().main_tstate;
  PyThreadState_Swap(ts);
  point_gilstate_at(ts);
}

// The loop is about to sleep in the kernel: let the app's threads run.
void release_gil(void*) { runtime().released = PyEval_SaveThread(); }

void acquire_gil(void*) {
  Runtime& rt = runtime();
  PyEval_RestoreThread(rt.released);
  rt.released = nullptr;
}

}  // namespace

bool start_thread_states(const core::Config& cfg, core::Loop& loop, fibers::Engine& engine) {
  Runtime& rt = runtime();
  rt.main_tstate = PyThreadState_Get();
  int cores = cfg.async > 0 ? cfg.async : 1;
  for (int i = 0; i < cores; ++i) core_slot(i);
  // The greenlet engine keeps one thread state and switches frames itself;
  // giving its cores thread states of their own would fight it.
  if (engine.name() != "greenlet") {
    PyInterpreterState* interp = PyThreadState_GetInterpreter(rt.main_tstate);
    for (int i = 0; i < cores; ++i) {
      CoreSlot& slot = core_slot(i);
      if (slot.tstate) continue;
      slot.tstate = PyThreadState_New(interp);
      if (!slot.tstate) {
        SPINDLE_LOG_ERROR("python: cannot create a thread state for core %d", i);
        return false;
      }
    }
    fibers::SwitchObserver obs;
    obs.on_switch_in = switch_in;
    obs.on_switch_out = switch_out;
    engine.add_observer(obs);
  }
  loop.set_blocking_hooks(release_gil, acquire_gil, nullptr);
  return true;
}

}  // namespace spindle::python
