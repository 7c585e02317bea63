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

// The frame data stack's first chunk, in the core's own fiber stack.
//
// CPython keeps a thread's Python frames on a data stack of chunks; the first
// frame a new thread state runs allocates a 16 KiB chunk of its own (a
// mapping) and touches its first page. For a request parked in a wait that is
// one more page per request on top of the fiber stack's. Instead the fiber
// engine keeps a region at the top of each core's stack (reserve_scratch)
// and the thread state's first chunk is placed there before its first frame:
// the frames of a request then share the page of the core's first C frames.
// Deeper frames overflow into chunks CPython allocates and frees as usual;
// this first one is never popped (push_chunk's rule: frames start at
// data[1]), and it is detached before the thread state is cleared, so CPython
// never frees it. These are CPython's own thread-state fields (3.11-3.13,
// cpython/pystate.h), set before any frame exists. The one path that still
// could hand such a chunk to CPython's free is os.fork() from a request: the
// child drops the other cores' thread states, and should that free their
// chunks, the munmap of one in a fiber stack fails harmlessly (EINVAL: it
// does not start on a page boundary).
//
// 16.5 KiB: CPython's own chunk size, and 512 bytes more so that the chunk
// begins 3.5 KiB into a page (the stack's top is page-aligned): the first
// 512 bytes of frames share that page with the first 3.5 KiB of C stack. A
// request parked in spindle.sleep uses about 2.9 KiB of C stack and 0.3 KiB
// of data stack: one page for both. A stack too small to spare it all
// (--fiber-stack-size under 132 KiB: the engine grants at most an eighth)
// keeps its C frames' room, and CPython allocates the chunk as before.
constexpr std::size_t kDataStackBytes = 16 * 1024 + 512;

void lend_datastack(PyThreadState* ts, fibers::Context* ctx) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
  if (ctx->scratch == nullptr || ctx->scratch_size < kDataStackBytes ||
      ts->datastack_chunk != nullptr)
    return;
  auto* chunk = static_cast<_PyStackChunk*>(ctx->scratch);
  chunk->previous = nullptr;
  chunk->size = ctx->scratch_size;
  chunk->top = 0;
  ts->datastack_chunk = chunk;
  ts->datastack_top = &chunk->data[1];  // data[0] would mark a chunk to pop
  ts->datastack_limit =
      reinterpret_cast<PyObject**>(static_cast<char*>(ctx->scratch) + ctx->scratch_size);
#else
  (void)ts;
  (void)ctx;
#endif
}

// Before the thread state is cleared: CPython frees every chunk it holds,
// which must not include the one in the fiber stack. Frames are all gone by
// then, so only the first chunk is left.
void take_back_datastack(PyThreadState* ts, fibers::Context* ctx) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
  if (ctx->scratch == nullptr) return;
  _PyStackChunk* lent = static_cast<_PyStackChunk*>(ctx->scratch);
  for (_PyStackChunk* c = ts->datastack_chunk; c != nullptr; c = c->previous) {
    if (c == lent) {
      if (ts->datastack_chunk == lent) ts->datastack_chunk = nullptr;
      break;
    }
    if (c->previous == lent) {
      c->previous = nullptr;  // CPython frees the chunks above it, not this one
      break;
    }
  }
  if (ts->datastack_chunk == nullptr) ts->datastack_top = ts->datastack_limit = nullptr;
#else
  (void)ts;
  (void)ctx;
#endif
}

// A core's thread state is made the first time the core runs: cores come
// and go on demand (core/scheduler.hh).
void switch_in(fibers::Context* to, void*) {
  CoreSlot& slot = core_slot(to->id);
  if (!slot.tstate) {
    slot.tstate = PyThreadState_New(PyThreadState_GetInterpreter(runtime().main_tstate));
    if (!slot.tstate) core::fatal("python: cannot create a thread state for core %d", to->id);
    lend_datastack(slot.tstate, to);
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
    take_back_datastack(slot->tstate, ctx);
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
    // All of it or nothing: a smaller chunk would have CPython allocate and
    // free a chunk each time a request's frames cross its end.
    if (engine.reserve_scratch(kDataStackBytes) < kDataStackBytes) engine.reserve_scratch(0);
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
