// PreciseTimers, the libev engine's timer heap on a timerfd: deadline order
// whatever the start order, never early, stop and restart anywhere in the
// heap, callbacks that start and stop timers while expire() runs.
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <cmath>
#include <vector>

#include "core/loop.hh"
#include "plugin/ev/precise_timers.hh"

// Project headers come before <cmocka.h>: its fail() macro would rewrite
// any member function named fail.
extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Timer;
using spindle::ev::PreciseTimers;

constexpr std::int64_t kMs = 1000000;

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The deadline the heap holds for t (kept after it fires or stops).
std::int64_t deadline_of(Timer& t) {
  return reinterpret_cast<PreciseTimers::Slot*>(t.engine)->at_ns;
}

std::size_t heap_index_of(Timer& t) {
  return reinterpret_cast<PreciseTimers::Slot*>(t.engine)->index;
}

struct Fired {
  int id;
  std::int64_t at_ns;     // when the callback ran
  std::int64_t deadline;  // what the heap held
};

struct Harness;

// One test timer: knows its harness and what to do when it fires.
struct Probe {
  Timer timer;
  int id = 0;
  Harness* h = nullptr;
  std::int64_t not_before = 0;  // lower bound of its deadline, by the test's clock
  int fired = 0;
  // Actions run from the callback.
  Probe* start_other = nullptr;
  double start_other_s = 0;
  Probe* stop_other = nullptr;
  int restart_self = 0;  // times left to restart itself
  double restart_self_s = 0;
};

struct Harness {
  PreciseTimers timers;
  std::vector<Fired> log;
  bool armed_seen_in_callback = false;

  static void on_fire(Timer* t) {
    Probe* p = static_cast<Probe*>(t->data);
    Harness* h = p->h;
    if (t->armed) h->armed_seen_in_callback = true;
    h->log.push_back({p->id, now_ns(), deadline_of(*t)});
    ++p->fired;
    if (p->stop_other) h->timers.stop(p->stop_other->timer);
    if (p->start_other) h->start(*p->start_other, p->start_other_s);
    if (p->restart_self > 0) {
      --p->restart_self;
      h->start(*p, p->restart_self_s);
    }
  }

  void init(Probe& p, int id) {
    p.timer.cb = on_fire;
    p.timer.data = &p;
    p.id = id;
    p.h = this;
  }

  void start(Probe& p, double seconds) {
    p.not_before = now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    timers.start(p.timer, seconds);
  }

  // The engine's loop, reduced to the timerfd: waits for it, then expires.
  // Returns once `done` holds or the budget runs out.
  template <typename Done>
  void run(Done done, std::int64_t budget_ns = 500 * kMs) {
    const std::int64_t until = now_ns() + budget_ns;
    while (!done()) {
      std::int64_t left = until - now_ns();
      if (left <= 0) break;
      pollfd pfd{timers.fd(), POLLIN, 0};
      int r = poll(&pfd, 1, static_cast<int>(left / kMs) + 1);
      if (r > 0) timers.expire();
    }
  }

  // Runs for `ns` whatever fires.
  void run_for(std::int64_t ns) {
    const std::int64_t until = now_ns() + ns;
    run([&] { return now_ns() >= until; }, ns + kMs);
  }

  std::vector<int> order() const {
    std::vector<int> ids;
    for (const Fired& f : log) ids.push_back(f.id);
    return ids;
  }

  // Fired in deadline order, none before its deadline.
  void check_order_and_lateness(const std::vector<Probe*>& probes) const {
    for (std::size_t i = 1; i < log.size(); ++i)
      assert_true(log[i - 1].deadline <= log[i].deadline);
    for (const Fired& f : log) {
      assert_true(f.at_ns >= f.deadline);
      for (const Probe* p : probes)
        if (p->id == f.id) assert_true(f.at_ns >= p->not_before);
    }
  }
};

void sleep_ns(std::int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

void test_fd_is_open(void**) {
  PreciseTimers timers;
  assert_true(timers.fd() >= 0);
}

void test_fifty_shuffled_timers_fire_in_deadline_order(void**) {
  Harness h;
  std::vector<Probe> probes(50);
  std::vector<int> ms(50);
  for (int i = 0; i < 50; ++i) ms[i] = i + 1;
  std::mt19937 rng(20240611);
  std::shuffle(ms.begin(), ms.end(), rng);
  std::vector<Probe*> all;
  for (int i = 0; i < 50; ++i) {
    h.init(probes[i], ms[i]);  // id = its duration in ms
    h.start(probes[i], ms[i] / 1000.0);
    assert_true(probes[i].timer.armed);
    all.push_back(&probes[i]);
  }
  h.run([&] { return h.log.size() == 50; });
  assert_int_equal(h.log.size(), 50);
  h.check_order_and_lateness(all);
  // Durations are 1 ms apart and all started within far less than that,
  // so the deadline order is the duration order.
  std::vector<int> want(50);
  for (int i = 0; i < 50; ++i) want[i] = i + 1;
  assert_true(h.order() == want);
  for (Probe& p : probes) {
    assert_int_equal(p.fired, 1);
    assert_false(p.timer.armed);
  }
  assert_false(h.armed_seen_in_callback);
}

void test_stop_in_the_middle_needs_sift_up(void**) {
  // Started in this order, the heap array is exactly
  //   [1, 20, 5, 21, 22, 6, 7]   (ms)
  // Stopping 21 (index 3) moves the last element, 7, into index 3, below
  // 20: it must climb, or the heap breaks.
  Harness h;
  const int ms[] = {1, 20, 5, 21, 22, 6, 7};
  Probe p[7];
  std::vector<Probe*> all;
  for (int i = 0; i < 7; ++i) {
    h.init(p[i], ms[i]);
    h.start(p[i], ms[i] / 1000.0);
    all.push_back(&p[i]);
  }
  for (int i = 0; i < 7; ++i) assert_int_equal(heap_index_of(p[i].timer), i);

  h.timers.stop(p[3].timer);
  assert_false(p[3].timer.armed);
  assert_int_equal(heap_index_of(p[6].timer), 1);  // 7 climbed above 20
  assert_int_equal(heap_index_of(p[1].timer), 3);

  h.run([&] { return h.log.size() == 6; });
  h.run_for(5 * kMs);  // time for 21 to show up if it were still there
  assert_true((h.order() == std::vector<int>{1, 5, 6, 7, 20, 22}));
  assert_int_equal(p[3].fired, 0);
  h.check_order_and_lateness(all);
}

void test_stop_anywhere_keeps_heap_consistent(void**) {
  // Many stops at every kind of heap position, from a shuffled start.
  Harness h;
  constexpr int kN = 40;
  std::vector<Probe> probes(kN);
  std::vector<int> ms(kN);
  for (int i = 0; i < kN; ++i) ms[i] = i + 1;
  std::mt19937 rng(7);
  std::shuffle(ms.begin(), ms.end(), rng);
  std::vector<Probe*> all;
  for (int i = 0; i < kN; ++i) {
    h.init(probes[i], ms[i]);
    h.start(probes[i], ms[i] / 1000.0);
    all.push_back(&probes[i]);
  }
  // Stop the last slot, the root, and a spread of middle slots.
  std::vector<int> stopped;
  for (std::size_t target : {std::size_t{kN - 1}, std::size_t{0}, std::size_t{17}, std::size_t{5},
                             std::size_t{2}, std::size_t{11}, std::size_t{20}, std::size_t{8}}) {
    for (Probe& p : probes) {
      if (p.timer.armed && heap_index_of(p.timer) == target) {
        h.timers.stop(p.timer);
        stopped.push_back(p.id);
        break;
      }
    }
  }
  assert_int_equal(stopped.size(), 8);
  // Stopping twice, or a timer never started, is harmless.
  for (Probe& p : probes)
    if (!p.timer.armed) h.timers.stop(p.timer);
  Probe never;
  h.init(never, -1);
  h.timers.stop(never.timer);

  std::vector<int> want;
  for (int i = 1; i <= kN; ++i)
    if (std::find(stopped.begin(), stopped.end(), i) == stopped.end()) want.push_back(i);
  h.run([&] { return h.log.size() == want.size(); });
  h.run_for(3 * kMs);
  assert_true(h.order() == want);
  h.check_order_and_lateness(all);
}

void test_restart_moves_deadline(void**) {
  Harness h;
  Probe a, b, c;
  h.init(a, 1);
  h.init(b, 2);
  h.init(c, 3);
  h.start(a, 0.040);
  h.start(b, 0.015);
  h.start(c, 0.002);
  h.start(a, 0.005);  // moved earlier: now first
  h.start(c, 0.025);  // moved later: now last
  assert_true(a.timer.armed);
  assert_true(c.timer.armed);
  h.run([&] { return h.log.size() == 3; });
  h.run_for(20 * kMs);  // a's old deadline (40 ms) passes: no second fire
  assert_true((h.order() == std::vector<int>{1, 2, 3}));
  assert_int_equal(a.fired, 1);
  assert_int_equal(c.fired, 1);
  h.check_order_and_lateness({&a, &b, &c});
}

void test_callback_starts_another_timer(void**) {
  Harness h;
  Probe a, b, x;
  h.init(a, 1);
  h.init(b, 2);
  h.init(x, 9);
  a.start_other = &x;
  a.start_other_s = 0.003;  // due before b
  h.start(a, 0.002);
  h.start(b, 0.010);
  h.run([&] { return h.log.size() == 3; });
  assert_true((h.order() == std::vector<int>{1, 9, 2}));
  h.check_order_and_lateness({&a, &b, &x});
}

void test_callback_starts_timer_when_heap_empties(void**) {
  // The only timer starts a later one: the fd must be re-armed for it.
  Harness h;
  Probe a, x;
  h.init(a, 1);
  h.init(x, 2);
  a.start_other = &x;
  a.start_other_s = 0.004;
  h.start(a, 0.001);
  h.run([&] { return h.log.size() == 2; });
  assert_true((h.order() == std::vector<int>{1, 2}));
  h.check_order_and_lateness({&a, &x});
}

void test_callback_stops_pending_timer(void**) {
  Harness h;
  Probe a, b, c;
  h.init(a, 1);
  h.init(b, 2);
  h.init(c, 3);
  a.stop_other = &b;
  h.start(a, 0.002);
  h.start(b, 0.006);
  h.start(c, 0.010);
  h.run([&] { return h.log.size() == 2; });
  h.run_for(3 * kMs);
  assert_true((h.order() == std::vector<int>{1, 3}));
  assert_int_equal(b.fired, 0);
  assert_false(b.timer.armed);
}

void test_callback_stops_timer_due_in_same_expire(void**) {
  // a and b are both overdue when expire() runs: a goes first and stops b,
  // which must not fire even though it was due.
  Harness h;
  Probe a, b, c;
  h.init(a, 1);
  h.init(b, 2);
  h.init(c, 3);
  a.stop_other = &b;
  h.start(a, 0.001);
  h.start(b, 0.002);
  h.start(c, 0.003);
  sleep_ns(5 * kMs);
  h.timers.expire();
  assert_true((h.order() == std::vector<int>{1, 3}));
  assert_int_equal(b.fired, 0);
  assert_false(b.timer.armed);
}

void test_callback_restarts_itself(void**) {
  // A periodic timer, re-armed from its callback; a 0 s restart waits for
  // the next expire() rather than looping inside this one.
  Harness h;
  Probe a;
  h.init(a, 1);
  a.restart_self = 3;
  a.restart_self_s = 0;
  h.start(a, 0);
  h.timers.expire();
  assert_int_equal(a.fired, 1);
  assert_true(a.timer.armed);
  h.timers.expire();
  assert_int_equal(a.fired, 2);
  h.run([&] { return a.fired == 4; }, 100 * kMs);
  assert_int_equal(a.fired, 4);
  assert_false(a.timer.armed);

  Probe b;
  h.init(b, 2);
  b.restart_self = 2;
  b.restart_self_s = 0.002;
  h.start(b, 0.001);
  h.run([&] { return b.fired == 3; });
  assert_int_equal(b.fired, 3);
  assert_false(b.timer.armed);
}

void test_armed_flag(void**) {
  Harness h;
  Probe a, b;
  h.init(a, 1);
  h.init(b, 2);
  assert_false(a.timer.armed);
  h.start(a, 0.001);
  h.start(b, 0.050);
  assert_true(a.timer.armed);
  assert_true(a.timer.initialised);
  h.timers.stop(b.timer);
  assert_false(b.timer.armed);
  h.run([&] { return a.fired == 1; });
  assert_false(a.timer.armed);
  assert_false(h.armed_seen_in_callback);  // already false inside the callback
  // A fired timer can be started again.
  h.start(a, 0);
  assert_true(a.timer.armed);
  h.timers.expire();
  assert_int_equal(a.fired, 2);
  assert_false(a.timer.armed);
}

// An infinite or huge duration (spindle.sleep(float("inf"))) once wrapped
// the deadline into the past, the timerfd refused it, and every timer of
// the worker stalled.
void test_huge_duration_does_not_stall_other_timers(void**) {
  for (double huge : {1e10, HUGE_VAL}) {
    Harness h;
    Probe forever, soon;
    h.init(forever, 1);
    h.init(soon, 2);
    h.timers.start(forever.timer, huge);
    h.start(soon, 0.001);
    h.run([&] { return soon.fired == 1; });
    assert_int_equal(soon.fired, 1);
    assert_int_equal(forever.fired, 0);
    assert_true(forever.timer.armed);
    h.timers.stop(forever.timer);
  }
}

void test_zero_seconds_fires_on_next_expire(void**) {
  Harness h;
  Probe a;
  h.init(a, 1);
  h.start(a, 0);
  assert_int_equal(a.fired, 0);  // never from start() itself
  // The fd is due at once.
  pollfd pfd{h.timers.fd(), POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, 100), 1);
  h.timers.expire();
  assert_int_equal(a.fired, 1);
  assert_false(a.timer.armed);
  // And without waiting for the fd at all.
  h.start(a, 0);
  h.timers.expire();
  assert_int_equal(a.fired, 2);
}

void test_spurious_expire_fires_nothing(void**) {
  Harness h;
  h.timers.expire();  // empty heap, fd never armed
  assert_true(h.log.empty());

  Probe a;
  h.init(a, 1);
  h.start(a, 0.010);
  h.timers.expire();  // nothing due yet
  h.timers.expire();
  assert_true(h.log.empty());
  assert_true(a.timer.armed);
  // Still fires, on time, afterwards: the fd stayed armed for it.
  h.run([&] { return a.fired == 1; });
  assert_int_equal(a.fired, 1);
  h.check_order_and_lateness({&a});
}

void test_stopping_earliest_wakes_early_for_nothing(void**) {
  // Stopping never re-arms the fd: it fires at the stopped deadline, that
  // expire() fires nothing, and re-arms for the next timer.
  Harness h;
  Probe a, b;
  h.init(a, 1);
  h.init(b, 2);
  h.start(a, 0.003);
  h.start(b, 0.030);
  h.timers.stop(a.timer);
  pollfd pfd{h.timers.fd(), POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, 100), 1);
  assert_true(now_ns() < b.not_before);
  h.timers.expire();
  assert_true(h.log.empty());
  h.run([&] { return b.fired == 1; });
  assert_true((h.order() == std::vector<int>{2}));
  assert_int_equal(a.fired, 0);
  h.check_order_and_lateness({&b});
}

void test_later_start_after_stop_still_fires(void**) {
  // The fd is armed for a stopped deadline; a later timer does not re-arm
  // it (it is not earlier) and must still fire once that early wake-up is
  // handled.
  Harness h;
  Probe a, c;
  h.init(a, 1);
  h.init(c, 3);
  h.start(a, 0.002);
  h.timers.stop(a.timer);
  h.start(c, 0.006);
  h.run([&] { return c.fired == 1; });
  assert_int_equal(c.fired, 1);
  assert_int_equal(a.fired, 0);
  h.check_order_and_lateness({&c});
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fd_is_open),
      cmocka_unit_test(test_fifty_shuffled_timers_fire_in_deadline_order),
      cmocka_unit_test(test_stop_in_the_middle_needs_sift_up),
      cmocka_unit_test(test_stop_anywhere_keeps_heap_consistent),
      cmocka_unit_test(test_restart_moves_deadline),
      cmocka_unit_test(test_callback_starts_another_timer),
      cmocka_unit_test(test_callback_starts_timer_when_heap_empties),
      cmocka_unit_test(test_callback_stops_pending_timer),
      cmocka_unit_test(test_callback_stops_timer_due_in_same_expire),
      cmocka_unit_test(test_callback_restarts_itself),
      cmocka_unit_test(test_armed_flag),
      cmocka_unit_test(test_huge_duration_does_not_stall_other_timers),
      cmocka_unit_test(test_zero_seconds_fires_on_next_expire),
      cmocka_unit_test(test_spurious_expire_fires_nothing),
      cmocka_unit_test(test_stopping_earliest_wakes_early_for_nothing),
      cmocka_unit_test(test_later_start_after_stop_still_fires),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
