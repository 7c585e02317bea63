// One request and its response, as an application plugin sees it.
//
// core/ builds an Exchange for every request (HTTP or uwsgi protocol) and
// hands it to the App on an async core. The App reads the request variables
// and the body, then produces the response through start_response / write /
// sendfile / finish. Every call that would block parks the calling core
// (never the worker), so these calls may only be made from inside the core
// that runs the request.
//
// Lifetime: the Exchange and every string_view it returns are valid until
// App::handle() returns. The exchange belongs to the connection's protocol
// (core/protocol.hh) and is reused for the next request on it.
//
// Errors: no exceptions. Calls that talk to the client return false when the
// client went away, a timeout expired or the body was refused; error()
// then says why, in one line. After a false return the app should stop
// producing output; finish() is still allowed and cheap.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spindle::core {

struct Var {
  std::string_view name;
  std::string_view value;
};

struct Header {
  std::string_view name;
  std::string_view value;
};

// The response's progress, one state:
//   kHeadPending -> kHeadSent -> kBody -> kDone
//   any state    -> kAborted  (the response cannot complete: close after it)
enum class ResponseState { kHeadPending, kHeadSent, kBody, kDone, kAborted };

class Transport;
class Protocol;
struct Core;

class Exchange {
 public:
  Exchange(Transport& t, Protocol& p) : t_(t), proto_(p) {}
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // --- request ------------------------------------------------------------

  // CGI-style variables, ready for a WSGI environ:
  //   REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (percent-decoded bytes),
  //   QUERY_STRING, REQUEST_URI, SERVER_PROTOCOL, SERVER_NAME, SERVER_PORT,
  //   REMOTE_ADDR, REMOTE_PORT, CONTENT_TYPE and CONTENT_LENGTH (only when
  //   the request has them), HTTP_* for every other header (duplicates joined
  //   with ", "; header names with '_' are dropped). Behind nginx (uwsgi
  //   protocol) these are what nginx sent, plus anything else it sent.
  std::span<const Var> vars() const { return req.vars; }

  // "http" or "https" (from the uwsgi HTTPS / UWSGI_SCHEME variables).
  std::string_view url_scheme() const { return req.scheme; }

  bool is_head() const { return req.is_head; }

  // Reads up to n body bytes into buf. Parks while no byte has arrived yet.
  // Returns the count, 0 at the end of the body, or -1 on error (client
  // gone, --socket-timeout, body over --limit-post).
  ssize_t read(char* buf, std::size_t n);

  // --- response -----------------------------------------------------------

  // Validates and records the status line ("200 OK") and headers, copying
  // what it keeps (the views need only live for the call). Nothing is sent
  // yet: the head goes out with the first body bytes or at finish().
  // May be called again while head_sent() is false (the exc_info case).
  // Returns false with a reason in *why when the status or a header is
  // malformed (the caller then answers 500).
  bool start_response(std::string_view status, std::span<const Header> headers, std::string* why);
  bool head_sent() const { return state_ != ResponseState::kHeadPending; }

  // The app knows the whole body's length (e.g. a one-element list): lets the
  // server send Content-Length instead of chunked framing. Call before the
  // first write; ignored if the app set Content-Length itself.
  void set_length_hint(std::uint64_t n);

  // Sends body bytes (the head first, if still pending). Empty data is a
  // no-op. Parks while the socket is full.
  //
  // more: the caller will write again soon (a generator's next chunk), so
  // small data may be held back, copied, to leave in one send with what
  // follows: chunks produced back to back cost one sendmsg, and the last
  // one travels with the terminating chunk. Held bytes go out when they
  // reach kHoldMax, when a later write finds them from an earlier tick of
  // the coarse clock (a few ms), at finish(), and before the core parks or
  // yields for any reason (the scheduler calls flush()), so a chunk never waits for a
  // successor that waits for something.
  bool write(std::string_view data, bool more = false);

  // Sends what write(data, true) held back, if anything. Parks like write().
  bool flush();
  bool holding() const { return !held_.empty(); }

  static constexpr std::size_t kHoldMax = 16 * 1024;

  // Sends count bytes of fd from offset (count == UINT64_MAX: to EOF) with
  // sendfile(2) where the framing allows it.
  bool sendfile(int fd, off_t offset, std::uint64_t count);

  // Completes the response: the head if still pending, the last chunk, and
  // keep-alive bookkeeping. Idempotent.
  bool finish();

  // The one name for "answer with an error". Before the head went out:
  // answers `status` with a short body. After: the connection is reset
  // (Transport::reset_on_close) so the client sees a truncated response
  // rather than a wrong one or one that looks whole. (Before a core took
  // the request, the same act is Protocol::fail().)
  void fail(int status);

  // Leaves HTTP (a websocket's 101): sends `head` as it is and ends the
  // response; the connection is closed once the app returns (it never
  // carries another request). False if a head went out already or the
  // client went away.
  bool upgrade(std::string_view head);

  const std::string& error() const { return error_; }

  // The response status (0 until start_response), for the access log.
  int status() const { return status_; }

  ResponseState state() const { return state_; }

  // --- core side ----------------------------------------------------------

  // Serves this request and, while the protocol has the next one ready,
  // the following ones, on `core`. Returns when the connection went back to
  // the loop side or was closed.
  void run(Core& core);

  Protocol& protocol() { return proto_; }
  Transport& transport() { return t_; }

  // Filled by the protocol in begin().
  struct Request {
    std::span<const Var> vars;
    std::string_view scheme = "http";
    bool is_head = false;
    bool keep_alive = true;
    std::string line;  // "GET / HTTP/1.1", for logs and --harakiri
    std::uint8_t modifier2 = 0;  // the uwsgi packet's (0 on HTTP), for the access log
  };
  Request req;

  // What the app set with uwsgi.set_logvar() (core/access_log.cc): owned
  // names and values, in pairs, and the view of them the access log reads.
  struct LogVars {
    std::vector<std::string> store;
    std::vector<Var> view;
  };
  LogVars logvars;

  // For the protocol: records why a read failed; the connection will not be
  // reused.
  void read_failed(std::string why) {
    error_ = std::move(why);
    req.keep_alive = false;
    ++read_errors_;
  }

 private:
  void reset();
  void record_done();
  bool abort(std::string why);
  bool send_head(bool final);
  bool send(::iovec* iov, int cnt);
  bool declared() const { return app_length_ || hint_; }
  std::uint64_t room_left() const;
  bool overran();

  Transport& t_;
  Protocol& proto_;
  Core* core_ = nullptr;
  ResponseState state_ = ResponseState::kHeadPending;

  // What start_response recorded.
  std::string status_line_;  // "200 OK"
  std::string head_fields_;  // "Name: value\r\n"...
  int status_ = 0;

  // Framing.
  bool chunked_ = false;
  bool app_length_ = false;
  bool app_date_ = false;    // the app set Date: ours is left out
  bool app_server_ = false;  // the app set Server: ours is left out
  std::uint64_t app_length_value_ = 0;
  bool hint_ = false;
  std::uint64_t hint_value_ = 0;
  bool no_body_ = false;
  std::uint64_t body_sent_ = 0;
  std::uint64_t head_bytes_ = 0;        // the head's size, for the access log
  int head_fields_count_ = 0;           // its header fields, for the access log
  int read_errors_ = 0;                 // failed body reads, for the access log
  std::uint32_t switches_at_start_ = 0; // the core's switches when this began
  std::uint64_t written_at_start_ = 0;  // the transport's count when this began

  std::string out_;  // scratch for the head
  std::string held_;  // framed bytes write(.., true) kept back, head included
  std::int64_t held_since_ms_ = 0;  // coarse monotonic ms of the oldest held byte
  bool flushing_ = false;
  double started_at_ = 0;
  std::string error_;
};

}  // namespace spindle::core
