// HTTP/1.x: the loop side reads until a request head is complete; the core
// side reads the body and, after the response, takes the next pipelined
// request or hands the connection back to the loop. See http1_protocol.hh.
#include "core/http1_protocol.hh"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hh"
#include "core/scheduler.hh"
#include "core/transport.hh"
#include "core/worker.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
}

Http1Protocol::Http1Protocol(Transport& t) : Protocol(t), ex_(t, *this) {
  const Config& cfg = t.worker().cfg();
  parser_.set_limits({static_cast<std::size_t>(cfg.buffer_size), cfg.limit_post});
}

// What the parser leaves of bytes read into the scratch buffer is kept in
// the transport's input buffer.
long Http1Protocol::feed_scratch(const char* p, std::size_t n) {
  long used = parser_.feed(p, n, &body_);
  if (used >= 0 && static_cast<std::size_t>(used) < n)
    t_.in.append(p + used, n - static_cast<std::size_t>(used), t_.in_start, t_.in_end);
  return used;
}

void Http1Protocol::on_readable() {
  for (;;) {
    // With nothing pending, read into the scratch buffer: the parser copies
    // out what it needs, so the connection keeps no buffer at all.
    const bool via_scratch = t_.in_start == t_.in_end;
    char* dst = Transport::scratch();
    std::size_t room = Transport::kScratch;
    if (!via_scratch) {
      if (!t_.in.make_room(t_.in_start, t_.in_end)) {
        fail(431, "request head too large");
        return;
      }
      dst = t_.in.data() + t_.in_end;
      room = t_.in.size() - t_.in_end;
    }
    ssize_t r = ::read(t_.fd(), dst, room);
    if (r > 0) {
      t_.since_request += static_cast<std::size_t>(r);
      long n;
      if (via_scratch) {
        n = feed_scratch(dst, static_cast<std::size_t>(r));
      } else {
        t_.in_end += static_cast<std::size_t>(r);
        n = parser_.feed(t_.in.data() + t_.in_start, t_.in_end - t_.in_start, &body_);
        if (n > 0) t_.in_start += static_cast<std::size_t>(n);
      }
      if (n < 0) {
        fail(parser_.error_status(), parser_.error_reason());
        return;
      }
      if (!parser_.head_complete() || buffering_body()) continue;
      submit();
      return;
    }
    if (r == 0) {
      t_.close();
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) t_.close();
    return;
  }
}

// --post-buffering: a body (or its first SIZE bytes) is read here, on the
// loop, before a core takes the request, so a client that sends it slowly
// holds no core meanwhile. A client waiting for 100 Continue sends nothing
// until the app reads: that request goes to a core at once.
bool Http1Protocol::buffering_body() {
  const Config& cfg = t_.worker().cfg();
  if (cfg.post_buffering == 0 || parser_.message_complete() || parser_.head().expect_continue ||
      body_.size() >= cfg.post_buffering)
    return false;
  if (body_wait_from_ms_ < 0) {
    body_wait_from_ms_ = monotonic_ms();
    t_.wait_for_body(cfg.body_timeout > 0 ? cfg.body_timeout : cfg.http_timeout);
  }
  return true;
}

int Http1Protocol::refused_status() const {
  return parser_.error_status() ? parser_.error_status() : t_.body_timed_out() ? 408 : 0;
}

void Http1Protocol::submit() {
  // A static file is answered here, from the loop; a request with a body
  // (not a static one) or any other goes to a core.
  vars_built_ = false;
  if (t_.worker().static_files().enabled() && parser_.message_complete()) {
    const RequestHead& h = parser_.head();
    build_http_vars(h, t_.listener(), t_.peer_addr(), t_.peer_port(), &vars_);
    vars_built_ = true;  // begin() reuses them if the app gets the request
    std::string line = h.method + ' ' + h.url + (h.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1");
    if (try_static(vars_.finish(), h.keep_alive && !h.upgrade, h.version_minor == 0, line)) return;
  }
  t_.set_busy();
  t_.worker().scheduler().submit(&ex_);
}

// Starts the next request on this connection from the bytes already read
// (pipelining): kHead when they hold its whole head, kFailed when they are
// malformed (answered and closing), kNone when more must be read.
Http1Protocol::Pipelined Http1Protocol::start_next() {
  parser_.begin();
  body_.clear();
  body_off_ = 0;
  t_.since_request = t_.in_end - t_.in_start;
  if (t_.in_start == t_.in_end) return Pipelined::kNone;
  long n = parser_.feed(t_.in.data() + t_.in_start, t_.in_end - t_.in_start, &body_);
  if (n < 0) {
    fail(parser_.error_status(), parser_.error_reason());
    return Pipelined::kFailed;
  }
  t_.in_start += static_cast<std::size_t>(n);
  return parser_.head_complete() ? Pipelined::kHead : Pipelined::kNone;
}

// As next(), on the loop side: the request had no body to drain.
void Http1Protocol::static_done(bool reuse) {
  if (!reuse) {
    t_.close_after_answer(false);
    return;
  }
  switch (start_next()) {
    case Pipelined::kFailed:
      return;
    case Pipelined::kHead:
      submit();
      return;
    case Pipelined::kNone:
      break;
  }
  t_.in.release_if_empty(t_.in_start, t_.in_end);
  t_.wait_for_request();
}

void Http1Protocol::begin(Exchange& ex) {
  continue_sent_ = false;
  // The body's time budget: what the loop side spent waiting for it counts.
  const Config& cfg = t_.worker().cfg();
  double budget = -1;
  if (cfg.body_timeout > 0 && !parser_.message_complete()) {
    budget = cfg.body_timeout;
    if (body_wait_from_ms_ >= 0)
      budget -= static_cast<double>(monotonic_ms() - body_wait_from_ms_) / 1000.0;
    if (budget < 0) budget = 0;
  }
  t_.set_body_budget(budget);
  body_wait_from_ms_ = -1;
  const RequestHead& h = parser_.head();
  if (!vars_built_) build_http_vars(h, t_.listener(), t_.peer_addr(), t_.peer_port(), &vars_);
  vars_built_ = false;
  ex.req.vars = vars_.finish();
  ex.req.is_head = h.method == "HEAD";
  ex.req.keep_alive = h.keep_alive && !h.upgrade;
  ex.req.scheme = "http";
  {
    std::string& line = ex.req.line;
    line = h.method;
    line += ' ';
    line += h.url;
    line += h.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1";
  }
}

Framing Http1Protocol::framing() const {
  const bool http10 = parser_.head().version_minor == 0;
  return {.chunked = !http10, .announce_keep_alive = http10, .origin = true};
}

ssize_t Http1Protocol::read_body(Exchange& ex, char* buf, std::size_t n) {
  for (;;) {
    if (body_off_ < body_.size()) {
      std::size_t k = std::min(n, body_.size() - body_off_);
      memcpy(buf, body_.data() + body_off_, k);
      body_off_ += k;
      if (body_off_ == body_.size()) {
        body_.clear();
        body_off_ = 0;
      }
      return static_cast<ssize_t>(k);
    }
    if (parser_.message_complete()) return 0;
    if (parser_.error_status()) return -1;
    if (parser_.head().expect_continue && !continue_sent_ && !ex.head_sent()) {
      continue_sent_ = true;
      iovec iov{const_cast<char*>(kContinue), sizeof kContinue - 1};
      std::string why;
      if (!t_.send(&iov, 1, &why)) {
        ex.read_failed(std::move(why));
        return -1;
      }
    }
    long used;
    if (t_.in_start == t_.in_end) {
      std::string why;
      ssize_t got = t_.read_some(Transport::scratch(), Transport::kScratch, &why);
      if (got <= 0) {
        ex.read_failed(std::move(why));
        return -1;
      }
      used = feed_scratch(Transport::scratch(), static_cast<std::size_t>(got));
    } else {
      used = parser_.feed(t_.in.data() + t_.in_start, t_.in_end - t_.in_start, &body_);
      if (used > 0) t_.in_start += static_cast<std::size_t>(used);
    }
    if (used < 0) {
      ex.read_failed(parser_.error_reason());
      log(Level::kWarn, "%s:%s %d %s", t_.peer_addr().c_str(), t_.peer_port().c_str(),
          parser_.error_status(), ex.error().c_str());
      return -1;
    }
  }
}

// Before the next request on this connection, the rest of this one's body
// must be consumed. A client still waiting for 100 Continue has not sent it:
// closing is the only safe answer then.
bool Http1Protocol::drain_body(Exchange& ex) {
  if (parser_.message_complete()) return true;
  if (parser_.head().expect_continue && !continue_sent_) return false;
  char scratch[16384];
  std::size_t drained = 0;
  while (drained < (1u << 20)) {
    ssize_t n = read_body(ex, scratch, sizeof scratch);
    if (n < 0) return false;
    if (n == 0) return true;
    drained += static_cast<std::size_t>(n);
  }
  return false;
}

bool Http1Protocol::next(Exchange& ex, bool reuse) {
  if (!reuse || !drain_body(ex)) {
    t_.close_after_answer(!parser_.message_complete());
    return false;
  }
  // The next request: pipelined bytes may already hold it.
  Pipelined p = start_next();
  if (p == Pipelined::kFailed) return false;
  if (p == Pipelined::kHead) {
    if (!t_.worker().static_files().enabled()) return true;
    // It may be a static file, which is sent from the loop, not from a
    // core: hand the request to the loop side (the transport stays busy).
    static_next_.cb = [](Task* task) {
      auto* self = static_cast<Http1Protocol*>(task->data);
      if (!self->t_.closing()) self->submit();
    };
    static_next_.data = this;
    t_.worker().loop().post(static_next_);
    return false;
  }
  // Back to the loop side; a level-triggered watcher reports bytes that
  // came in while we were busy.
  t_.in.release_if_empty(t_.in_start, t_.in_end);
  t_.wait_for_request();
  return false;
}

}  // namespace spindle::core
