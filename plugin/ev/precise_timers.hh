// One-shot timers on a timerfd, for the libev engine.
//
// libev hands epoll its timeout in whole milliseconds, rounded up, so its
// timers fire up to a millisecond late and, under load, about one on
// average: a spindle.sleep(0.1) took 101 ms. These timers keep their own
// min-heap of nanosecond deadlines and arm one timerfd (absolute,
// CLOCK_MONOTONIC) for the earliest; libev only watches that fd.
//
// Re-arming costs a timerfd_settime only when a new deadline is earlier
// than the armed one. Stopping never re-arms: the fd may then fire early
// for nothing, which costs one wake-up and no correctness.
#pragma once

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "core/loop.hh"

namespace spindle::ev {

class PreciseTimers {
 public:
  struct Slot {
    std::int64_t at_ns;
    std::size_t index;  // in heap_
  };
  static_assert(sizeof(Slot) <= core::kEngineSlot);

  PreciseTimers() : fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {}
  ~PreciseTimers() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

  static std::int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }

  void start(core::Timer& t, double seconds) {
    if (t.armed) stop(t);
    t.initialised = true;
    Slot* s = slot(t);
    s->at_ns = now_ns() + to_ns(seconds);
    s->index = heap_.size();
    heap_.push_back(&t);
    sift_up(s->index);
    t.armed = true;
    if (s->at_ns < armed_ns_) arm(s->at_ns);
  }

  void stop(core::Timer& t) {
    if (!t.armed) return;
    remove(slot(t)->index);
    t.armed = false;
  }

  // The timerfd is readable: runs every timer that is due, in deadline
  // order. Callbacks may start and stop timers, this one included.
  void expire() {
    std::uint64_t ticks;
    ssize_t ignored = read(fd_, &ticks, sizeof ticks);
    (void)ignored;
    armed_ns_ = kNever;
    std::int64_t now = now_ns();
    while (!heap_.empty() && slot(*heap_[0])->at_ns <= now) {
      core::Timer* t = heap_[0];
      remove(0);
      t->armed = false;
      t->cb(t);
    }
    if (!heap_.empty()) arm(slot(*heap_[0])->at_ns);
  }

 private:
  static constexpr std::int64_t kNever = INT64_MAX;
  // Longer is "never" in practice, and keeps the deadline far from overflow
  // (an infinite or huge duration must not wrap into the past).
  static constexpr double kMaxSeconds = 1e9;

  static std::int64_t to_ns(double seconds) {
    if (!(seconds > 0)) return 0;  // negative or NaN: due now
    if (seconds > kMaxSeconds) seconds = kMaxSeconds;
    return static_cast<std::int64_t>(seconds * 1e9);
  }

  static Slot* slot(core::Timer& t) { return reinterpret_cast<Slot*>(t.engine); }
  std::int64_t at(std::size_t i) { return slot(*heap_[i])->at_ns; }

  void arm(std::int64_t at_ns) {
    itimerspec its{};
    its.it_value.tv_sec = at_ns / 1000000000;
    its.it_value.tv_nsec = at_ns % 1000000000;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    if (timerfd_settime(fd_, TFD_TIMER_ABSTIME, &its, nullptr) == 0) armed_ns_ = at_ns;
  }

  void place(std::size_t i, core::Timer* t) {
    heap_[i] = t;
    slot(*t)->index = i;
  }

  void sift_up(std::size_t i) {
    core::Timer* t = heap_[i];
    std::int64_t key = slot(*t)->at_ns;
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (at(parent) <= key) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, t);
  }

  void sift_down(std::size_t i) {
    core::Timer* t = heap_[i];
    std::int64_t key = slot(*t)->at_ns;
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && at(child + 1) < at(child)) ++child;
      if (at(child) >= key) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, t);
  }

  void remove(std::size_t i) {
    core::Timer* last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    place(i, last);
    sift_down(i);
    sift_up(slot(*heap_[i])->index);
  }

  int fd_;
  std::vector<core::Timer*> heap_;
  std::int64_t armed_ns_ = kNever;
};

}  // namespace spindle::ev
