// The loop side of a connection: read until a request head is complete,
// reject bad input, hand the request to a core. See connection.hh.
#include "core/connection.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hh"
#include "core/text.hh"
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

Connection::Connection(Worker& worker, const Listener& listener, int fd,
                       const sockaddr_storage& peer)
    : worker_(worker), listener_(listener), fd_(fd), in_(buffer_capacity(worker.cfg())) {
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
  parser_.set_limits({static_cast<std::size_t>(worker.cfg().buffer_size), worker.cfg().limit_post});
  io_.cb = on_io;
  io_.data = this;
  timer_.cb = on_timer;
  timer_.data = this;
  worker_.add(this);
}

Connection::~Connection() {
  Loop& loop = worker_.loop();
  loop.io_close(io_);
  if (timer_.armed) loop.timer_stop(timer_);
  ::close(fd_);
  worker_.remove(this);
}

void Connection::close_now() { delete this; }

bool Connection::idle() const {
  return state_ == State::kReading && since_request_ == 0 && !bytes_pending_;
}

void Connection::start() {
  wait_for_request();
  on_readable();
}

void Connection::wait_for_request() {
  state_ = State::kReading;
  io_.cb = on_io;
  io_.data = this;
  Loop& loop = worker_.loop();
  loop.io_set(io_, fd_, kRead);
  // The timer is lazy: arming it anew for every request would cost a heap
  // operation (a Python call under Tornado) per request; instead the
  // deadline moves and the timer, when it fires, checks it.
  idle_deadline_ms_ = monotonic_ms() + static_cast<std::int64_t>(worker_.cfg().http_timeout * 1000);
  if (!timer_.armed) loop.timer_start(timer_, worker_.cfg().http_timeout);
}

void Connection::on_io(IoWatcher* w, int) {
  auto* c = static_cast<Connection*>(w->data);
  if (c->state_ != State::kReading) {
    // Pipelined bytes while a core serves this connection: the core reads
    // them when it is done (and a drain must not take it for idle).
    c->bytes_pending_ = true;
    c->worker_.loop().io_set(c->io_, c->fd_, kNone);
    return;
  }
  c->on_readable();
}

void Connection::on_timer(Timer* t) {
  auto* c = static_cast<Connection*>(t->data);
  Loop& loop = c->worker_.loop();
  if (c->state_ != State::kReading) {  // a core serves it: not idle
    loop.timer_start(c->timer_, c->worker_.cfg().http_timeout);
    return;
  }
  std::int64_t left = c->idle_deadline_ms_ - monotonic_ms();
  if (left > 0) {
    loop.timer_start(c->timer_, static_cast<double>(left) / 1000.0);
    return;
  }
  if (c->since_request_ > 0)
    log(Level::kInfo, "%s:%s request head timeout; closing", c->peer_addr_.c_str(),
        c->peer_port_.c_str());
  c->close_now();
}

char* Connection::scratch() {
  alignas(64) static char buf[kScratch];
  return buf;
}

long Connection::feed_scratch(const char* p, std::size_t n) {
  long used = parser_.feed(p, n, &body_);
  if (used >= 0 && static_cast<std::size_t>(used) < n)
    in_.append(p + used, n - static_cast<std::size_t>(used), in_start_, in_end_);
  return used;
}

void Connection::on_readable() {
  const bool http = listener_.proto == Proto::kHttp;
  bytes_pending_ = false;
  for (;;) {
    // HTTP with nothing pending reads into the scratch buffer: the parser
    // copies out what it needs, so the connection keeps no buffer at all.
    const bool via_scratch = http && in_start_ == in_end_;
    char* dst = scratch();
    std::size_t room = kScratch;
    if (!via_scratch) {
      if (!in_.make_room(in_start_, in_end_)) {
        reject(http ? 431 : 413, "request head too large");
        return;
      }
      dst = in_.data() + in_end_;
      room = in_.size() - in_end_;
    }
    ssize_t r = ::read(fd_, dst, room);
    if (r > 0) {
      since_request_ += static_cast<std::size_t>(r);
      if (http) {
        long n;
        if (via_scratch) {
          n = feed_scratch(dst, static_cast<std::size_t>(r));
        } else {
          in_end_ += static_cast<std::size_t>(r);
          n = parser_.feed(in_.data() + in_start_, in_end_ - in_start_, &body_);
          if (n > 0) in_start_ += static_cast<std::size_t>(n);
        }
        if (n < 0) {
          reject(parser_.error_status(), parser_.error_reason());
          return;
        }
        if (!parser_.head_complete()) continue;
      } else {
        in_end_ += static_cast<std::size_t>(r);
        Parse got = parse_uwsgi();
        if (got == Parse::kClosed) return;
        if (got == Parse::kNeedMore) continue;
      }
      // A whole head: no more reading on the loop side until it is served.
      // The read watcher stays armed: most requests end without parking,
      // and re-arming the same interest afterwards would cost a syscall.
      // Bytes that arrive meanwhile disarm it (on_io).
      state_ = State::kQueued;
      worker_.scheduler().submit(this);  // may serve and destroy this
      return;
    }
    if (r == 0) {
      close_now();
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) close_now();
    return;
  }
}

// uwsgi: kReady when a whole vars block is in; on bad input rejects, which
// destroys this (kClosed).
Connection::Parse Connection::parse_uwsgi() {
  uwsgi::PacketHeader h;
  const char* p = in_.data() + in_start_;
  std::size_t avail = in_end_ - in_start_;
  if (uwsgi::parse_header(p, avail, &h) != uwsgi::Status::kOk) return Parse::kNeedMore;
  if (h.size > worker_.cfg().buffer_size) {
    reject(413, "uwsgi vars block larger than --buffer-size");
    return Parse::kClosed;
  }
  if (avail < uwsgi::kHeaderSize + h.size) return Parse::kNeedMore;
  static thread_local std::vector<Var> raw;
  raw.clear();
  if (h.modifier1 != 0 ||
      uwsgi::parse_vars(p + uwsgi::kHeaderSize, h.size, &raw) != uwsgi::Status::kOk) {
    reject(400, h.modifier1 != 0 ? "unsupported uwsgi modifier" : "malformed uwsgi packet");
    return Parse::kClosed;
  }
  vars_.clear();
  uwsgi_body_left_ = 0;
  // What PEP 3333 requires and a frontend may leave out (nginx's
  // uwsgi_params has no SCRIPT_NAME), filled in below.
  bool has_script = false, has_path = false, has_query = false, has_proto = false;
  bool has_name = false, has_port = false;
  std::string_view uri;
  for (const Var& v : raw) {
    // nginx passes every request header as HTTP_*, Content-Type and
    // Content-Length too; the environ carries those without the prefix.
    if (v.name == "HTTP_CONTENT_TYPE" || v.name == "HTTP_CONTENT_LENGTH") continue;
    vars_.add(v.name, v.value);
    has_script |= v.name == "SCRIPT_NAME";
    has_path |= v.name == "PATH_INFO";
    has_query |= v.name == "QUERY_STRING";
    has_proto |= v.name == "SERVER_PROTOCOL";
    has_name |= v.name == "SERVER_NAME";
    has_port |= v.name == "SERVER_PORT";
    if (v.name == "REQUEST_URI") uri = v.value;
    if (v.name == "CONTENT_LENGTH" && !v.value.empty() && !parse_u64(v.value, &uwsgi_body_left_)) {
      reject(400, "bad CONTENT_LENGTH");
      return Parse::kClosed;
    }
  }
  std::string_view target = uri.substr(0, uri.find('#'));
  std::size_t q = target.find('?');
  if (!has_script) vars_.add("SCRIPT_NAME", "");
  if (!has_path) vars_.add("PATH_INFO", percent_decode(target.substr(0, q)));
  if (!has_query)
    vars_.add("QUERY_STRING", q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  if (!has_proto) vars_.add("SERVER_PROTOCOL", "HTTP/1.0");
  if (!has_name) vars_.add("SERVER_NAME", listener_.server_name);
  if (!has_port) vars_.add("SERVER_PORT", listener_.server_port);
  if (worker_.cfg().limit_post && uwsgi_body_left_ > worker_.cfg().limit_post) {
    reject(413, "request body too large");
    return Parse::kClosed;
  }
  in_start_ += uwsgi::kHeaderSize + h.size;
  return Parse::kReady;
}

void Connection::reject(int status, const std::string& reason) {
  log(Level::kWarn, "%s:%s %d %s; closing", peer_addr_.c_str(), peer_port_.c_str(), status,
      reason.c_str());
  build_error(status);
  // Best effort, never blocking: the peer misbehaved.
  ssize_t ignored = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
  status_ = status;
  close_now();
}

}  // namespace spindle::core
