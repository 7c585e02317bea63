// A client connection and the request it carries.
//
// Two halves, one object:
//  - loop side (connection.cc): reads bytes in loop callbacks until a request
//    head is complete, rejects bad input (400/413/431/501, then close), then
//    submits itself to the scheduler. Idle and head timeouts live here.
//  - core side (exchange.cc): the Exchange the app sees, run on an async
//    core: body reads and response writes park the core on EAGAIN. After the
//    response, serve() takes the next pipelined request or hands the
//    connection back to the loop side.
// The connection is owned by the Worker's list; close() destroys it.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/exchange.hh"
#include "core/http_parser.hh"
#include "core/listener.hh"
#include "core/loop.hh"
#include "core/read_buffer.hh"
#include "core/request_vars.hh"

namespace spindle::core {

class Worker;
struct Core;

class Connection final : public Exchange {
 public:
  Connection(Worker& worker, const Listener& listener, int fd, const sockaddr_storage& peer);
  ~Connection() override;

  // Loop side.
  void start();       // first read (the data is often there already)
  void close_now();   // from the loop side or the core side; destroys this
  bool idle() const;  // between requests with nothing read: safe to close on drain
  // Answers `status` (a short body, Connection: close) and destroys this.
  void refuse(int status, const std::string& reason) { reject(status, reason); }

  // Core side: serve requests until the connection goes back to the loop or
  // closes.
  void serve(Core& core);

  // Exchange.
  std::span<const Var> vars() const override { return vars_span_; }
  std::string_view url_scheme() const override { return scheme_; }
  bool is_head() const override { return is_head_; }
  ssize_t read(char* buf, std::size_t n) override;
  bool start_response(std::string_view status, std::span<const Header> headers,
                      std::string* why) override;
  bool head_sent() const override { return head_sent_; }
  void set_length_hint(std::uint64_t n) override;
  bool write(std::string_view data) override;
  bool sendfile(int fd, off_t offset, std::uint64_t count) override;
  bool finish() override;
  void fail(int status) override;
  const std::string& error() const override { return error_; }
  int status() const override { return status_; }

  Connection* prev = nullptr;  // the worker's list
  Connection* next = nullptr;

 private:
  enum class State { kReading, kQueued, kActive };
  enum class Parse { kNeedMore, kReady, kClosed };

  static void on_io(IoWatcher* w, int revents);
  static void on_timer(Timer* t);
  void on_readable();
  void wait_for_request();
  Parse parse_uwsgi();
  void reject(int status, const std::string& reason);
  void begin_request();
  void end_request();
  bool drain_body();

  // Core-side I/O.
  // Reads land in one worker-wide scratch buffer and go to the parser at
  // once (no park in between); what it leaves is kept in in_.
  static constexpr std::size_t kScratch = 64 * 1024;
  static char* scratch();
  long feed_scratch(const char* p, std::size_t n);
  ssize_t read_some(char* buf, std::size_t n);
  bool wait_io(int interest);         // park on fd_; false (error_ set) on timeout/cancel
  bool abort_with(std::string why);   // the response cannot complete: close after it
  bool send_iov(struct iovec* iov, int cnt);
  bool send_head(bool final);
  void build_error(int status);
  bool declared() const;          // the body's length is known (app's or hint)
  std::uint64_t room_left() const;
  bool overran();

  Worker& worker_;
  const Listener& listener_;
  int fd_;
  std::string peer_addr_;
  std::string peer_port_;
  IoWatcher io_;
  Timer timer_;                    // head and keep-alive idle timeout (lazy)
  std::int64_t idle_deadline_ms_ = 0;
  State state_ = State::kReading;
  Core* core_ = nullptr;

  ReadBuffer in_;
  std::size_t in_start_ = 0;
  std::size_t in_end_ = 0;
  std::size_t since_request_ = 0;  // bytes received toward the next request
  bool bytes_pending_ = false;     // the next request's bytes arrived while a core served

  HttpParser parser_;
  VarsBuilder vars_;
  std::span<const Var> vars_span_;
  std::string_view scheme_ = "http";
  bool is_head_ = false;

  // Body.
  std::string body_;          // de-chunked bytes not yet read by the app
  std::size_t body_off_ = 0;
  std::uint64_t uwsgi_body_left_ = 0;
  bool continue_sent_ = false;

  // Response.
  std::string status_line_;   // "200 OK"
  std::string head_fields_;   // "Name: value\r\n"...
  std::string out_;           // scratch for the head
  int status_ = 0;
  bool started_ = false;
  bool head_sent_ = false;
  bool finished_ = false;
  bool aborted_ = false;
  bool chunked_ = false;
  bool app_length_ = false;
  std::uint64_t app_length_value_ = 0;
  bool hint_ = false;
  std::uint64_t hint_value_ = 0;
  bool keep_alive_ = true;
  bool no_body_ = false;
  std::uint64_t body_sent_ = 0;
  double started_at_ = 0;
  std::string request_line_;
  std::string error_;
};

}  // namespace spindle::core
