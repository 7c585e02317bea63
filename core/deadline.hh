// A deadline: a point on the monotonic clock by which something must have
// happened, or none. "No deadline" is a value of the type (never -1 or 0 in
// a number that also means a time), and the clock is always the same one.
//
// Relative durations still cross the loop seam (Loop::timer_start takes
// seconds); a Deadline turns into one with seconds_left() where it arms a
// timer.
#pragma once

#include <time.h>

#include <cstdint>
#include <limits>

namespace spindle::core {

class Deadline {
 public:
  // No deadline.
  constexpr Deadline() = default;
  static constexpr Deadline none() { return Deadline(); }

  // `seconds` from now (negative counts as now).
  static Deadline after(double seconds) {
    if (seconds < 0) seconds = 0;
    double ns = seconds * 1e9;
    if (ns >= static_cast<double>(kNone - now_ns())) return Deadline(kNone - 1);
    return Deadline(now_ns() + static_cast<std::int64_t>(ns));
  }

  bool is_none() const { return ns_ == kNone; }
  bool passed() const { return !is_none() && now_ns() >= ns_; }

  // Seconds until the deadline (0 once it passed); only for a deadline that
  // is not none.
  double seconds_left() const {
    std::int64_t left = ns_ - now_ns();
    return left > 0 ? static_cast<double>(left) * 1e-9 : 0.0;
  }

  friend bool operator==(Deadline a, Deadline b) { return a.ns_ == b.ns_; }

  // The monotonic clock, in nanoseconds.
  static std::int64_t now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }

 private:
  static constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
  explicit constexpr Deadline(std::int64_t ns) : ns_(ns) {}
  std::int64_t ns_ = kNone;
};

}  // namespace spindle::core
