// A connection's input buffer: allocated on first use, small at first and
// grown only when a request head needs it, so that thousands of idle or
// parked connections cost little memory. Bytes [start, end) are unconsumed.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace spindle::core {

class ReadBuffer {
 public:
  static constexpr std::size_t kInitial = 4096;

  explicit ReadBuffer(std::size_t max) : max_(max < kInitial ? kInitial : max) {}
  ~ReadBuffer() { std::free(data_); }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  char* data() { return data_; }
  std::size_t size() const { return cap_; }

  // Makes room after `end`: forgets consumed bytes, moves the rest to the
  // front, or grows (up to max). False when unconsumed bytes fill max.
  bool make_room(std::size_t& start, std::size_t& end) {
    if (start == end) start = end = 0;
    if (end < cap_) return true;
    if (start > 0) {
      std::memmove(data_, data_ + start, end - start);
      end -= start;
      start = 0;
      return true;
    }
    if (cap_ >= max_) return false;
    std::size_t grown = cap_ ? (cap_ * 2 < max_ ? cap_ * 2 : max_) : kInitial;
    // Not zeroed on purpose: only the pages bytes land in become resident.
    char* p = static_cast<char*>(std::realloc(data_, grown));
    if (!p) throw std::bad_alloc();
    data_ = p;
    cap_ = grown;
    return true;
  }

 private:
  char* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t max_;
};

}  // namespace spindle::core
