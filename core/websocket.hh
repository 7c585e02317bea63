// A websocket on a request's connection (RFC 6455, server side). After the
// app's handshake() sent the 101, the request keeps its core and the app
// loops over recv()/send() (uWSGI's model); the connection is closed when
// the app returns. Frames are parsed with core/websocket_codec.hh: masking
// required, fragments reassembled (control frames may come between them),
// pings answered with pongs, text checked as UTF-8 (close 1007), messages
// over the size limit refused (close 1009).
//
// Core side only: every call may park the calling core (never the worker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/websocket_codec.hh"

namespace spindle::core {

class Exchange;
class Transport;

class WebSocket {
 public:
  // max_message: bytes a whole (reassembled) message may have; 0: no limit.
  WebSocket(Exchange& ex, std::uint64_t max_message);

  // Answers 101 with Sec-WebSocket-Accept for `key` (the request's
  // Sec-WebSocket-Key when empty) and Sec-WebSocket-Protocol `proto` (the
  // request's when empty, left out when neither has one). False with *err
  // when there is no key or the head could not be sent.
  bool handshake(std::string_view key, std::string_view proto, std::string* err);

  enum class Recv { kMessage, kNothing, kClosed };
  // The next whole data message into *msg (*binary: its opcode was binary).
  // wait: park until one is in; otherwise kNothing when none is complete
  // yet. kClosed: the peer closed, broke the protocol (a close frame with
  // the reason was sent) or went away; *err says why.
  Recv recv(std::string* msg, bool* binary, bool wait, std::string* err);

  // Sends one unfragmented text or binary message.
  bool send(std::string_view data, bool binary, std::string* err);

  // Sends a close frame once (later calls do nothing).
  void close(int code, std::string_view reason);

  bool open() const { return !closed_; }

 private:
  bool send_frame(std::uint8_t opcode, std::string_view payload, std::string* err);
  // Reads more bytes into buf_: 1 read, 0 nothing yet (only when !wait), -1 gone.
  int fill(bool wait, std::string* err);
  // Protocol failure: close frame with `code`, then closed.
  Recv fail(int code, std::string why, std::string* err);

  Exchange& ex_;
  Transport& t_;
  std::uint64_t max_;
  std::string buf_;   // received, unparsed bytes from off_
  std::size_t off_ = 0;
  std::string msg_;   // the message being reassembled
  std::uint8_t msg_op_ = 0;  // its opcode, 0 when none is open
  ws::Utf8Validator utf8_;
  bool close_sent_ = false;
  bool closed_ = false;
};

}  // namespace spindle::core
