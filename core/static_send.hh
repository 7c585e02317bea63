// Sending a static file's answer from the loop, without a core.
//
// StaticSend holds one answer in flight: the head (built from the
// StaticAnswer's fields), then the file's byte range through sendfile(2).
// pump() writes what the socket takes without blocking and says whether it
// is done, must wait until the fd is writable, or failed (the peer left).
// The owner (the connection's protocol) arms its write watcher on kAgain and
// calls pump() again from the callback.
//
// Lifetime: owns the file descriptor of the answer until it is destroyed or
// reset; never touches the socket outside pump().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/static_files.hh"

namespace spindle::core {

class StaticSend {
 public:
  StaticSend() = default;
  ~StaticSend() { reset(); }
  StaticSend(const StaticSend&) = delete;
  StaticSend& operator=(const StaticSend&) = delete;

  // Takes the answer (and its fd). keep_alive picks the Connection header;
  // announce_keep_alive says it aloud (HTTP/1.0); head_only: a HEAD request.
  void begin(StaticAnswer&& a, bool keep_alive, bool announce_keep_alive, bool head_only);

  enum Result { kDone, kAgain, kError };
  Result pump(int sock);

  bool active() const { return active_; }
  int status() const { return status_; }
  std::uint64_t body_sent() const { return body_sent_; }
  std::string_view head() const { return head_; }  // for the access log
  void reset();

 private:
  std::string head_;
  std::size_t head_off_ = 0;
  int file_ = -1;
  off_t offset_ = 0;
  std::uint64_t left_ = 0;
  std::uint64_t body_sent_ = 0;
  int status_ = 0;
  bool active_ = false;
};

}  // namespace spindle::core
