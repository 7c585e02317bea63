// A connection's input buffer, for the bytes the parser has not taken yet:
// a head that arrived in pieces (uwsgi), the next pipelined request. HTTP
// reads go through a worker-wide scratch buffer first, so most connections
// never allocate one, and thousands of idle or parked connections cost
// little memory. Bytes [start, end) are unconsumed.
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
    grow(cap_ ? (cap_ * 2 < max_ ? cap_ * 2 : max_) : kInitial);
    return true;
  }

  // Gives the memory back when nothing is pending (a connection going idle
  // keeps no buffer, however large its last pipelined burst made it).
  void release_if_empty(std::size_t& start, std::size_t& end) {
    if (start != end || !data_) return;
    std::free(data_);
    data_ = nullptr;
    cap_ = 0;
    start = end = 0;
  }

  // Keeps n more bytes (whatever max says: the caller already bounded them).
  void append(const char* p, std::size_t n, std::size_t& start, std::size_t& end) {
    if (start == end) start = end = 0;
    if (cap_ - end < n && start > 0) {
      std::memmove(data_, data_ + start, end - start);
      end -= start;
      start = 0;
    }
    if (cap_ - end < n) {
      std::size_t want = cap_ ? cap_ : kInitial;
      while (want - end < n) want *= 2;
      grow(want);
    }
    std::memcpy(data_ + end, p, n);
    end += n;
  }

 private:
  void grow(std::size_t grown) {
    // Not zeroed on purpose: only the pages bytes land in become resident.
    char* p = static_cast<char*>(std::realloc(data_, grown));
    if (!p) throw std::bad_alloc();
    data_ = p;
    cap_ = grown;
  }

  char* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t max_;
};

}  // namespace spindle::core
