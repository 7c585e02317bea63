// The native suspend engine: Boost.Context fibers on StackPool stacks.
//
// Why the pieces sit where they do
//  - Each context's bookkeeping (FiberContext) lives at the top of its own
//    stack, with Boost's fiber record just below it. spawn() therefore does no
//    heap allocation once the pool is warm, and a context's hot data shares the
//    cache lines its first frames use.
//  - Stacks are returned to the pool by destroy(), never by Boost: the Context
//    stays readable (ctx->finished) between the entry returning and destroy(),
//    so Boost gets an allocator whose deallocate() does nothing.
//  - reserve_scratch() moves that bookkeeping down: the scratch region sits
//    at the very top of the stack, above FiberContext, so the caller's data
//    that grows up from the region's low end and the context's first frames
//    below it touch the same page.
//  - Only main resumes, so at most one context runs and a single `main_` fiber
//    handle (the suspended main stack) serves every context.
//  - Observers are stored pre-split into plain function-pointer arrays in
//    call order, so a switch is a loop over pointers and one fcontext jump:
//    no allocation, no std::function, no syscall (fcontext does not touch the
//    signal mask).
//
// Exceptions: run_entry() is noexcept, so an entry that lets an exception
// escape calls std::terminate on the context's stack; nothing is caught here.
//
// Destroying a context that is parked mid-way (allowed here, beyond what the
// seam promises) drops its stack without unwinding it: destructors of objects
// on that stack do not run. Unwinding would throw through whatever C code the
// entry called into (an interpreter, say), which is worse than a leak of
// whatever those objects held. The engine's destructor treats contexts that
// are still alive the same way.
#include <boost/context/fiber.hpp>
#include <boost/context/preallocated.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "fibers/stack_pool.hh"
#include "fibers/suspend.hh"

// AddressSanitizer keeps its own idea of which stack is running; Boost's
// fcontext switches behind its back. Under `make asan` every switch is
// announced to it, or it reports false stack errors and cannot unpoison a
// fiber's stack on a no-return call.
#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_ASAN_FIBERS 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define SPINDLE_ASAN_FIBERS 0
#endif

namespace spindle::fibers {

namespace {

namespace bc = boost::context;

class FiberEngine;

struct FiberContext : Context {
  FiberEngine* engine = nullptr;
  Entry entry = nullptr;
  bc::stack_context stack;
  bc::fiber fiber;  // the context while it is not running; empty once finished
#if SPINDLE_ASAN_FIBERS
  void* asan_fake_stack = nullptr;  // the context's fake stack while main runs
#endif
};

// Boost's view of our stacks: they are already allocated (preallocated) and
// go back to the pool in destroy(), not when the fiber record is torn down.
struct KeepStack {
  void deallocate(bc::stack_context&) noexcept {}
};

struct Hook {
  void (*fn)(Context*, void*);
  void* data;
};

[[noreturn]] __attribute__((cold)) void misuse(const char* what) {
  std::fprintf(stderr, "spindle: fiber engine misuse: %s\n", what);
  std::abort();
}

// Ends a fiber handle's life without its destructor, which would unwind the
// suspended stack (see the top of the file). The stack memory itself is owned
// by the pool, so nothing leaks beyond the objects living on that stack.
void abandon(bc::fiber&& f) noexcept {
  alignas(bc::fiber) unsigned char sink[sizeof(bc::fiber)];
  ::new (static_cast<void*>(sink)) bc::fiber(std::move(f));
}

class FiberEngine final : public Engine {
 public:
  FiberEngine(std::size_t stack_size, std::size_t keep_warm) : pool_(stack_size, keep_warm) {}

  ~FiberEngine() override {
    if (current_ != nullptr) misuse("engine destroyed from inside a context");
    // Live contexts are abandoned: the pool unmaps their stacks.
  }

  std::string_view name() const override { return "fibers"; }

  std::size_t reserve_scratch(std::size_t bytes) override {
    scratch_ = std::min(bytes, pool_.stack_size() / 8) & ~static_cast<std::size_t>(63);
    return scratch_;
  }

  Context* spawn(Entry entry, int id, void* arg) override {
    bc::stack_context sctx = pool_.allocate();
    if (sctx.sp == nullptr) return nullptr;
    auto scratch = reinterpret_cast<std::uintptr_t>(sctx.sp) - scratch_;
    auto top = (scratch - sizeof(FiberContext)) & ~static_cast<std::uintptr_t>(63);
    auto* ctx = ::new (reinterpret_cast<void*>(top)) FiberContext;
    if (scratch_ != 0) {
      ctx->scratch = reinterpret_cast<void*>(scratch);
      ctx->scratch_size = scratch_;
    }
    ctx->id = id;
    ctx->arg = arg;
    ctx->engine = this;
    ctx->entry = entry;
    ctx->stack = sctx;
    // The lambda is stored in Boost's record on the context's stack; it only
    // captures one pointer, so constructing the fiber allocates nothing.
    bc::preallocated where(ctx,
                           reinterpret_cast<std::uintptr_t>(ctx) -
                               (reinterpret_cast<std::uintptr_t>(sctx.sp) - sctx.size),
                           sctx);
    ctx->fiber = bc::fiber(std::allocator_arg, where, KeepStack{},
                           [ctx](bc::fiber&& caller) { return start(ctx, std::move(caller)); });
    return ctx;
  }

  void resume(Context* base) override {
    auto* ctx = static_cast<FiberContext*>(base);
    if (__builtin_expect(current_ != nullptr, 0)) misuse("resume() called inside a context");
    if (__builtin_expect(ctx->finished, 0)) misuse("resume() of a finished context");
    for (const Hook& h : in_) h.fn(ctx, h.data);
    current_ = ctx;
#if SPINDLE_ASAN_FIBERS
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, static_cast<char*>(ctx->stack.sp) - ctx->stack.size,
                                   ctx->stack.size);
#endif
    ctx->fiber = std::move(ctx->fiber).resume();
#if SPINDLE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    current_ = nullptr;
    for (const Hook& h : out_) h.fn(ctx, h.data);
  }

  void suspend() override {
    if (__builtin_expect(current_ == nullptr, 0)) misuse("suspend() called on main");
#if SPINDLE_ASAN_FIBERS
    FiberContext* self = current_;
    __sanitizer_start_switch_fiber(&self->asan_fake_stack, main_bottom_, main_size_);
#endif
    main_ = std::move(main_).resume();
#if SPINDLE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &main_bottom_, &main_size_);
#endif
  }

  Context* current() const override { return current_; }

  void destroy(Context* base) override {
    if (base == nullptr) return;
    auto* ctx = static_cast<FiberContext*>(base);
    if (ctx == current_) misuse("destroy() of the running context");
    for (const Hook& h : gone_) h.fn(ctx, h.data);
    if (ctx->fiber) abandon(std::move(ctx->fiber));
    bc::stack_context sctx = ctx->stack;
    ctx->~FiberContext();
#if SPINDLE_ASAN_FIBERS
    // Frames that never returned (a parked context dropped, or the last
    // frames of one that finished, which jump away) leave their redzones
    // poisoned; the next context on this stack must start clean.
    ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
#endif
    pool_.deallocate(sctx);
  }

  void add_observer(const SwitchObserver& obs) override {
    if (obs.on_switch_in != nullptr) in_.push_back({obs.on_switch_in, obs.data});
    if (obs.on_switch_out != nullptr) out_.insert(out_.begin(), {obs.on_switch_out, obs.data});
    if (obs.on_destroy != nullptr) gone_.push_back({obs.on_destroy, obs.data});
  }

 private:
  // First code to run on a context's stack. `caller` is main, suspended in
  // resume(); the fiber we return is where control goes when this one ends.
  static bc::fiber start(FiberContext* ctx, bc::fiber&& caller) {
    FiberEngine* self = ctx->engine;
#if SPINDLE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(nullptr, &self->main_bottom_, &self->main_size_);
#endif
    self->main_ = std::move(caller);
    run_entry(ctx);
    ctx->finished = true;
#if SPINDLE_ASAN_FIBERS
    // Last switch out: nullptr tells ASan this stack's fake frames are gone.
    __sanitizer_start_switch_fiber(nullptr, self->main_bottom_, self->main_size_);
#endif
    return std::move(self->main_);
  }

  static void run_entry(FiberContext* ctx) noexcept { ctx->entry(ctx); }

  StackPool pool_;
  bc::fiber main_;  // main, while a context runs
  FiberContext* current_ = nullptr;
  std::size_t scratch_ = 0;  // bytes at the top of each new stack, for Context::scratch
#if SPINDLE_ASAN_FIBERS
  const void* main_bottom_ = nullptr;  // main's stack, as ASan reported it
  std::size_t main_size_ = 0;
#endif
  std::vector<Hook> in_;   // registration order
  std::vector<Hook> out_;  // reverse registration order
  std::vector<Hook> gone_;  // registration order
};

}  // namespace

std::unique_ptr<Engine> make_fiber_engine(std::size_t stack_size, std::size_t keep_warm) {
  return std::make_unique<FiberEngine>(stack_size, keep_warm);
}

std::size_t fiber_stack_mappings(std::size_t contexts, std::size_t stack_size) {
  return StackPool::mappings_for(contexts, stack_size);
}

std::size_t fiber_stack_reserve(std::size_t stack_size) {
  return StackPool::stride_for(stack_size);
}

}  // namespace spindle::fibers
