// A websocket on a request's connection (RFC 6455, server side).
//
// After handshake() sent the 101, the request keeps its core and the app
// loops over recv()/send() (uWSGI's model); the connection is closed when
// the request ends. The connection's events are the websocket's from then
// on (Transport::take_over): the loop reads and parses frames, answers
// pings, keeps the client alive with pings of its own, and writes what was
// queued. The core only waits for whole messages or for room to send.
//
// Reading (loop side). Frames are parsed with core/websocket_codec.hh as
// bytes arrive: masking required, fragments reassembled (control frames may
// come between them), text checked as UTF-8 (close 1007), messages over the
// size limit refused (close 1009), pings answered with pongs. One whole
// message waits for the app at most: reading stops until recv() takes it,
// so a client cannot make the server buffer more than one message; bytes
// that came after it are parsed at the next recv().
//
// Keep-alive (uWSGI's --websocket-ping-freq / --websocket-pong-tolerance).
// One loop timer per websocket, re-armed only in its own callback (a
// message costs a clock read, never a timer operation): when the client has
// sent nothing for ping_freq seconds while the server reads, a ping goes
// out; if nothing at all (a pong or any frame) comes back within
// pong_tolerance seconds, the connection is dropped and recv() reports it
// closed. A recv() with no deadline waits as long as the client answers.
//
// Sending. Every frame is whole in one queue per connection, so frames never
// interleave mid-frame, whoever sends them. A send tries the socket at once
// and queues what it did not take; the loop writes the queue as the socket
// drains. The core that owns the websocket (the request's) waits while more
// than the send-buffer bound is queued (back-pressure, at most
// --socket-timeout). Any other core of the same serving thread, or a loop
// callback, may send too (a broadcast) and never waits: a client that has
// more than the bound unread when such a send comes is dropped, and that
// send fails. Other threads may not touch the websocket.
//
// Memory while idle: the parked core, this object, and no buffer: input and
// output buffers are given back once empty.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/deadline.hh"
#include "core/loop.hh"
#include "core/transport.hh"
#include "core/websocket_codec.hh"

namespace spindle::core {

class Exchange;

class WebSocket final : public Upgraded {
 public:
  struct Limits {
    std::uint64_t max_message = 0;  // bytes of a whole message (0: no limit)
    double ping_freq = 30;          // 0: no pings
    double pong_tolerance = 3;
    std::size_t send_buffer = 256 * 1024;
    double send_timeout = 30;       // the owner's wait for room (--socket-timeout)
    bool deflate = false;           // accept permessage-deflate when offered
  };
  // From the core serving the request.
  WebSocket(Exchange& ex, const Limits& limits);
  ~WebSocket();  // gives the transport's events back
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;

  // Answers 101 with Sec-WebSocket-Accept for `key` (the request's
  // Sec-WebSocket-Key when empty). Sec-WebSocket-Protocol: `proto`; when it
  // is empty and echo_proto is set, the first the request offers (uWSGI
  // echoes the whole list); none otherwise. False with *err when there is no key or the head could not
  // be sent.
  bool handshake(std::string_view key, std::string_view proto, bool echo_proto, std::string* err);

  enum class Recv { kMessage, kNothing, kClosed, kTimeout };
  // The next whole data message into *msg (*binary: its opcode was binary).
  // Owner core only. wait: park until one is in or the deadline passes
  // (kTimeout); otherwise kNothing when none is complete yet. kClosed: the
  // peer closed, broke the protocol (a close frame with the reason was
  // sent), stopped answering pings or went away, or close() was called;
  // *err says why.
  Recv recv(std::string* msg, bool* binary, bool wait, Deadline deadline, std::string* err);

  // Queues one unfragmented text or binary message (see "Sending"). False
  // with *err when the websocket is closed or this send dropped the client.
  bool send(std::string_view data, bool binary, std::string* err);

  // Sends a close frame once; recv() reports kClosed from then on.
  void close(int code, std::string_view reason);

  // The request ends (owner core): close(code), then waits up to the send
  // timeout for the queue to reach the socket, then (a lingering close)
  // sends FIN and discards what the client still sends until its EOF, for
  // at most kLinger seconds: closing with unread input would send a reset
  // that can destroy the close frame before the client reads it.
  void finish(int code);

  static constexpr double kLinger = 1.0;

  bool open() const { return !closed_; }
  // The code of the client's close frame (0: none came).
  int peer_close_code() const { return peer_code_; }
  const std::string& subprotocol() const { return subprotocol_; }
  bool deflating() const { return deflate_; }
  int owner() const { return owner_; }
  // The calling thread is the one serving this websocket's connection.
  bool on_owner_thread() const { return pthread_equal(pthread_self(), thread_) != 0; }

  // Loop side (Upgraded).
  void on_events(int revents) override;
  // A stopping worker closes its websockets with 1001 (going away): recv()
  // reports the websocket closed, so the app returns at once.
  void on_drain() override;

 private:
  enum class Waiting { kNone, kMessage, kRoom, kDrained, kPeerDone };

  // websocket_io.cc: the loop side.
  void read_input();
  void discard_input();
  // Parses p[0..n), stopping once a message is ready or the websocket
  // closed; returns the bytes used.
  std::size_t parse(char* p, std::size_t n);
  bool control_frame(const ws::FrameHeader& h, char* payload);
  void message_done();
  void parse_leftover();
  bool queue_frame(std::uint8_t opcode, std::string_view payload, bool rsv1);
  void flush_queue();
  void update_interest();
  void fail(int code, std::string why);
  void drop(std::string why);
  void wake_owner(Waiting done);
  std::size_t queued() const { return out_.size() - out_off_; }
  static void on_ping_timer(Timer* t);

  Exchange& ex_;
  Transport& t_;
  Loop& loop_;
  Limits lim_;
  int owner_;
  pthread_t thread_;
  bool taken_over_ = false;

  // Input: the frame being read, the message being reassembled, the one
  // ready for the app. Unparsed bytes wait in the transport's buffer.
  ws::FrameHeader frame_;
  std::uint64_t frame_left_ = 0;  // payload bytes of frame_ still to come
  std::uint64_t frame_off_ = 0;   // payload bytes of frame_ already read
  bool in_payload_ = false;
  std::string msg_;
  std::uint8_t msg_op_ = 0;  // its opcode, 0 when none is open
  bool msg_deflated_ = false;
  ws::Utf8Validator utf8_;
  std::string ready_;
  bool ready_binary_ = false;
  bool has_ready_ = false;
  bool parse_pending_ = false;  // bytes after the last message wait for the next recv()
  bool read_paused_ = false;    // the watcher stopped reading until the app catches up
  bool peer_eof_ = false;       // the client sent its last byte
  bool lingering_ = false;      // finish(): discarding input until the client's EOF

  // Output: whole frames, from out_off_.
  std::string out_;
  std::size_t out_off_ = 0;

  // Keep-alive.
  Timer ping_timer_;
  double last_rx_ = 0;  // loop clock of the last bytes read
  bool awaiting_pong_ = false;

  Waiting waiting_ = Waiting::kNone;
  bool closed_ = false;      // no more messages for the app
  bool close_sent_ = false;  // our close frame is queued
  bool gone_ = false;        // the connection is unusable: nothing more is sent
  int peer_code_ = 0;
  std::string why_;          // why it closed, one line
  std::string subprotocol_;
  bool deflate_ = false;
  int deflate_bits_ = 15;  // our window (the client may have limited it)
};

}  // namespace spindle::core
