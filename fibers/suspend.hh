// The suspend-engine seam.
//
// A suspend engine runs a piece of code (an async core) on its own context
// and lets that code step out (suspend) and be stepped back into (resume).
// It knows nothing of Python, HTTP or the event loop.
//
// Threading and ownership
//  - One engine per worker process, used from one thread only.
//  - The thread's original stack is the "main" context: the event loop runs
//    there. Only main may call resume(); only a spawned context may call
//    suspend(). A context never resumes another context directly: to hand
//    work over, it asks the loop (core's post()) and suspends.
//  - The engine owns every Context it spawns; destroy() releases one that has
//    finished or was never started.
//
// Errors
//  - No C++ exception may cross a switch. An entry function that throws
//    terminates the process (std::terminate), so catch at the entry.
//  - Running off the end of a context's stack hits a guard page (SIGSEGV):
//    the worker dies and the master respawns it and logs the signal.
//
// Observers
//  - A language plugin registers a SwitchObserver to save and restore its own
//    per-context state (CPython's thread state, for one). on_switch_in runs
//    just before control enters a context (on the main stack, before the
//    switch), on_switch_out just after control comes back to main.
//  - on_destroy runs in destroy(), on main, before the context's memory is
//    released: the plugin frees what it kept for that context.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace spindle::fibers {

// One schedulable context. Engines extend it; callers only read the fields.
struct Context {
  int id = -1;             // the async core's index, chosen by the caller
  void* arg = nullptr;     // passed to the entry function
  bool finished = false;   // entry returned; resume() must not be called again
  // Bytes of this context's stack kept for the caller (Engine::reserve_scratch),
  // or nullptr. Valid from spawn() until the on_destroy observers return.
  void* scratch = nullptr;
  std::size_t scratch_size = 0;
};

using Entry = void (*)(Context* self);

struct SwitchObserver {
  void (*on_switch_in)(Context* to, void* data) = nullptr;
  void (*on_switch_out)(Context* from, void* data) = nullptr;
  void* data = nullptr;
  void (*on_destroy)(Context* ctx, void* data) = nullptr;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // The engine's name, as chosen on the command line ("fibers", "greenlet").
  virtual std::string_view name() const = 0;

  // True when the engine's contexts share the thread's language runtime
  // state and switch it themselves (a greenlet switches frames, not
  // interpreter thread states): a language plugin then must not give each
  // context a state of its own. Plugins ask this, never the engine's name.
  virtual bool shares_thread_state() const { return false; }

  // Asks that every context spawned from now on keep `bytes` of its own
  // stack for the caller, handed over in Context::scratch: a region at the
  // top of the stack, with the context's first frame right below it, so that
  // something growing up from the region's low end (an interpreter's frame
  // data stack) shares pages with the first frames instead of touching pages
  // of its own. The stack's top is page-aligned, so the region's low end lies
  // `bytes` (mod the page size) below a page boundary. Returns the bytes
  // granted (rounded down to 64, at most an eighth of the stack), or 0 when
  // the engine's contexts have no stack of their own to share. Call it before
  // the first spawn(); one caller per engine.
  virtual std::size_t reserve_scratch(std::size_t bytes) {
    (void)bytes;
    return 0;
  }

  // Creates a context that will run entry(ctx) on its first resume().
  // Returns nullptr when the stack cannot be allocated.
  virtual Context* spawn(Entry entry, int id, void* arg) = 0;

  // From main only: switches into ctx and returns when ctx suspends or its
  // entry returns (then ctx->finished is true).
  virtual void resume(Context* ctx) = 0;

  // From inside a context only: switches back to main.
  virtual void suspend() = 0;

  // The running context, or nullptr on main.
  virtual Context* current() const = 0;

  // Releases a context that finished or never started (its observers'
  // on_destroy run first, in registration order).
  virtual void destroy(Context* ctx) = 0;

  // At most a few observers; all are called, in registration order on the way
  // in and in reverse order on the way out.
  virtual void add_observer(const SwitchObserver& obs) = 0;
};

// The native engine: Boost.Context fibers on pooled, guard-paged stacks of
// stack_size bytes (rounded up to whole pages; the guard page is extra).
// Stacks of destroyed contexts stay resident up to keep_warm of them; beyond
// that their pages go back to the kernel (see stack_pool.hh).
std::unique_ptr<Engine> make_fiber_engine(std::size_t stack_size, std::size_t keep_warm = 64);

// Kernel memory mappings (VMAs) that `contexts` live contexts of the native
// engine need for their stacks, for a start-up check against vm.max_map_count.
std::size_t fiber_stack_mappings(std::size_t contexts, std::size_t stack_size);

// Address space one context's stack reserves (stack rounded up, plus guard).
std::size_t fiber_stack_reserve(std::size_t stack_size);

}  // namespace spindle::fibers
