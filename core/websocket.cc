// The websocket on a request's connection, core side: the handshake, what
// the app calls (recv, send, close) and the keep-alive timer. The loop side
// (reading, parsing, the send queue) is websocket_io.cc. See websocket.hh.
#include "core/websocket.hh"

#include <sys/socket.h>

#include "core/exchange.hh"
#include "core/log.hh"
#include "core/park.hh"
#include "core/websocket_deflate.hh"
#include "core/worker.hh"

namespace spindle::core {

namespace {

std::string_view request_var(Exchange& ex, std::string_view name) {
  for (const Var& v : ex.vars())
    if (v.name == name) return v.value;
  return {};
}

}  // namespace

WebSocket::WebSocket(Exchange& ex, const Limits& limits)
    : ex_(ex),
      t_(ex.transport()),
      loop_(ex.transport().worker().loop()),
      lim_(limits),
      owner_(current_core()),
      thread_(pthread_self()) {
  ping_timer_.cb = on_ping_timer;
  ping_timer_.data = this;
}

WebSocket::~WebSocket() {
  if (ping_timer_.armed) loop_.timer_stop(ping_timer_);
  if (taken_over_) t_.take_over(nullptr);
}

bool WebSocket::handshake(std::string_view key, std::string_view proto, bool echo_proto,
                          std::string* err) {
  if (key.empty()) key = request_var(ex_, "HTTP_SEC_WEBSOCKET_KEY");
  if (key.empty()) {
    *err = "no Sec-WebSocket-Key";
    return false;
  }
  if (proto.empty() && echo_proto) {
    // The client lists the subprotocols it speaks; the answer must name one
    // of them (RFC 6455 4.2.2), so the app that chose none gets the first.
    proto = request_var(ex_, "HTTP_SEC_WEBSOCKET_PROTOCOL");
    proto = proto.substr(0, proto.find(','));
    while (!proto.empty() && (proto.back() == ' ' || proto.back() == '\t')) proto.remove_suffix(1);
  }
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
  head += ws::accept_key(key);
  head += "\r\n";
  if (!proto.empty()) {
    head += "Sec-WebSocket-Protocol: ";
    head += proto;
    head += "\r\n";
  }
  std::string ext;
  if (lim_.deflate &&
      ws::deflate_negotiate(request_var(ex_, "HTTP_SEC_WEBSOCKET_EXTENSIONS"), &ext,
                            &deflate_bits_)) {
    deflate_ = true;
    head += "Sec-WebSocket-Extensions: ";
    head += ext;
    head += "\r\n";
  }
  head += "\r\n";
  if (!ex_.upgrade(head)) {
    *err = ex_.error().empty() ? "the response was already started" : ex_.error();
    return false;
  }
  subprotocol_ = proto;
  // From here on the loop reads frames and writes the queue. Bytes the
  // client sent right after its request head are frames: they stay in the
  // transport's buffer and are parsed first.
  t_.take_over(this);
  taken_over_ = true;
  last_rx_ = loop_.now();
  if (lim_.ping_freq > 0) loop_.timer_start(ping_timer_, lim_.ping_freq);
  parse_leftover();
  update_interest();
  if (t_.worker().draining()) on_drain();  // opened after the stop began
  return true;
}

WebSocket::Recv WebSocket::recv(std::string* msg, bool* binary, bool wait, Deadline deadline,
                                std::string* err) {
  for (;;) {
    if (parse_pending_) {
      // What followed the last message, parsed now that the app asks for
      // more: the app answers a message before a bad frame after it closes.
      parse_pending_ = false;
      parse_leftover();
      read_paused_ = read_paused_ && has_ready_;
      update_interest();
    }
    if (has_ready_) {
      msg->swap(ready_);
      ready_.clear();
      *binary = ready_binary_;
      has_ready_ = false;
      parse_pending_ = t_.in_start < t_.in_end;
      read_paused_ = parse_pending_ && read_paused_;
      update_interest();
      return Recv::kMessage;
    }
    if (closed_) {
      *err = why_.empty() ? "the websocket is closed" : why_;
      return Recv::kClosed;
    }
    if (!wait) {
      read_input();  // what the socket has now, without waiting for the loop
      update_interest();
      if (has_ready_ || closed_) continue;
      return Recv::kNothing;
    }
    if (deadline.passed()) return Recv::kTimeout;
    waiting_ = Waiting::kMessage;
    Wake why = park_until_woken(deadline);
    waiting_ = Waiting::kNone;
    if (why == Wake::kCancelled) {
      // The worker stops: the client hears why.
      close(ws::kGoingAway, "server stopping");
      why_ = "cancelled: the worker is stopping";
    }
    // kReady or kTimeout: look again (a stray wake-up just loops).
  }
}

bool WebSocket::send(std::string_view data, bool binary, std::string* err) {
  if (gone_ || close_sent_) {
    *err = why_.empty() ? "the websocket is closed" : why_;
    return false;
  }
  const bool owner = current_core() == owner_ && owner_ >= 0;
  if (!owner && queued() > lim_.send_buffer) {
    drop("the client reads too slowly: more than --websocket-send-buffer left unread");
    *err = why_;
    return false;
  }
  bool ok;
  std::uint8_t op = binary ? ws::kBinary : ws::kText;
  if (deflate_ && data.size() >= ws::kDeflateMin) {
    const std::string& z = ws::deflate_message(data, deflate_bits_);
    ok = queue_frame(op, z, true);
  } else {
    ok = queue_frame(op, data, false);
  }
  if (!ok) {
    *err = why_;
    return false;
  }
  if (!owner) return true;
  // Back-pressure on the request that owns the websocket: wait while the
  // client has more than the bound unread.
  const Deadline until = Deadline::after(lim_.send_timeout);
  while (queued() > lim_.send_buffer && !gone_) {
    waiting_ = Waiting::kRoom;
    Wake why = park_until_woken(until);
    waiting_ = Waiting::kNone;
    if (why == Wake::kCancelled) {
      drop("cancelled: the worker is stopping");
    } else if (until.passed() && queued() > lim_.send_buffer) {
      drop("timeout writing to the websocket (--socket-timeout)");
    }
  }
  if (gone_) {
    *err = why_;
    return false;
  }
  return true;
}

void WebSocket::close(int code, std::string_view reason) {
  closed_ = true;
  if (why_.empty()) why_ = "the websocket is closed";
  if (close_sent_ || gone_) return;
  close_sent_ = true;
  queue_frame(ws::kClose, ws::close_payload(code, reason), false);
  update_interest();
  wake_owner(Waiting::kMessage);  // another request closed it: recv() returns
}

void WebSocket::finish(int code) {
  close(code, {});
  const Deadline until = Deadline::after(lim_.send_timeout);
  while (queued() > 0 && !gone_ && !until.passed()) {
    waiting_ = Waiting::kDrained;
    Wake why = park_until_woken(until);
    waiting_ = Waiting::kNone;
    if (why == Wake::kCancelled) return;
  }
  if (gone_ || peer_eof_ || queued() > 0) return;
  ::shutdown(t_.fd(), SHUT_WR);
  lingering_ = true;
  discard_input();
  const Deadline linger = Deadline::after(kLinger);
  while (lingering_ && !linger.passed()) {
    update_interest();
    waiting_ = Waiting::kPeerDone;
    Wake why = park_until_woken(linger);
    waiting_ = Waiting::kNone;
    if (why == Wake::kCancelled) break;
  }
  lingering_ = false;
  update_interest();
}

void WebSocket::on_drain() {
  if (!closed_ && !gone_) fail(ws::kGoingAway, "the server is stopping");
}

// The keep-alive. Re-armed only here: reads just note the time.
void WebSocket::on_ping_timer(Timer* t) {
  auto* self = static_cast<WebSocket*>(t->data);
  if (self->closed_ || self->gone_) return;
  Loop& loop = self->loop_;
  const double freq = self->lim_.ping_freq;
  if (self->awaiting_pong_) {
    log(Level::kInfo, "%s:%s websocket: no answer to a ping within %g s; closing",
        self->t_.peer_addr().c_str(), self->t_.peer_port().c_str(), self->lim_.pong_tolerance);
    self->drop("no answer to a ping within --websocket-pong-tolerance");
    return;
  }
  const double idle = loop.now() - self->last_rx_;
  // A message waits for the app: the server is the slow side, and reading
  // is off, so an answer could not be seen. Ask again later.
  const bool app_behind = self->has_ready_ || self->parse_pending_;
  if (idle < freq || app_behind) {
    loop.timer_start(self->ping_timer_, app_behind ? freq : freq - idle);
    return;
  }
  self->awaiting_pong_ = true;
  self->queue_frame(ws::kPing, {}, false);
  self->update_interest();
  if (self->gone_) return;
  loop.timer_start(self->ping_timer_, self->lim_.pong_tolerance > 0 ? self->lim_.pong_tolerance
                                                                     : 0.001);
}

}  // namespace spindle::core
