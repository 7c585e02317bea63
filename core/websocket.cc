// The websocket on a request's connection: handshake, frame reading with
// reassembly and the automatic answers (pong, close), and sending. See
// websocket.hh.
#include "core/websocket.hh"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/exchange.hh"
#include "core/transport.hh"

namespace spindle::core {

namespace {

std::string_view request_var(Exchange& ex, std::string_view name) {
  for (const Var& v : ex.vars())
    if (v.name == name) return v.value;
  return {};
}

}  // namespace

WebSocket::WebSocket(Exchange& ex, std::uint64_t max_message)
    : ex_(ex), t_(ex.transport()), max_(max_message) {}

bool WebSocket::handshake(std::string_view key, std::string_view proto, std::string* err) {
  if (key.empty()) key = request_var(ex_, "HTTP_SEC_WEBSOCKET_KEY");
  if (key.empty()) {
    *err = "no Sec-WebSocket-Key";
    return false;
  }
  if (proto.empty()) proto = request_var(ex_, "HTTP_SEC_WEBSOCKET_PROTOCOL");
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
  head += ws::accept_key(key);
  head += "\r\n";
  if (!proto.empty()) {
    head += "Sec-WebSocket-Protocol: ";
    head += proto;
    head += "\r\n";
  }
  head += "\r\n";
  if (!ex_.upgrade(head)) {
    *err = ex_.error().empty() ? "the response was already started" : ex_.error();
    return false;
  }
  // Bytes the client sent right after its request head are frames.
  if (t_.in_start < t_.in_end) {
    buf_.assign(t_.in.data() + t_.in_start, t_.in_end - t_.in_start);
    t_.in_start = t_.in_end;
  }
  return true;
}

int WebSocket::fill(bool wait, std::string* err) {
  if (off_ > 0 && off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  }
  char* scratch = Transport::scratch();
  ssize_t r;
  if (wait) {
    r = t_.read_some(scratch, Transport::kScratch, err);
  } else {
    do r = ::read(t_.fd(), scratch, Transport::kScratch);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN) return 0;
    if (r == 0) *err = "client closed the connection";
    if (r < 0) *err = std::string("read: ") + strerror(errno);
  }
  if (r <= 0) return -1;
  buf_.append(scratch, static_cast<std::size_t>(r));
  return 1;
}

WebSocket::Recv WebSocket::fail(int code, std::string why, std::string* err) {
  close(code, why);
  closed_ = true;
  *err = std::move(why);
  return Recv::kClosed;
}

WebSocket::Recv WebSocket::recv(std::string* msg, bool* binary, bool wait, std::string* err) {
  if (closed_) {
    *err = "the websocket is closed";
    return Recv::kClosed;
  }
  for (;;) {
    ws::FrameHeader h;
    int code = 0;
    const std::size_t have = buf_.size() - off_;
    ws::Parse p = ws::parse_header(buf_.data() + off_, have, true, max_, &h, &code);
    if (p == ws::Parse::kError)
      return fail(code, code == ws::kTooBig ? "message too big" : "protocol error", err);
    if (p == ws::Parse::kOk && have - h.header_size >= h.length) {
      char* payload = buf_.data() + off_ + h.header_size;
      const std::size_t n = static_cast<std::size_t>(h.length);
      ws::unmask(payload, n, h.mask, 0);
      off_ += h.header_size + n;
      switch (h.opcode) {
        case ws::kPing:
          if (!send_frame(ws::kPong, {payload, n}, err)) {
            closed_ = true;
            return Recv::kClosed;
          }
          continue;
        case ws::kPong:
          continue;
        case ws::kClose: {
          int peer_code = ws::kNormal;
          if (n == 1) return fail(ws::kProtocolError, "bad close frame", err);
          if (n >= 2) {
            peer_code = (static_cast<unsigned char>(payload[0]) << 8) |
                        static_cast<unsigned char>(payload[1]);
            if (!ws::valid_close_code(peer_code))
              return fail(ws::kProtocolError, "bad close code", err);
            ws::Utf8Validator v;
            if (!v.feed(payload + 2, n - 2) || !v.complete())
              return fail(ws::kInvalidPayload, "close reason is not UTF-8", err);
          }
          close(n >= 2 ? peer_code : ws::kNormal, {});
          closed_ = true;
          *err = "client closed the websocket (" + std::to_string(peer_code) + ")";
          return Recv::kClosed;
        }
        case ws::kContinuation:
          if (msg_op_ == 0) return fail(ws::kProtocolError, "continuation without a message", err);
          break;
        default:  // text or binary
          if (msg_op_ != 0) return fail(ws::kProtocolError, "new message inside a message", err);
          msg_op_ = h.opcode;
          msg_.clear();
          utf8_.reset();
      }
      if (max_ && msg_.size() + n > max_) return fail(ws::kTooBig, "message too big", err);
      if (msg_op_ == ws::kText && !utf8_.feed(payload, n))
        return fail(ws::kInvalidPayload, "text message is not UTF-8", err);
      msg_.append(payload, n);
      if (!h.fin) continue;
      if (msg_op_ == ws::kText && !utf8_.complete())
        return fail(ws::kInvalidPayload, "text message is not UTF-8", err);
      *binary = msg_op_ == ws::kBinary;
      msg->swap(msg_);
      msg_.clear();
      msg_op_ = 0;
      return Recv::kMessage;
    }
    // Keep the buffer from growing with what was consumed.
    if (off_ > 0) {
      buf_.erase(0, off_);
      off_ = 0;
    }
    int r = fill(wait, err);
    if (r == 0) return Recv::kNothing;
    if (r < 0) {
      closed_ = true;
      return Recv::kClosed;
    }
  }
}

bool WebSocket::send_frame(std::uint8_t opcode, std::string_view payload, std::string* err) {
  std::string head;
  ws::frame_header(opcode, true, payload.size(), &head);
  iovec iov[2] = {{head.data(), head.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  return t_.send(iov, payload.empty() ? 1 : 2, err);
}

bool WebSocket::send(std::string_view data, bool binary, std::string* err) {
  if (closed_ || close_sent_) {
    *err = "the websocket is closed";
    return false;
  }
  if (!send_frame(binary ? ws::kBinary : ws::kText, data, err)) {
    closed_ = true;
    return false;
  }
  return true;
}

void WebSocket::close(int code, std::string_view reason) {
  if (close_sent_) return;
  close_sent_ = true;
  std::string err;
  send_frame(ws::kClose, ws::close_payload(code, reason), &err);
}

}  // namespace spindle::core
