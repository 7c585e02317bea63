// The websocket's loop side: reading and parsing frames as bytes arrive,
// the automatic answers (pong, close), and the per-connection send queue.
// See websocket.hh.
//
// Everything here may run in a loop callback or on any core of the serving
// thread (a broadcast). It never parks, and it never runs the owner core on
// the caller's stack: wake-ups go through the loop (wake_soon), so whoever
// called may go on touching this object until it returns.
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/park.hh"
#include "core/websocket.hh"
#include "core/websocket_deflate.hh"

namespace spindle::core {

namespace {

// An empty queue or message keeps no more than this; a larger buffer is
// given back so an idle websocket holds none.
constexpr std::size_t kKeepCapacity = 4096;

void release(std::string& s) {
  if (s.capacity() > kKeepCapacity) std::string().swap(s);
  else s.clear();
}

}  // namespace

void WebSocket::on_events(int revents) {
  if (revents & kWrite) flush_queue();
  if (lingering_) {
    if (revents & kRead) discard_input();
    return update_interest();
  }
  if (revents & kRead) {
    // Bytes while a message still waits for the app: stop watching until
    // it takes it. Only then: the usual echo never changes the interest.
    if (has_ready_ || parse_pending_) read_paused_ = true;
    read_input();
  }
  update_interest();
}

void WebSocket::read_input() {
  if (has_ready_ || parse_pending_ || closed_ || gone_) return;
  char* scratch = Transport::scratch();
  ssize_t r;
  do r = ::read(t_.fd(), scratch, Transport::kScratch);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EAGAIN) return;
  if (r == 0) {
    // The client sends no more, but may still read: the close frame the
    // app's return sends can reach it.
    closed_ = true;
    peer_eof_ = true;
    why_ = "client closed the connection";
    return wake_owner(Waiting::kMessage);
  }
  if (r < 0) return drop(std::string("read: ") + strerror(errno));
  last_rx_ = loop_.now();
  awaiting_pong_ = false;  // any frame answers a ping
  const auto n = static_cast<std::size_t>(r);
  if (t_.in_start < t_.in_end) {
    // A frame header or control frame cut by the last read goes first.
    t_.in.append(scratch, n, t_.in_start, t_.in_end);
    parse_leftover();
    return;
  }
  std::size_t used = parse(scratch, n);
  if (used < n && !closed_) t_.in.append(scratch + used, n - used, t_.in_start, t_.in_end);
}

void WebSocket::discard_input() {
  char* scratch = Transport::scratch();
  for (int reads = 0; reads < 16; ++reads) {  // a fast sender cannot hold the loop
    ssize_t r = ::read(t_.fd(), scratch, Transport::kScratch);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    lingering_ = false;  // EOF or an error: the client is done
    peer_eof_ = true;
    return wake_owner(Waiting::kPeerDone);
  }
}

void WebSocket::parse_leftover() {
  if (t_.in_start < t_.in_end && !has_ready_ && !closed_)
    t_.in_start += parse(t_.in.data() + t_.in_start, t_.in_end - t_.in_start);
  if (closed_) t_.in_start = t_.in_end;  // nothing more is read
  t_.in.release_if_empty(t_.in_start, t_.in_end);
}

std::size_t WebSocket::parse(char* p, std::size_t n) {
  std::size_t pos = 0;
  while (pos < n && !has_ready_ && !closed_) {
    if (in_payload_) {
      // Payload bytes go straight into the message, unmasked in place.
      std::size_t take = n - pos < frame_left_ ? n - pos : static_cast<std::size_t>(frame_left_);
      char* d = p + pos;
      ws::unmask(d, take, frame_.mask, frame_off_);
      if (msg_op_ == ws::kText && !msg_deflated_ && !utf8_.feed(d, take)) {
        fail(ws::kInvalidPayload, "text message is not UTF-8");
        break;
      }
      msg_.append(d, take);
      frame_off_ += take;
      frame_left_ -= take;
      pos += take;
      if (frame_left_ == 0) {
        in_payload_ = false;
        if (frame_.fin) message_done();
      }
      continue;
    }
    ws::FrameHeader h;
    int code = 0;
    ws::Parse r =
        ws::parse_header(p + pos, n - pos, true, lim_.max_message, &h, &code, deflate_);
    if (r == ws::Parse::kNeedMore) break;
    if (r == ws::Parse::kError) {
      fail(code, code == ws::kTooBig ? "message too big" : "protocol error");
      break;
    }
    if (h.opcode & 0x8) {  // a control frame is handled whole
      if (h.rsv1) {
        fail(ws::kProtocolError, "compressed control frame");
        break;
      }
      if (n - pos < h.header_size + h.length) break;
      char* payload = p + pos + h.header_size;
      ws::unmask(payload, static_cast<std::size_t>(h.length), h.mask, 0);
      pos += h.header_size + static_cast<std::size_t>(h.length);
      control_frame(h, payload);
      continue;
    }
    if (h.opcode == ws::kContinuation) {
      if (msg_op_ == 0 || h.rsv1) {
        fail(ws::kProtocolError, msg_op_ == 0 ? "continuation without a message"
                                              : "RSV1 on a continuation frame");
        break;
      }
    } else {
      if (msg_op_ != 0) {
        fail(ws::kProtocolError, "new message inside a message");
        break;
      }
      msg_op_ = h.opcode;
      msg_deflated_ = h.rsv1;
      msg_.clear();
      utf8_.reset();
    }
    if (lim_.max_message && msg_.size() + h.length > lim_.max_message) {
      fail(ws::kTooBig, "message too big");
      break;
    }
    frame_ = h;
    frame_left_ = h.length;
    frame_off_ = 0;
    pos += h.header_size;
    if (h.length > 0) {
      in_payload_ = true;
    } else if (h.fin) {
      message_done();
    }
  }
  return pos;
}

bool WebSocket::control_frame(const ws::FrameHeader& h, char* payload) {
  const auto n = static_cast<std::size_t>(h.length);
  switch (h.opcode) {
    case ws::kPing:
      if (!close_sent_) queue_frame(ws::kPong, {payload, n}, false);
      return true;
    case ws::kPong:
      return true;  // reading it already counted as an answer
    default:
      break;
  }
  // A close frame: check it, answer with the same code, and stop.
  int code = ws::kNormal;
  if (n == 1) {
    fail(ws::kProtocolError, "bad close frame");
    return false;
  }
  if (n >= 2) {
    code = (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
    if (!ws::valid_close_code(code)) {
      fail(ws::kProtocolError, "bad close code");
      return false;
    }
    ws::Utf8Validator v;
    if (!v.feed(payload + 2, n - 2) || !v.complete()) {
      fail(ws::kInvalidPayload, "close reason is not UTF-8");
      return false;
    }
  }
  peer_code_ = n >= 2 ? code : ws::kNormal;
  why_ = "client closed the websocket (" + std::to_string(peer_code_) + ")";
  close(peer_code_, {});
  wake_owner(Waiting::kMessage);
  return false;
}

void WebSocket::message_done() {
  if (msg_deflated_) {
    int code = 0;
    if (!ws::inflate_message(&msg_, lim_.max_message, &code))
      return fail(code, code == ws::kTooBig ? "message too big once inflated"
                                            : "bad compressed message");
    ws::Utf8Validator v;
    if (msg_op_ == ws::kText && (!v.feed(msg_.data(), msg_.size()) || !v.complete()))
      return fail(ws::kInvalidPayload, "text message is not UTF-8");
  } else if (msg_op_ == ws::kText && !utf8_.complete()) {
    return fail(ws::kInvalidPayload, "text message is not UTF-8");
  }
  ready_.swap(msg_);
  release(msg_);
  ready_binary_ = msg_op_ == ws::kBinary;
  has_ready_ = true;
  msg_op_ = 0;
  wake_owner(Waiting::kMessage);
}

bool WebSocket::queue_frame(std::uint8_t opcode, std::string_view payload, bool rsv1) {
  if (gone_) return false;
  std::string head;
  ws::frame_header(opcode, true, payload.size(), &head);
  if (rsv1) head[0] = static_cast<char>(head[0] | 0x40);
  if (queued() > 0) {
    out_.append(head);
    out_.append(payload);
    return true;
  }
  // Nothing is queued: the socket usually takes the frame at once.
  iovec iov[2] = {{head.data(), head.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = payload.empty() ? 1 : 2;
  ssize_t r;
  do r = ::sendmsg(t_.fd(), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EAGAIN) {
    drop(std::string("write: ") + strerror(errno));
    return false;
  }
  std::size_t sent = r > 0 ? static_cast<std::size_t>(r) : 0;
  out_.clear();
  out_off_ = 0;
  if (sent < head.size()) {
    out_.append(head, sent, std::string::npos);
    out_.append(payload);
  } else if (sent - head.size() < payload.size()) {
    out_.append(payload.substr(sent - head.size()));
  }
  if (queued() > 0) update_interest();
  return true;
}

void WebSocket::flush_queue() {
  while (queued() > 0 && !gone_) {
    ssize_t r = ::send(t_.fd(), out_.data() + out_off_, queued(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r > 0) {
      out_off_ += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) break;
    return drop(std::string("write: ") + strerror(errno));
  }
  if (queued() == 0) {
    release(out_);
    out_off_ = 0;
    if (waiting_ == Waiting::kDrained) wake_owner(Waiting::kDrained);
  } else if (out_off_ > 65536 && out_off_ * 2 > out_.size()) {
    out_.erase(0, out_off_);  // what went out is not kept for long
    out_off_ = 0;
  }
  if (queued() <= lim_.send_buffer) wake_owner(Waiting::kRoom);
}

void WebSocket::update_interest() {
  if (!taken_over_) return;
  int want = kNone;
  if (!gone_) {
    if ((!read_paused_ && !closed_) || lingering_) want |= kRead;
    if (queued() > 0) want |= kWrite;
  }
  t_.watch(want);
}

void WebSocket::fail(int code, std::string why) {
  why_ = std::move(why);
  close(code, why_);
  wake_owner(Waiting::kMessage);
}

void WebSocket::drop(std::string why) {
  if (gone_) return;
  gone_ = true;
  closed_ = true;
  if (why_.empty() || !close_sent_) why_ = std::move(why);
  release(out_);
  out_off_ = 0;
  // The fd stays the transport's until the request ends; shutting it down
  // ends the client's side now.
  ::shutdown(t_.fd(), SHUT_RDWR);
  if (ping_timer_.armed) loop_.timer_stop(ping_timer_);
  update_interest();
  wake_owner(waiting_);
}

void WebSocket::wake_owner(Waiting done) {
  if (waiting_ == Waiting::kNone || waiting_ != done) return;
  waiting_ = Waiting::kNone;  // one wake-up is enough
  wake_soon(owner_, Wake::kReady);
}

}  // namespace spindle::core
