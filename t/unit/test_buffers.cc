// The small containers of the I/O path: a connection's ReadBuffer (lazy,
// compacting, bounded by max except on append) and the TaskQueue loop
// engines drain (FIFO, each task queued at most once, no starvation).
#include <cstddef>
#include <string>
#include <vector>

#include "core/loop.hh"
#include "core/read_buffer.hh"
#include "core/task_queue.hh"

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

using spindle::core::ReadBuffer;
using spindle::core::Task;
using spindle::core::TaskQueue;

constexpr std::size_t kInitial = ReadBuffer::kInitial;

// A byte pattern that differs from one offset to the next, so a wrong
// memmove shows up as a mismatch.
std::string pattern(std::size_t n, std::size_t seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i + seed) % 23);
  return s;
}

std::string unconsumed(ReadBuffer& b, std::size_t start, std::size_t end) {
  return std::string(b.data() + start, end - start);
}

// Writes `s` at `end` as a read() into the free space would.
void fill(ReadBuffer& b, std::size_t& end, const std::string& s) {
  assert_true(end + s.size() <= b.size());
  s.copy(b.data() + end, s.size());
  end += s.size();
}

// --- ReadBuffer -----------------------------------------------------------

void test_buffer_is_lazy(void**) {
  ReadBuffer b(64 * 1024);
  assert_null(b.data());
  assert_int_equal(b.size(), 0);

  std::size_t start = 0, end = 0;
  assert_true(b.make_room(start, end));
  assert_non_null(b.data());
  assert_int_equal(b.size(), kInitial);
  assert_int_equal(start, 0);
  assert_int_equal(end, 0);
}

void test_buffer_max_below_initial_is_raised(void**) {
  // A max smaller than the first allocation still allows one kInitial block.
  ReadBuffer b(10);
  std::size_t start = 0, end = 0;
  assert_true(b.make_room(start, end));
  assert_int_equal(b.size(), kInitial);
  fill(b, end, pattern(kInitial));
  assert_false(b.make_room(start, end));
  assert_int_equal(b.size(), kInitial);
}

void test_buffer_room_left_is_not_touched(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  assert_true(b.make_room(start, end));
  fill(b, end, pattern(100));
  start = 10;
  const char* before = b.data();
  assert_true(b.make_room(start, end));
  // Room after end already: nothing moves.
  assert_ptr_equal(b.data(), before);
  assert_int_equal(start, 10);
  assert_int_equal(end, 100);
  assert_true(unconsumed(b, start, end) == pattern(100).substr(10));
}

void test_buffer_all_consumed_resets(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  assert_true(b.make_room(start, end));
  fill(b, end, pattern(kInitial));
  start = end;  // the parser took everything
  assert_true(b.make_room(start, end));
  assert_int_equal(start, 0);
  assert_int_equal(end, 0);
  assert_int_equal(b.size(), kInitial);  // no growth needed
}

void test_buffer_compacts_before_growing(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  assert_true(b.make_room(start, end));
  const std::string full = pattern(kInitial);
  fill(b, end, full);
  start = 1000;
  assert_true(b.make_room(start, end));
  assert_int_equal(b.size(), kInitial);
  assert_int_equal(start, 0);
  assert_int_equal(end, kInitial - 1000);
  assert_true(unconsumed(b, start, end) == full.substr(1000));
}

void test_buffer_grows_by_doubling_up_to_max(void**) {
  const std::size_t max = 3 * kInitial + 123;  // not a power of two
  ReadBuffer b(max);
  std::size_t start = 0, end = 0;
  std::string all;
  std::vector<std::size_t> sizes;
  while (b.make_room(start, end)) {
    if (sizes.empty() || sizes.back() != b.size()) sizes.push_back(b.size());
    const std::string more = pattern(b.size() - end, all.size());
    fill(b, end, more);
    all += more;
    assert_true(unconsumed(b, start, end) == all);
  }
  const std::vector<std::size_t> want = {kInitial, 2 * kInitial, max};
  assert_true(sizes == want);
  assert_int_equal(b.size(), max);
  assert_int_equal(end, max);
  assert_int_equal(start, 0);
  // Refused: the bytes are all still there.
  assert_true(unconsumed(b, start, end) == all);
  assert_false(b.make_room(start, end));
  assert_int_equal(b.size(), max);
}

void test_buffer_full_then_consumed_compacts_at_max(void**) {
  ReadBuffer b(2 * kInitial);
  std::size_t start = 0, end = 0;
  std::string all;
  while (b.make_room(start, end)) {
    const std::string more = pattern(b.size() - end, all.size());
    fill(b, end, more);
    all += more;
  }
  assert_int_equal(b.size(), 2 * kInitial);
  start = 1;  // one byte consumed is enough to make room again
  assert_true(b.make_room(start, end));
  assert_int_equal(start, 0);
  assert_int_equal(end, 2 * kInitial - 1);
  assert_true(unconsumed(b, start, end) == all.substr(1));
  assert_int_equal(b.size(), 2 * kInitial);
}

void test_buffer_growth_keeps_unconsumed_bytes(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  assert_true(b.make_room(start, end));
  const std::string full = pattern(kInitial, 5);
  fill(b, end, full);
  // start == 0 and full: the only way is to grow, bytes preserved.
  assert_true(b.make_room(start, end));
  assert_int_equal(b.size(), 2 * kInitial);
  assert_int_equal(start, 0);
  assert_int_equal(end, kInitial);
  assert_true(unconsumed(b, start, end) == full);
}

void test_append_allocates_lazily(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  const std::string s = "GET / HTTP/1.1\r\n";
  b.append(s.data(), s.size(), start, end);
  assert_int_equal(b.size(), kInitial);
  assert_int_equal(start, 0);
  assert_int_equal(end, s.size());
  assert_true(unconsumed(b, start, end) == s);
}

void test_append_compacts_when_that_is_enough(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  const std::string head = pattern(kInitial - 10);
  b.append(head.data(), head.size(), start, end);
  start = 100;
  const std::string tail = pattern(50, 7);
  b.append(tail.data(), tail.size(), start, end);
  assert_int_equal(b.size(), kInitial);
  assert_int_equal(start, 0);
  assert_int_equal(end, kInitial - 10 - 100 + 50);
  assert_true(unconsumed(b, start, end) == head.substr(100) + tail);
}

void test_append_grows_past_max(void**) {
  ReadBuffer b(kInitial);  // max == kInitial
  std::size_t start = 0, end = 0;
  const std::string first = pattern(kInitial - 1);
  b.append(first.data(), first.size(), start, end);
  start = 3;
  // Compaction frees 3 bytes, not enough for 5000: the buffer grows, past
  // max, and keeps everything unconsumed.
  const std::string big = pattern(5000, 11);
  b.append(big.data(), big.size(), start, end);
  assert_true(b.size() > kInitial);
  assert_true(b.size() >= end);
  assert_int_equal(start, 0);
  assert_int_equal(end, kInitial - 1 - 3 + 5000);
  assert_true(unconsumed(b, start, end) == first.substr(3) + big);

  // Above max, make_room only compacts; with nothing consumed it refuses
  // once the (grown) capacity is full.
  const std::size_t cap = b.size();
  while (end < cap) {
    assert_true(b.make_room(start, end));
    const std::string more = pattern(cap - end, 1);
    fill(b, end, more);
  }
  assert_false(b.make_room(start, end));
  assert_int_equal(b.size(), cap);
}

void test_append_all_consumed_resets(void**) {
  ReadBuffer b(64 * 1024);
  std::size_t start = 0, end = 0;
  const std::string s = pattern(kInitial);
  b.append(s.data(), s.size(), start, end);
  start = end;
  const std::string t = pattern(kInitial, 3);
  b.append(t.data(), t.size(), start, end);
  assert_int_equal(b.size(), kInitial);  // reused from offset 0, no growth
  assert_int_equal(start, 0);
  assert_int_equal(end, kInitial);
  assert_true(unconsumed(b, start, end) == t);
}

void test_append_many_small_pieces(void**) {
  // A uwsgi head arriving a few bytes at a time, consumed in bursts.
  ReadBuffer b(8 * 1024);
  std::size_t start = 0, end = 0;
  std::string expect;
  for (std::size_t i = 0; i < 4000; ++i) {
    const std::string piece = pattern(1 + i % 13, i);
    b.append(piece.data(), piece.size(), start, end);
    expect += piece;
    if (i % 7 == 6) {
      const std::size_t take = (end - start) / 2;
      start += take;
      expect.erase(0, take);
    }
    assert_true(end <= b.size());
    assert_true(unconsumed(b, start, end) == expect);
  }
}

// --- TaskQueue ------------------------------------------------------------

struct Log {
  std::vector<int> ran;
};

struct Item {
  Task task;
  int id = 0;
  Log* log = nullptr;
  TaskQueue* queue = nullptr;
  Item* repost = nullptr;  // posted from the callback, if set
  bool self_repost = false;
};

void record(Task* t) {
  Item* it = static_cast<Item*>(t->data);
  it->log->ran.push_back(it->id);
  assert_false(t->queued);  // flag reset before the callback runs
  if (it->repost) it->queue->push(it->repost->task);
  if (it->self_repost) {
    it->self_repost = false;
    it->queue->push(*t);
  }
}

void init(Item& it, int id, Log& log, TaskQueue& q) {
  it.task.cb = record;
  it.task.data = &it;
  it.id = id;
  it.log = &log;
  it.queue = &q;
}

void test_queue_fifo(void**) {
  TaskQueue q;
  Log log;
  Item items[5];
  for (int i = 0; i < 5; ++i) init(items[i], i, log, q);
  assert_true(q.empty());
  assert_true(q.push(items[3].task));  // empty before: schedule a drain
  assert_false(q.empty());
  assert_false(q.push(items[1].task));
  assert_false(q.push(items[4].task));
  assert_false(q.push(items[0].task));
  assert_false(q.push(items[2].task));
  q.drain();
  assert_true(q.empty());
  assert_true((log.ran == std::vector<int>{3, 1, 4, 0, 2}));
  for (Item& it : items) {
    assert_false(it.task.queued);
    assert_null(it.task.next);
  }
}

void test_queue_post_twice_runs_once(void**) {
  TaskQueue q;
  Log log;
  Item a, b;
  init(a, 1, log, q);
  init(b, 2, log, q);
  assert_true(q.push(a.task));
  assert_false(q.push(b.task));
  assert_false(q.push(a.task));  // already queued: no-op, keeps its place
  assert_true(a.task.queued);
  q.drain();
  assert_true((log.ran == std::vector<int>{1, 2}));
  // Flags reset: both can be posted again, and the first push reports empty.
  assert_true(q.push(b.task));
  assert_false(q.push(a.task));
  q.drain();
  assert_true((log.ran == std::vector<int>{1, 2, 2, 1}));
}

void test_queue_drain_empty(void**) {
  TaskQueue q;
  q.drain();
  assert_true(q.empty());
}

void test_queue_posts_during_drain_wait(void**) {
  TaskQueue q;
  Log log;
  Item a, b, c;
  init(a, 1, log, q);
  init(b, 2, log, q);
  init(c, 3, log, q);
  a.self_repost = true;  // a core that keeps yielding
  a.repost = &c;         // and wakes another one
  assert_true(q.push(a.task));
  assert_false(q.push(b.task));
  q.drain();
  // Only what was queued before the drain ran.
  assert_true((log.ran == std::vector<int>{1, 2}));
  assert_false(q.empty());
  assert_true(c.task.queued);
  assert_true(a.task.queued);
  a.repost = nullptr;
  q.drain();
  assert_true((log.ran == std::vector<int>{1, 2, 3, 1}));
  assert_true(q.empty());
}

void test_queue_first_post_during_drain_reports_empty(void**) {
  // The engine's drain hook is one-shot in some engines (add_callback): a
  // post made from inside drain() must ask for another drain.
  TaskQueue q;
  Log log;
  Item a, b;
  init(a, 1, log, q);
  init(b, 2, log, q);
  struct Probe {
    static void cb(Task* t) {
      Item* it = static_cast<Item*>(t->data);
      it->log->ran.push_back(it->queue->push(it->repost->task) ? 100 : 0);
    }
  };
  a.task.cb = Probe::cb;
  a.repost = &b;
  q.push(a.task);
  q.drain();
  assert_true((log.ran == std::vector<int>{100}));
  q.drain();
  assert_true((log.ran == std::vector<int>{100, 2}));
}

void test_queue_repost_of_pending_task_during_drain(void**) {
  // a posts b while b is still waiting in the same batch: b runs once, in
  // this drain, and nothing is left for the next.
  TaskQueue q;
  Log log;
  Item a, b, c;
  init(a, 1, log, q);
  init(b, 2, log, q);
  init(c, 3, log, q);
  a.repost = &b;
  q.push(a.task);
  q.push(b.task);
  q.push(c.task);
  q.drain();
  assert_true((log.ran == std::vector<int>{1, 2, 3}));
  assert_true(q.empty());
  for (Item* it : {&a, &b, &c}) assert_false(it->task.queued);
}

void test_queue_repost_of_finished_task_during_drain(void**) {
  // c posts a, which already ran in this drain: it runs again next time.
  TaskQueue q;
  Log log;
  Item a, b, c;
  init(a, 1, log, q);
  init(b, 2, log, q);
  init(c, 3, log, q);
  c.repost = &a;
  q.push(a.task);
  q.push(b.task);
  q.push(c.task);
  q.drain();
  assert_true((log.ran == std::vector<int>{1, 2, 3}));
  assert_false(q.empty());
  c.repost = nullptr;
  q.drain();
  assert_true((log.ran == std::vector<int>{1, 2, 3, 1}));
  assert_true(q.empty());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buffer_is_lazy),
      cmocka_unit_test(test_buffer_max_below_initial_is_raised),
      cmocka_unit_test(test_buffer_room_left_is_not_touched),
      cmocka_unit_test(test_buffer_all_consumed_resets),
      cmocka_unit_test(test_buffer_compacts_before_growing),
      cmocka_unit_test(test_buffer_grows_by_doubling_up_to_max),
      cmocka_unit_test(test_buffer_full_then_consumed_compacts_at_max),
      cmocka_unit_test(test_buffer_growth_keeps_unconsumed_bytes),
      cmocka_unit_test(test_append_allocates_lazily),
      cmocka_unit_test(test_append_compacts_when_that_is_enough),
      cmocka_unit_test(test_append_grows_past_max),
      cmocka_unit_test(test_append_all_consumed_resets),
      cmocka_unit_test(test_append_many_small_pieces),
      cmocka_unit_test(test_queue_fifo),
      cmocka_unit_test(test_queue_post_twice_runs_once),
      cmocka_unit_test(test_queue_drain_empty),
      cmocka_unit_test(test_queue_posts_during_drain_wait),
      cmocka_unit_test(test_queue_first_post_during_drain_reports_empty),
      cmocka_unit_test(test_queue_repost_of_pending_task_during_drain),
      cmocka_unit_test(test_queue_repost_of_finished_task_during_drain),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
