// core::Mailbox, the thread-safe way into a loop: calls sent from several
// threads at once all run, on the loop's thread, each exactly once, and a
// closed mailbox refuses calls instead of losing them silently. Runs on the
// real libev loop engine.
#include <atomic>
#include <thread>
#include <vector>

#include "core/loop.hh"
#include "core/mailbox.hh"
#include "core/plugin.hh"
#include "core/worker.hh"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Loop;
using spindle::core::Mailbox;
using spindle::core::Timer;

constexpr int kSenders = 4;
constexpr int kCalls = 5000;

struct Harness {
  Loop* loop = nullptr;
  std::thread::id loop_thread;
  int ran = 0;  // touched only on the loop thread
  bool off_thread = false;
  std::vector<int> seen = std::vector<int>(kSenders * kCalls, 0);
  bool timed_out = false;
};

struct Call {
  Harness* h;
  int n;
};

void run_call(void* arg) {
  auto* c = static_cast<Call*>(arg);
  Harness* h = c->h;
  if (std::this_thread::get_id() != h->loop_thread) h->off_thread = true;
  ++h->seen[static_cast<std::size_t>(c->n)];
  if (++h->ran == kSenders * kCalls) h->loop->stop();
}

void on_deadline(Timer* t) {
  auto* h = static_cast<Harness*>(t->data);
  h->timed_out = true;
  h->loop->stop();
}

std::unique_ptr<Loop> ev_loop() {
  spindle::core::Plugin* p = spindle::core::loop_provider("ev");
  assert_non_null(p);
  return p->make_loop("ev");
}

void calls_from_many_threads_all_run_once_on_the_loop_thread(void**) {
  std::unique_ptr<Loop> loop = ev_loop();
  Harness h;
  h.loop = loop.get();
  h.loop_thread = std::this_thread::get_id();
  Mailbox box;
  assert_true(box.open(*loop));
  std::vector<Call> calls(kSenders * kCalls);
  for (int i = 0; i < kSenders * kCalls; ++i) calls[static_cast<std::size_t>(i)] = {&h, i};
  Timer deadline;
  deadline.cb = on_deadline;
  deadline.data = &h;
  loop->timer_start(deadline, 20.0);

  std::atomic<bool> go{false};
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kCalls; ++i)
        box.send(run_call, &calls[static_cast<std::size_t>(s * kCalls + i)]);
    });
  }
  go.store(true);
  loop->run();
  for (std::thread& t : senders) t.join();
  loop->timer_stop(deadline);

  assert_false(h.timed_out);
  assert_false(h.off_thread);
  assert_int_equal(h.ran, kSenders * kCalls);
  for (int n : h.seen) assert_int_equal(n, 1);
  box.close();
}

void a_closed_mailbox_refuses_calls(void**) {
  std::unique_ptr<Loop> loop = ev_loop();
  Mailbox box;
  assert_false(box.send(run_call, nullptr));  // never opened
  assert_true(box.open(*loop));
  box.close();
  assert_false(box.send(run_call, nullptr));
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test(calls_from_many_threads_all_run_once_on_the_loop_thread),
      cmocka_unit_test(a_closed_mailbox_refuses_calls),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
