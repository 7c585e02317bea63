// A client connection's transport: the fd, its watcher and idle timer, the
// input buffer, and the I/O calls an async core makes on it (they park the
// core on EAGAIN). It knows nothing of HTTP or uwsgi: the Protocol it
// carries (core/protocol.hh) reads and parses, and the protocol's Exchange
// (core/exchange.hh) writes the response through it.
//
// Ownership and lifetime
//  - Owned by the Worker's list; built by the accept path.
//  - close() is a request, as libuv's uv_close: the watcher, the timer and
//    the fd are released at once, the object itself at the end of the loop
//    iteration (a posted task). Whoever called close() — a loop callback or
//    the core serving the connection — may still touch it until it returns
//    to the loop; nothing is destroyed under a running core.
//
// Who may call what
//  - Loop side (callbacks on the main context): start(), close(),
//    wait_for_request(), busy(), the input buffer.
//  - Core side (only from the core serving the connection): read_some(),
//    send(), send_file(). Each parks the core, never the worker.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/deadline.hh"
#include "core/listener.hh"
#include "core/loop.hh"
#include "core/read_buffer.hh"

namespace spindle::core {

class Worker;
class Protocol;

// What a connection that left HTTP (a websocket) does with its events: once
// installed with Transport::take_over(), the watcher's readiness goes to
// on_events() (loop side, main context) instead of the protocol, and the
// idle timer stops. Its owner gives the transport back (take_over(nullptr))
// before it is destroyed.
class Upgraded {
 public:
  virtual void on_events(int revents) = 0;
  // The worker stops (graceful stop or reload): end the connection's
  // session promptly instead of holding the worker until its mercy.
  virtual void on_drain() {}

 protected:
  ~Upgraded() = default;
};

class Transport {
 public:
  Transport(Worker& worker, const Listener& listener, int fd, const sockaddr_storage& peer);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // --- loop side -----------------------------------------------------------

  // Installs the listener's protocol and makes the first read (the data is
  // often there already).
  void start();

  // Releases the fd now and this object at the end of the loop iteration.
  // Idempotent.
  void close();
  bool closing() const { return closing_; }

  // The response on this connection is cut short of what its framing
  // promised (no chunked terminator, fewer bytes than its Content-Length,
  // or a body delimited by the close itself): the close that follows is a
  // reset (SO_LINGER 0), so the client cannot take what it got for a
  // whole response. Unsent bytes are dropped with it.
  void reset_on_close() { reset_ = true; }

  // Closes after a whole answer (Connection: close) when the client may
  // still be sending: `more_input` (a request body not read to its end) or
  // bytes that arrived while a core held the connection. Closing at once
  // with unread input makes the kernel send a reset, which can destroy the
  // answer before the client reads it; instead the sending side is shut
  // (FIN after the answer) and input is read and dropped until the client
  // closes too, or for kLinger at most. Without unread input: close().
  void close_after_answer(bool more_input);
  static constexpr double kLinger = 2.0;

  // The worker began a graceful stop. A connection waiting for its next
  // request is not closed at once: its request may be in the socket
  // already, unread, or on its way. It gets a short grace (kDrainGrace,
  // within --worker-reload-mercy) to send it; a request that comes is
  // served with Connection: close, and a connection that stays silent is
  // closed when the grace ends. A connection a core serves is left alone:
  // its response says Connection: close (or, if its head went out before
  // the stop, the connection gets the same grace for one more request).
  void drain();
  static constexpr double kDrainGrace = 0.2;

  // Back to reading in loop callbacks, the idle/head deadline moved forward
  // (to the drain's grace when the worker is stopping).
  void wait_for_request();

  // A whole request head is in: the loop side stops reading until a core
  // has served it. The read watcher stays armed (most requests end without
  // parking; re-arming would cost a syscall); bytes that arrive meanwhile
  // disarm it and are read by the core when it is done.
  void set_busy() {
    busy_ = true;
    reading_body_ = false;
  }

  // The loop side writes an answer itself (a static file) and the socket is
  // full: the protocol's on_writable() runs once it drains. The connection
  // is closed if it stays full for --socket-timeout.
  void wait_writable();

  // Best effort, never blocking: for answers to a peer that misbehaved.
  void send_now(const std::string& bytes);

  // After an upgrade: the connection's events go to `u` (nullptr gives them
  // back). The request that upgraded still holds the connection; it is
  // closed when that request ends, as before. While taken over, the owner
  // chooses what the watcher waits for with watch().
  void take_over(Upgraded* u);
  void watch(int interest);

  // The head is in and the loop side goes on reading the body (up to
  // --post-buffering): the connection is answered 408 and closed if the
  // body is not in within `seconds`.
  void wait_for_body(double seconds);

  // --- the body's time budget (--body-timeout) -------------------------------
  // However its bytes trickle in, a request waits at most this long in all
  // for its body: every read_some() that parks spends from it, a park never
  // outlasts it, and once it is spent the read fails and body_timed_out()
  // is true. Negative: no budget (only --socket-timeout per park).
  void set_body_budget(double seconds) {
    body_budget_ = seconds;
    body_timed_out_ = false;
  }
  double body_budget() const { return body_budget_; }
  bool body_timed_out() const { return body_timed_out_; }

  // --- core side -----------------------------------------------------------

  // Reads what the socket has (at most n bytes), parking the core while it
  // has nothing. >0: bytes read; 0: the peer closed; -1: error, timeout or
  // cancel. On 0 or -1, *err says why in one line.
  ssize_t read_some(char* buf, std::size_t n, std::string* err);

  // Sends every byte of iov[0..cnt) (modified as it goes), parking while
  // the socket is full. False (with *err) if the peer went away, a timeout
  // expired or the worker cancels.
  bool send(struct iovec* iov, int cnt, std::string* err);

  // Sends count bytes of file fd from *offset with sendfile(2); *sent grows
  // with every byte that went out. Same errors as send().
  bool send_file(int fd, off_t* offset, std::uint64_t count, std::uint64_t* sent, std::string* err);

  // --- for the protocol ----------------------------------------------------

  // One worker-wide buffer that loop-side and core-side reads may go
  // through: what the parser leaves is kept in `in`.
  static constexpr std::size_t kScratch = 64 * 1024;
  static char* scratch();

  Worker& worker() { return worker_; }
  const Listener& listener() const { return listener_; }
  int fd() const { return fd_; }
  const std::string& peer_addr() const { return peer_addr_; }
  const std::string& peer_port() const { return peer_port_; }
  Protocol& protocol() { return *proto_; }

  // Bytes written to the socket by send() and send_file() so far (the
  // access log's count for a response cut off midway).
  std::uint64_t bytes_written() const { return written_; }

  // Unconsumed input: bytes [in_start, in_end) of `in`.
  ReadBuffer in;
  std::size_t in_start = 0;
  std::size_t in_end = 0;
  std::size_t since_request = 0;  // bytes received toward the next request

  Transport* prev = nullptr;  // the worker's list
  Transport* next = nullptr;

 private:
  static void on_io(IoWatcher* w, int revents);
  static void on_timer(Timer* t);
  void linger_read();
  bool wait(int interest, std::string* err);

  Worker& worker_;
  const Listener& listener_;
  int fd_;
  std::string peer_addr_;
  std::string peer_port_;
  IoWatcher io_;
  Timer timer_;  // head and keep-alive idle timeout (lazy)
  Deadline idle_deadline_;
  bool busy_ = false;           // a core holds the current request
  bool bytes_pending_ = false;  // the next request's bytes arrived while busy
  bool grace_ = false;          // draining: the deadline is the grace for a request
  bool writing_ = false;        // waiting in wait_writable()
  bool reading_body_ = false;   // in wait_for_body()
  double body_budget_ = -1;
  bool body_timed_out_ = false;
  bool closing_ = false;
  bool reset_ = false;  // close with a reset (reset_on_close())
  bool lingering_ = false;  // close_after_answer(): dropping input until the client closes
  std::uint64_t written_ = 0;
  Upgraded* upgraded_ = nullptr;
  std::unique_ptr<Protocol> proto_;
};

}  // namespace spindle::core
