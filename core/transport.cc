// The transport of a connection: fd, watcher, idle timer, input buffer, and
// the parking reads and writes of the core that serves it. See transport.hh.
#include "core/transport.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.hh"
#include "core/park.hh"
#include "core/protocol.hh"
#include "core/stats.hh"
#include "core/uwsgi_codec.hh"
#include "core/worker.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {

// Room for a request head (the parser enforces --buffer-size) or a whole
// uwsgi vars block, which must be contiguous.
std::size_t buffer_capacity(const Config& cfg) {
  std::size_t want = static_cast<std::size_t>(cfg.buffer_size) + uwsgi::kHeaderSize;
  return want < 16384 ? 16384 : want;
}

}  // namespace

Transport::Transport(Worker& worker, const Listener& listener, int fd, const sockaddr_storage& peer)
    : in(buffer_capacity(worker.cfg())), worker_(worker), listener_(listener), fd_(fd) {
  char addr[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (peer.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&peer);
    inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
    port = ntohs(sin->sin_port);
  } else if (peer.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof addr);
    port = ntohs(sin6->sin6_port);
  }
  peer_addr_ = addr;
  peer_port_ = port ? std::to_string(port) : "";
  io_.cb = on_io;
  io_.data = this;
  timer_.cb = on_timer;
  timer_.data = this;
  worker_.add(this);
}

Transport::~Transport() {
  // close() released the fd; a transport destroyed without it (worker exit)
  // releases it here.
  if (!closing_) {
    Loop& loop = worker_.loop();
    loop.io_close(io_);
    if (timer_.armed) loop.timer_stop(timer_);
    ::close(fd_);
  }
}

void Transport::start() {
  proto_ = make_protocol(listener_.proto, *this);
  wait_for_request();
  proto_->on_readable();
}

void Transport::close() {
  if (closing_) return;
  closing_ = true;
  Loop& loop = worker_.loop();
  loop.io_close(io_);
  if (timer_.armed) loop.timer_stop(timer_);
  if (reset_) {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  ::close(fd_);
  fd_ = -1;
  worker_.retire(this);
}

void Transport::close_after_answer(bool more_input) {
  if (closing_ || lingering_) return;
  if (reset_ || upgraded_ || (!more_input && !bytes_pending_) || ::shutdown(fd_, SHUT_WR) < 0) {
    close();
    return;
  }
  lingering_ = true;
  busy_ = writing_ = reading_body_ = false;
  grace_ = false;
  Loop& loop = worker_.loop();
  loop.io_set(io_, fd_, kRead);
  idle_deadline_ = Deadline::after(kLinger);
  if (timer_.armed) loop.timer_stop(timer_);
  loop.timer_start(timer_, kLinger);
}

// Lingering: input is dropped; the client's own close (or an error) ends it.
void Transport::linger_read() {
  for (int i = 0; i < 16; ++i) {
    ssize_t r = ::read(fd_, scratch(), kScratch);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    break;
  }
  close();
}

void Transport::wait_writable() {
  busy_ = false;
  writing_ = true;
  worker_.loop().io_set(io_, fd_, kWrite);
  idle_deadline_ = Deadline::after(worker_.cfg().socket_timeout);
  if (!timer_.armed) worker_.loop().timer_start(timer_, worker_.cfg().socket_timeout);
}

void Transport::wait_for_body(double seconds) {
  reading_body_ = true;
  idle_deadline_ = Deadline::after(seconds);
  // The lazy timer may be set for the later idle deadline: bring it forward.
  Loop& loop = worker_.loop();
  if (timer_.armed) loop.timer_stop(timer_);
  loop.timer_start(timer_, seconds);
}

void Transport::wait_for_request() {
  busy_ = false;
  writing_ = false;
  reading_body_ = false;
  worker_.loop().io_set(io_, fd_, kRead);
  // The timer is lazy: arming it anew for every request would cost a heap
  // operation per request; instead the deadline moves and the timer, when
  // it fires, checks it.
  idle_deadline_ = Deadline::after(worker_.cfg().http_timeout);
  if (!timer_.armed) worker_.loop().timer_start(timer_, worker_.cfg().http_timeout);
  grace_ = false;
  if (worker_.draining()) drain();  // a keep-alive answer that began before the stop
}

void Transport::drain() {
  if (upgraded_) {
    upgraded_->on_drain();
    return;
  }
  // Waiting for a request with none of it read yet: the only state in which
  // a stop would otherwise close the connection under a client that may
  // have sent its request already. The read watcher stays armed (it is
  // level-triggered), so bytes in the socket are read on this loop turn.
  if (busy_ || writing_ || reading_body_ || closing_ || grace_ || lingering_ || upgraded_ ||
      since_request > 0)
    return;
  grace_ = true;
  double grace = std::min(kDrainGrace, worker_.cfg().reload_mercy);
  idle_deadline_ = Deadline::after(grace);
  Loop& loop = worker_.loop();
  if (timer_.armed) loop.timer_stop(timer_);
  loop.timer_start(timer_, grace);
}

void Transport::take_over(Upgraded* u) {
  upgraded_ = u;
  Loop& loop = worker_.loop();
  if (u && timer_.armed) loop.timer_stop(timer_);
  loop.io_set(io_, fd_, kNone);
  bytes_pending_ = false;
}

void Transport::watch(int interest) {
  worker_.loop().io_set(io_, fd_, interest);  // engines ignore an unchanged interest
}

void Transport::on_io(IoWatcher* w, int revents) {
  auto* t = static_cast<Transport*>(w->data);
  if (t->closing_) return;
  if (t->upgraded_) {
    t->upgraded_->on_events(revents);
    return;
  }
  if (t->lingering_) {
    t->linger_read();
    return;
  }
  if (t->writing_) {
    t->proto_->on_writable();
    return;
  }
  if (t->busy_) {
    // Pipelined bytes while a core serves this connection: the core reads
    // them when it is done (and a drain must not take it for idle).
    t->bytes_pending_ = true;
    t->worker_.loop().io_set(t->io_, t->fd_, kNone);
    return;
  }
  t->bytes_pending_ = false;
  t->proto_->on_readable();
}

void Transport::on_timer(Timer* tm) {
  auto* t = static_cast<Transport*>(tm->data);
  Loop& loop = t->worker_.loop();
  if (t->upgraded_) return;  // the upgraded connection keeps its own time
  if (t->lingering_) {
    if (!t->idle_deadline_.passed()) {
      loop.timer_start(t->timer_, t->idle_deadline_.seconds_left());
      return;
    }
    t->close();
    return;
  }
  if (t->busy_) {  // a core serves it: not idle
    loop.timer_start(t->timer_, t->worker_.cfg().http_timeout);
    return;
  }
  if (!t->idle_deadline_.passed()) {
    loop.timer_start(t->timer_, t->idle_deadline_.seconds_left());
    return;
  }
  if (t->grace_ && t->since_request > 0) {
    // A request began within the drain's grace: its head gets the usual
    // time (the worker's mercy bounds it too).
    t->grace_ = false;
    t->idle_deadline_ = Deadline::after(t->worker_.cfg().http_timeout);
    loop.timer_start(t->timer_, t->worker_.cfg().http_timeout);
    return;
  }
  if (t->reading_body_) {
    t->reading_body_ = false;
    t->proto_->fail(408, "request body timeout (--body-timeout)");
    return;
  }
  if (t->writing_) {
    log(Level::kInfo, "%s:%s timeout writing a static file; closing", t->peer_addr_.c_str(),
        t->peer_port_.c_str());
  } else if (t->since_request > 0) {
    log(Level::kInfo, "%s:%s request head timeout; closing", t->peer_addr_.c_str(),
        t->peer_port_.c_str());
  }
  t->close();
}

char* Transport::scratch() {
  alignas(64) static thread_local char buf[kScratch];  // one per serving thread
  return buf;
}

void Transport::send_now(const std::string& bytes) {
  ssize_t ignored = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
}

// --- core side
// ----------------------------------------------------------------

bool Transport::wait(int interest, std::string* err) {
  double timeout = worker_.cfg().socket_timeout;
  const bool budget = interest == kRead && body_budget_ >= 0;
  if (budget && body_budget_ < timeout) timeout = body_budget_;
  std::int64_t before = budget ? monotonic_ms() : 0;
  Wake why = timeout > 0 ? park(io_, fd_, interest, Deadline::after(timeout)) : Wake::kTimeout;
  if (budget) {
    body_budget_ -= static_cast<double>(monotonic_ms() - before) / 1000.0;
    if (why == Wake::kTimeout && timeout < worker_.cfg().socket_timeout) {
      body_budget_ = 0;
      body_timed_out_ = true;
      *err = "request body timeout (--body-timeout)";
      return false;
    }
  }
  if (why == Wake::kReady) return true;
  *err = why == Wake::kCancelled ? "cancelled"
         : interest == kRead     ? "timeout reading the request body"
                                 : "timeout writing the response";
  return false;
}

ssize_t Transport::read_some(char* buf, std::size_t n, std::string* err) {
  for (;;) {
    ssize_t r = ::read(fd_, buf, n);
    if (r > 0) return r;
    if (r == 0) {
      *err = "client closed the connection";
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      *err = std::string("read: ") + strerror(errno);
      stats::io_error(current_core(), false);
      return -1;
    }
    if (!wait(kRead, err)) {
      stats::io_error(current_core(), false);
      return -1;
    }
  }
}

bool Transport::send(iovec* iov, int cnt, std::string* err) {
  msghdr msg{};
  for (;;) {
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(cnt);
    ssize_t r = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (r >= 0) {
      written_ += static_cast<std::uint64_t>(r);
      std::size_t left = static_cast<std::size_t>(r);
      while (cnt > 0 && left >= iov->iov_len) {
        left -= iov->iov_len;
        ++iov;
        --cnt;
      }
      if (cnt == 0) return true;
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      *err = std::string("write: ") + strerror(errno);
      return false;
    }
    // A slow reader parks only this core.
    if (!wait(kWrite, err)) return false;
  }
}

bool Transport::send_file(int fd, off_t* offset, std::uint64_t count, std::uint64_t* sent,
                          std::string* err) {
  while (count > 0) {
    std::size_t step = count > (1u << 30) ? (1u << 30) : static_cast<std::size_t>(count);
    ssize_t r = ::sendfile(fd_, fd, offset, step);
    if (r > 0) {
      written_ += static_cast<std::uint64_t>(r);
      count -= static_cast<std::uint64_t>(r);
      *sent += static_cast<std::uint64_t>(r);
      continue;
    }
    if (r == 0) {
      *err = "sendfile: file shorter than announced";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      *err = std::string("sendfile: ") + strerror(errno);
      return false;
    }
    if (!wait(kWrite, err)) return false;
  }
  return true;
}

}  // namespace spindle::core
