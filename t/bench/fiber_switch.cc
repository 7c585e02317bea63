// Cost of one suspend+resume round trip through the fiber engine, with one
// switch observer installed that does what a language plugin's would at its
// cheapest: swap a "current state" pointer in and back out.
//
//   g++ -std=c++20 -O2 -I. fibers/*.cc t/bench/fiber_switch.cc -o fiber_switch -lboost_context
//   ./fiber_switch [round_trips]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "fibers/suspend.hh"

namespace {

using spindle::fibers::Context;
using spindle::fibers::Engine;

struct StateSwap {
  void* current = nullptr;
  void* saved = nullptr;
};

void swap_in(Context* to, void* data) {
  auto* s = static_cast<StateSwap*>(data);
  s->saved = s->current;
  s->current = to->arg;
}

void swap_out(Context* from, void* data) {
  auto* s = static_cast<StateSwap*>(data);
  s->current = s->saved;
}

Engine* g_engine = nullptr;

void spin(Context* self) {
  for (;;) g_engine->suspend();
}

double time_round_trips(Engine* engine, Context* ctx, long n) {
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) engine->resume(ctx);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 10'000'000;
  auto engine = spindle::fibers::make_fiber_engine(128 * 1024);
  g_engine = engine.get();
  int per_core_state = 0;
  StateSwap swap;
  engine->add_observer({swap_in, swap_out, &swap});
  Context* ctx = engine->spawn(spin, 0, &per_core_state);
  if (ctx == nullptr) {
    std::fprintf(stderr, "fiber_switch: cannot allocate a stack\n");
    return 1;
  }
  time_round_trips(engine.get(), ctx, n / 10 + 1);  // warm up
  const double ns = time_round_trips(engine.get(), ctx, n);
  if (swap.current != nullptr) {
    std::fprintf(stderr, "fiber_switch: observer left state swapped in\n");
    return 1;
  }
  std::printf("fiber_switch: %ld round trips, %.1f ns per suspend+resume (1 observer)\n", n, ns);
  // The context stays parked; the engine frees its stack without unwinding it.
  return 0;
}
