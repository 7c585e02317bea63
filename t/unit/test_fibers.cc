// Unit tests for the native suspend engine (fibers/) and its stack pool.
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

#include "fibers/stack_pool.hh"
#include "fibers/suspend.hh"

namespace {

using spindle::fibers::Context;
using spindle::fibers::Engine;
using spindle::fibers::make_fiber_engine;
using spindle::fibers::StackPool;
using spindle::fibers::SwitchObserver;

constexpr std::size_t kStack = 64 * 1024;

// Shared state an entry reaches through Context::arg.
struct Scene {
  Engine* engine = nullptr;
  std::vector<int> log;
  int steps = 0;  // how many times each entry suspends before returning
};

// --- spawn, resume, finish --------------------------------------------------

void record_and_return(Context* self) {
  auto* scene = static_cast<Scene*>(self->arg);
  scene->log.push_back(self->id);
}

void test_spawn_resume_finish(void** state) {
  auto engine = make_fiber_engine(kStack);
  assert_true(engine->name() == "fibers");
  Scene scene;
  scene.engine = engine.get();
  Context* ctx = engine->spawn(record_and_return, 7, &scene);
  assert_non_null(ctx);
  assert_int_equal(ctx->id, 7);
  assert_ptr_equal(ctx->arg, &scene);
  // Lazily started: nothing ran yet.
  assert_false(ctx->finished);
  assert_int_equal(scene.log.size(), 0);
  engine->resume(ctx);
  assert_true(ctx->finished);
  assert_int_equal(scene.log.size(), 1);
  assert_int_equal(scene.log[0], 7);
  engine->destroy(ctx);
}

// --- scratch region ---------------------------------------------------------

// Fills the context's scratch with its id, parks (its frames stay below the
// region), and checks the bytes are intact when resumed.
void scratch_filler(Context* self) {
  auto* scene = static_cast<Scene*>(self->arg);
  auto* bytes = static_cast<unsigned char*>(self->scratch);
  std::memset(bytes, self->id, self->scratch_size);
  volatile char frame[2048];  // C frames in use while the region is full
  std::memset(const_cast<char*>(frame), 0x5a, sizeof frame);
  scene->engine->suspend();
  bool intact = true;
  for (std::size_t i = 0; i < self->scratch_size; ++i) intact &= bytes[i] == self->id;
  scene->log.push_back(intact ? self->id : -self->id);
}

void test_scratch_region(void** state) {
  auto engine = make_fiber_engine(4 * kStack);
  // Capped at an eighth of the stack, rounded down to 64 bytes.
  assert_int_equal(engine->reserve_scratch(1u << 30), 4 * kStack / 8);
  assert_int_equal(engine->reserve_scratch(16 * 1024 + 512 + 7), 16 * 1024 + 512);
  Scene scene;
  scene.engine = engine.get();
  Context* a = engine->spawn(scratch_filler, 1, &scene);
  Context* b = engine->spawn(scratch_filler, 2, &scene);
  assert_non_null(a);
  assert_non_null(b);
  for (Context* c : {a, b}) {
    assert_non_null(c->scratch);
    assert_int_equal(c->scratch_size, 16 * 1024 + 512);
    // At the top of the stack (page-aligned), above the context's record.
    auto end = reinterpret_cast<std::uintptr_t>(c->scratch) + c->scratch_size;
    assert_int_equal(end % StackPool::page_size(), 0);
    assert_true(reinterpret_cast<std::uintptr_t>(c) < reinterpret_cast<std::uintptr_t>(c->scratch));
  }
  engine->resume(a);
  engine->resume(b);
  engine->resume(a);
  engine->resume(b);
  assert_int_equal(scene.log.size(), 2);
  assert_int_equal(scene.log[0], 1);
  assert_int_equal(scene.log[1], 2);
  engine->destroy(a);
  engine->destroy(b);
  // An engine asked for nothing hands out none.
  auto plain = make_fiber_engine(kStack);
  Context* c = plain->spawn(record_and_return, 3, &scene);
  assert_null(c->scratch);
  assert_int_equal(c->scratch_size, 0);
  plain->resume(c);
  plain->destroy(c);
}

// --- interleaving -----------------------------------------------------------

// Logs id*10+step before each suspend, then id*10+9 when it returns.
void stepper(Context* self) {
  auto* scene = static_cast<Scene*>(self->arg);
  for (int step = 0; step < scene->steps; ++step) {
    scene->log.push_back(self->id * 10 + step);
    scene->engine->suspend();
  }
  scene->log.push_back(self->id * 10 + 9);
}

void test_interleaving_order(void** state) {
  auto engine = make_fiber_engine(kStack);
  Scene scene;
  scene.engine = engine.get();
  scene.steps = 2;
  Context* c[3];
  for (int i = 0; i < 3; ++i) {
    c[i] = engine->spawn(stepper, i + 1, &scene);
    assert_non_null(c[i]);
  }
  const int order[] = {2, 0, 2, 1, 0, 0, 2, 1, 1};
  for (int i : order) {
    assert_false(c[i]->finished);
    engine->resume(c[i]);
  }
  const std::vector<int> expected = {30, 10, 31, 20, 11, 19, 39, 21, 29};
  assert_int_equal(scene.log.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) assert_int_equal(scene.log[i], expected[i]);
  for (Context* x : c) {
    assert_true(x->finished);
    engine->destroy(x);
  }
}

// --- current() --------------------------------------------------------------

struct CurrentProbe {
  Engine* engine;
  Context* seen[3] = {};
};

void watch_current(Context* self) {
  auto* probe = static_cast<CurrentProbe*>(self->arg);
  probe->seen[0] = probe->engine->current();
  probe->engine->suspend();
  probe->seen[1] = probe->engine->current();
  probe->engine->suspend();
  probe->seen[2] = probe->engine->current();
}

void test_current(void** state) {
  auto engine = make_fiber_engine(kStack);
  assert_null(engine->current());
  CurrentProbe pa{engine.get()}, pb{engine.get()};
  Context* a = engine->spawn(watch_current, 0, &pa);
  Context* b = engine->spawn(watch_current, 1, &pb);
  for (int round = 0; round < 3; ++round) {
    engine->resume(a);
    assert_null(engine->current());
    engine->resume(b);
    assert_null(engine->current());
  }
  for (int i = 0; i < 3; ++i) {
    assert_ptr_equal(pa.seen[i], a);
    assert_ptr_equal(pb.seen[i], b);
  }
  engine->destroy(a);
  engine->destroy(b);
}

// --- observers --------------------------------------------------------------

enum Kind { kIn = 1, kOut = 2, kBody = 3 };

struct Event {
  int kind;
  int who;  // observer number, or -1 for the entry's own event
  Context* ctx;
  bool current_was_null;
  bool finished;
};

struct ObserverLog {
  Engine* engine = nullptr;
  std::vector<Event> events;
};

struct ObserverTag {
  ObserverLog* log;
  int who;
};

void obs_in(Context* to, void* data) {
  auto* tag = static_cast<ObserverTag*>(data);
  tag->log->events.push_back(
      {kIn, tag->who, to, tag->log->engine->current() == nullptr, to->finished});
}

void obs_out(Context* from, void* data) {
  auto* tag = static_cast<ObserverTag*>(data);
  tag->log->events.push_back(
      {kOut, tag->who, from, tag->log->engine->current() == nullptr, from->finished});
}

void observed_body(Context* self) {
  auto* log = static_cast<ObserverLog*>(self->arg);
  for (int i = 0; i < 2; ++i) {
    log->events.push_back({kBody, -1, self, false, false});
    log->engine->suspend();
  }
  log->events.push_back({kBody, -1, self, false, false});
}

void test_observers(void** state) {
  auto engine = make_fiber_engine(kStack);
  ObserverLog log;
  log.engine = engine.get();
  ObserverTag t0{&log, 0}, t1{&log, 1}, t2{&log, 2};
  engine->add_observer({obs_in, obs_out, &t0});
  engine->add_observer({obs_in, obs_out, &t1});
  engine->add_observer({obs_in, nullptr, &t2});  // half an observer is allowed
  Context* a = engine->spawn(observed_body, 0, &log);
  Context* b = engine->spawn(observed_body, 1, &log);
  const Context* order[] = {a, b, b, a, a, b};
  for (const Context* x : order) engine->resume(const_cast<Context*>(x));
  assert_true(a->finished);
  assert_true(b->finished);

  // Each resume: in 0, in 1, in 2, body, out 1, out 0.
  const int per_switch = 6;
  assert_int_equal(log.events.size(), per_switch * 6);
  int count_in[3] = {}, count_out[3] = {};
  int resumes_of_a = 0, resumes_of_b = 0;
  for (int s = 0; s < 6; ++s) {
    const Event* e = &log.events[s * per_switch];
    Context* ctx = const_cast<Context*>(order[s]);
    const int expect_kind[] = {kIn, kIn, kIn, kBody, kOut, kOut};
    const int expect_who[] = {0, 1, 2, -1, 1, 0};
    int& resumes = ctx == a ? resumes_of_a : resumes_of_b;
    ++resumes;
    for (int i = 0; i < per_switch; ++i) {
      assert_int_equal(e[i].kind, expect_kind[i]);
      assert_int_equal(e[i].who, expect_who[i]);
      assert_ptr_equal(e[i].ctx, ctx);
      if (e[i].kind == kIn) {
        assert_true(e[i].current_was_null);
        assert_false(e[i].finished);
        ++count_in[e[i].who];
      } else if (e[i].kind == kOut) {
        assert_true(e[i].current_was_null);
        // The third resume of a context is the one that returns from its entry.
        assert_int_equal(e[i].finished, resumes == 3);
        ++count_out[e[i].who];
      }
    }
  }
  assert_int_equal(count_in[0], 6);
  assert_int_equal(count_in[1], 6);
  assert_int_equal(count_in[2], 6);
  assert_int_equal(count_out[0], 6);
  assert_int_equal(count_out[1], 6);
  assert_int_equal(count_out[2], 0);
  engine->destroy(a);
  engine->destroy(b);
}

// --- stack reuse ------------------------------------------------------------

struct AddressProbe {
  Engine* engine = nullptr;
  bool park = false;
  std::uintptr_t local = 0;
};

void note_stack_address(Context* self) {
  auto* probe = static_cast<AddressProbe*>(self->arg);
  volatile int local = 0;
  probe->local = reinterpret_cast<std::uintptr_t>(&local);
  if (probe->park) probe->engine->suspend();
}

void test_stack_reused_after_destroy(void** state) {
  auto engine = make_fiber_engine(kStack);
  AddressProbe first{engine.get()}, second{engine.get()};
  Context* a = engine->spawn(note_stack_address, 0, &first);
  engine->resume(a);
  assert_true(a->finished);
  const auto a_addr = reinterpret_cast<std::uintptr_t>(a);
  engine->destroy(a);

  Context* b = engine->spawn(note_stack_address, 1, &second);
  assert_int_equal(reinterpret_cast<std::uintptr_t>(b), a_addr);
  engine->resume(b);
  assert_true(first.local != 0);
  assert_int_equal(second.local, first.local);
  // While b holds that stack, a new context must get a different one.
  AddressProbe third{engine.get()};
  Context* c = engine->spawn(note_stack_address, 2, &third);
  engine->resume(c);
  assert_true(third.local != first.local);
  engine->destroy(c);
  engine->destroy(b);

  // A never-started context and one parked mid-way both give their stack back.
  Context* d = engine->spawn(note_stack_address, 3, &second);
  engine->destroy(d);
  AddressProbe parked{engine.get(), true};
  Context* e = engine->spawn(note_stack_address, 4, &parked);
  engine->resume(e);
  assert_false(e->finished);
  engine->destroy(e);
  AddressProbe last{engine.get()};
  Context* f = engine->spawn(note_stack_address, 5, &last);
  engine->resume(f);
  assert_int_equal(last.local, parked.local);
  engine->destroy(f);
}

// A context dropped while parked leaves the redzones of its frames poisoned
// (under make asan); the next context on that stack must not trip over them
// in code that ASan does not instrument, such as an interpreter. Without ASan
// this only runs the two contexts.
__attribute__((noinline)) void park_deep(Context* self, int depth) {
  volatile char pad[100];
  pad[0] = static_cast<char>(depth);
  if (depth > 0) {
    park_deep(self, depth - 1);
  } else {
    static_cast<Scene*>(self->arg)->engine->suspend();
  }
  static_cast<Scene*>(self->arg)->steps += pad[0];
}

void park_with_redzones(Context* self) { park_deep(self, 20); }

void* (*volatile g_fill)(void*, int, std::size_t) = std::memset;

__attribute__((no_sanitize_address, noinline)) void fill_uninstrumented(Context* self) {
  char buf[8 * 1024];
  g_fill(buf, 0x5a, sizeof buf);  // ASan's memset checks every byte it writes
  static_cast<Scene*>(self->arg)->steps = buf[sizeof buf / 2];
}

void test_dropped_parked_context_leaves_a_clean_stack(void** state) {
  auto engine = make_fiber_engine(kStack);
  Scene scene;
  scene.engine = engine.get();
  Context* a = engine->spawn(park_with_redzones, 1, &scene);
  engine->resume(a);
  assert_false(a->finished);
  engine->destroy(a);
  Context* b = engine->spawn(fill_uninstrumented, 2, &scene);
  engine->resume(b);
  assert_true(b->finished);
  assert_int_equal(scene.steps, 0x5a);
  engine->destroy(b);
}

long resident_bytes();

void test_pool_lifo(void** state) {
  StackPool pool(1);  // rounded up to the minimum
  assert_int_equal(pool.stack_size(), StackPool::kMinStackSize);
  auto s1 = pool.allocate();
  auto s2 = pool.allocate();
  assert_non_null(s1.sp);
  assert_non_null(s2.sp);
  assert_true(s1.sp != s2.sp);
  assert_int_equal(pool.carved(), 2);
  void* sp1 = s1.sp;
  pool.deallocate(s1);
  assert_int_equal(pool.pooled(), 1);
  auto s3 = pool.allocate();
  assert_ptr_equal(s3.sp, sp1);
  assert_int_equal(pool.carved(), 2);
  assert_int_equal(pool.pooled(), 0);
  pool.deallocate(s2);
  pool.deallocate(s3);
}

int count_mappings() {
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return -1;
  int lines = 0;
  for (int ch; (ch = std::fgetc(f)) != EOF;) lines += ch == '\n';
  std::fclose(f);
  return lines;
}

// vm.max_map_count (65,530) once capped a worker near 32,000 stacks: 20,000
// stacks must take far fewer mappings than that, and no more than promised.
void test_pool_slabs_save_mappings(void** state) {
  constexpr std::size_t kCount = 20000;
  const int before = count_mappings();
  StackPool pool(StackPool::kMinStackSize);
  std::vector<boost::context::stack_context> stacks;
  for (std::size_t i = 0; i < kCount; ++i) {
    stacks.push_back(pool.allocate());
    assert_non_null(stacks.back().sp);
    static_cast<char*>(stacks.back().sp)[-1] = 1;  // in use
  }
  const int added = count_mappings() - before;
  const std::size_t promised = StackPool::mappings_for(kCount, pool.stack_size());
  std::printf("# %zu stacks: %d mappings (promised at most %zu; guard markers: %s)\n", kCount,
              added, promised, StackPool::guard_markers() ? "yes" : "no");
  assert_true(added <= static_cast<int>(promised) + 2);
  if (StackPool::guard_markers()) assert_true(added < 1000);
  for (auto& s : stacks) pool.deallocate(s);
}

// Beyond keep_warm, a freed stack's pages go back to the kernel; the stack
// itself is reused (no new carving) and works.
void test_pool_cold_stacks_release_memory(void** state) {
  constexpr std::size_t kCount = 2000;
  constexpr std::size_t kTouch = 32 * 1024;
  StackPool pool(64 * 1024, 8);
  std::vector<boost::context::stack_context> stacks;
  for (std::size_t i = 0; i < kCount; ++i) {
    stacks.push_back(pool.allocate());
    std::memset(static_cast<char*>(stacks.back().sp) - kTouch, 1, kTouch);
  }
  const long busy = resident_bytes();
  for (auto& s : stacks) pool.deallocate(s);
  const long idle = resident_bytes();
  assert_int_equal(pool.warm(), 8);
  assert_int_equal(pool.pooled(), kCount);
  std::printf("# %zu stacks of %zu KiB touched, freed: %ld KiB RSS returned\n", kCount,
              kTouch / 1024, (busy - idle) / 1024);
  assert_true(busy - idle > static_cast<long>((kCount - 8) * kTouch / 2));
  auto again = pool.allocate();
  assert_int_equal(pool.carved(), kCount);
  std::memset(static_cast<char*>(again.sp) - kTouch, 2, kTouch);
  pool.deallocate(again);
}

// --- on_destroy observers ---------------------------------------------------

void count_destroy(Context* ctx, void* data) { *static_cast<int*>(data) += ctx->id; }

void test_destroy_observer(void** state) {
  auto engine = make_fiber_engine(kStack);
  int sum = 0;
  SwitchObserver obs;
  obs.on_destroy = count_destroy;
  obs.data = &sum;
  engine->add_observer(obs);
  Scene scene;
  scene.engine = engine.get();
  Context* a = engine->spawn(record_and_return, 3, &scene);
  Context* b = engine->spawn(record_and_return, 4, &scene);
  engine->resume(a);
  assert_int_equal(sum, 0);
  engine->destroy(a);
  assert_int_equal(sum, 3);
  engine->destroy(b);  // never started: observers still hear of it
  assert_int_equal(sum, 7);
}

// --- many parked contexts ---------------------------------------------------

long resident_bytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  return n == 2 ? pages_resident * sysconf(_SC_PAGESIZE) : -1;
}

void park_once(Context* self) {
  auto* scene = static_cast<Scene*>(self->arg);
  volatile char touch[256];
  touch[0] = 1;
  scene->engine->suspend();
  scene->steps += touch[0];
}

void test_ten_thousand_parked(void** state) {
  constexpr int kCount = 10000;
  auto engine = make_fiber_engine(kStack, kCount);  // every freed stack stays warm
  Scene scene;
  scene.engine = engine.get();
  std::vector<Context*> ctxs(kCount);

  for (int round = 0; round < 2; ++round) {
    scene.steps = 0;
    const long before = resident_bytes();
    assert_true(before > 0);
    for (int i = 0; i < kCount; ++i) {
      ctxs[i] = engine->spawn(park_once, i, &scene);
      assert_non_null(ctxs[i]);
      engine->resume(ctxs[i]);
      assert_false(ctxs[i]->finished);
    }
    const long growth = resident_bytes() - before;
    if (round == 0) {
      std::printf("# %d parked contexts: %.1f KiB RSS each\n", kCount, growth / 1024.0 / kCount);
      assert_true(growth / kCount < 64 * 1024);
    } else {
      // Every stack came back from the pool: already resident, nothing new.
      std::printf("# second round from the pool: %ld KiB RSS growth\n", growth / 1024);
      assert_true(growth < 4 * 1024 * 1024);
    }
    for (int i = kCount - 1; i >= 0; --i) {
      engine->resume(ctxs[i]);
      assert_true(ctxs[i]->finished);
    }
    assert_int_equal(scene.steps, kCount);
    for (Context* c : ctxs) engine->destroy(c);
  }
}

// --- guard page -------------------------------------------------------------

// A page shared with forked children, so they can report how far they got
// before dying.
struct Shared {
  volatile int reached = 0;
  volatile std::uintptr_t top = 0;
  volatile std::uintptr_t deepest = 0;
};

Shared* map_shared() {
  void* p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  assert_true(p != MAP_FAILED);
  return new (p) Shared;
}

// Children run with default SIGSEGV handling (CMocka installs its own) and no
// core dump.
void prepare_child() {
  signal(SIGSEGV, SIG_DFL);
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
}

int wait_child(pid_t pid) {
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

void test_pool_guard_page(void** state) {
  StackPool pool(StackPool::kMinStackSize);
  auto sctx = pool.allocate();
  auto* lowest = static_cast<volatile char*>(sctx.sp) - sctx.size;
  Shared* shared = map_shared();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prepare_child();
    lowest[0] = 1;  // the last usable byte
    shared->reached = 1;
    lowest[-1] = 1;  // the guard page
    _exit(0);
  }
  int status = wait_child(pid);
  assert_int_equal(shared->reached, 1);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  munmap(shared, sizeof(Shared));
  pool.deallocate(sctx);
}

Shared* g_probe = nullptr;
volatile int g_depth_limit = 1 << 30;

__attribute__((noinline)) int dive(int depth) {
  volatile char pad[200];
  pad[0] = static_cast<char>(depth);
  g_probe->deepest = reinterpret_cast<std::uintptr_t>(&pad[0]);
  if (depth == g_depth_limit) return 0;
  return dive(depth + 1) + pad[0];
}

void overflow(Context* self) {
  volatile char top = 0;
  g_probe->top = reinterpret_cast<std::uintptr_t>(&top);
  dive(0);
}

void test_stack_overflow_hits_guard(void** state) {
  constexpr std::size_t kSmall = 32 * 1024;
  Shared* shared = map_shared();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prepare_child();
    g_probe = shared;
    auto engine = make_fiber_engine(kSmall);
    // Two contexts, so the second's stack sits next to the first's mapping:
    // without a guard page the dive would run into it instead of faulting.
    Context* neighbour = engine->spawn(overflow, 0, nullptr);
    Context* ctx = engine->spawn(overflow, 1, nullptr);
    (void)neighbour;
    engine->resume(ctx);
    _exit(0);
  }
  int status = wait_child(pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  // It died at the end of its own stack: almost all of it was used, no more.
  const std::uintptr_t used = shared->top - shared->deepest;
  std::printf("# overflow died after %zu of %zu stack bytes\n", static_cast<std::size_t>(used),
              kSmall);
  assert_true(shared->deepest != 0);
  assert_true(used <= kSmall);
  assert_true(used >= kSmall - 2 * 4096);
  munmap(shared, sizeof(Shared));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spawn_resume_finish),
      cmocka_unit_test(test_scratch_region),
      cmocka_unit_test(test_interleaving_order),
      cmocka_unit_test(test_current),
      cmocka_unit_test(test_observers),
      cmocka_unit_test(test_stack_reused_after_destroy),
      cmocka_unit_test(test_dropped_parked_context_leaves_a_clean_stack),
      cmocka_unit_test(test_pool_lifo),
      cmocka_unit_test(test_pool_slabs_save_mappings),
      cmocka_unit_test(test_pool_cold_stacks_release_memory),
      cmocka_unit_test(test_destroy_observer),
      cmocka_unit_test(test_ten_thousand_parked),
      cmocka_unit_test(test_pool_guard_page),
      cmocka_unit_test(test_stack_overflow_hits_guard),
  };
  return cmocka_run_group_tests_name("fibers", tests, nullptr, nullptr);
}
