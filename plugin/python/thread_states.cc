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

// A core's thread state is made the first time the core runs: cores come
// and go on demand (core/scheduler.hh).
void switch_in(fibers::Context* to, void*) {
  CoreSlot& slot = core_slot(to->id);
  if (!slot.tstate) {
    slot.tstate = PyThreadState_New(PyThreadState_GetInterpreter(runtime().main_tstate));
    if (!slot.tstate) core::fatal("python: cannot create a thread state for core %d", to->id);
  }
  PyThreadState* ts = slot.tstate;
  PyThreadState_Swap(ts);
  point_gilstate_at(ts);
}

void switch_out(fibers::Context*, void*) {
  PyThreadState* ts = this_thread().main_tstate;
  PyThreadState_Swap(ts);
  point_gilstate_at(ts);
}

// A core ended: what it kept goes, so that an idle worker shrinks back after
// a burst. A core still parked (the worker is exiting) is left alone: its
// frames live on and freeing their thread state under them is worse.
void core_gone(fibers::Context* ctx, void*) {
  if (!ctx->finished) return;
  auto& cores = runtime().cores;
  if (ctx->id < 0 || static_cast<std::size_t>(ctx->id) >= cores.size()) return;
  std::unique_ptr<CoreSlot> slot = std::move(cores[static_cast<std::size_t>(ctx->id)]);
  if (!slot) return;
  if (slot->input) input_detach(slot->input);
  if (slot->responder) responder_detach(slot->responder);
  Py_CLEAR(slot->input);
  Py_CLEAR(slot->start_response);
  Py_CLEAR(slot->write);
  Py_CLEAR(slot->responder);
  if (slot->tstate) {
    PyThreadState_Clear(slot->tstate);
    PyThreadState_Delete(slot->tstate);
  }
}

// The loop is about to sleep in the kernel: let the other serving threads
// and the app's threads run.
void release_gil(void*) { this_thread().released = PyEval_SaveThread(); }

void acquire_gil(void*) {
  ThreadRuntime& tr = this_thread();
  PyEval_RestoreThread(tr.released);
  tr.released = nullptr;
}

}  // namespace

bool start_thread_states(const core::Config& cfg, core::Loop& loop, fibers::Engine& engine,
                         int thread) {
  (void)cfg;
  ThreadRuntime& tr = this_thread();
  if (thread > 0) {
    // A new OS thread: its own thread state, registered with PyGILState so
    // that extensions calling PyGILState_Ensure() outside a core find it.
    // Its cores' states are made on this thread too (switch_in).
    PyGILState_Ensure();
  }
  tr.serving = true;
  tr.loop = &loop;
  tr.main_tstate = PyThreadState_Get();
  if (thread == 0) runtime().main_tstate = tr.main_tstate;
  fibers::SwitchObserver obs;
  // The greenlet engine keeps one thread state and switches frames itself;
  // giving its cores thread states of their own would fight it.
  // An engine that shares one thread state is the greenlet one, where apps
  // also switch greenlets themselves (see Runtime::app_switches).
  runtime().app_switches = engine.shares_thread_state();
  if (!engine.shares_thread_state()) {
    obs.on_switch_in = switch_in;
    obs.on_switch_out = switch_out;
  }
  obs.on_destroy = core_gone;
  engine.add_observer(obs);
  loop.set_blocking_hooks(release_gil, acquire_gil, nullptr);
  return true;
}

void stop_thread() {
  ThreadRuntime& tr = this_thread();
  tr.loop = nullptr;
  tr.released = PyEval_SaveThread();
}

void resume_after_threads() {
  ThreadRuntime& tr = this_thread();
  if (!tr.released) return;
  PyEval_RestoreThread(tr.released);
  tr.released = nullptr;
}

}  // namespace spindle::python
