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
// App::handle() returns.
//
// Errors: no exceptions. Calls that talk to the client return false when the
// client went away, a timeout expired or the body was refused; error()
// then says why, in one line. After a false return the app should stop
// producing output; finish() is still allowed and cheap.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace spindle::core {

struct Var {
  std::string_view name;
  std::string_view value;
};

struct Header {
  std::string_view name;
  std::string_view value;
};

class Exchange {
 public:
  virtual ~Exchange() = default;

  // --- request ------------------------------------------------------------

  // CGI-style variables, ready for a WSGI environ:
  //   REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (percent-decoded bytes),
  //   QUERY_STRING, REQUEST_URI, SERVER_PROTOCOL, SERVER_NAME, SERVER_PORT,
  //   REMOTE_ADDR, REMOTE_PORT, CONTENT_TYPE and CONTENT_LENGTH (only when
  //   the request has them), HTTP_* for every other header (duplicates joined
  //   with ", "; header names with '_' are dropped). Behind nginx (uwsgi
  //   protocol) these are what nginx sent, plus anything else it sent.
  virtual std::span<const Var> vars() const = 0;

  // "http" or "https" (from the uwsgi HTTPS / UWSGI_SCHEME variables).
  virtual std::string_view url_scheme() const = 0;

  virtual bool is_head() const = 0;

  // Reads up to n body bytes into buf. Parks while no byte has arrived yet.
  // Returns the count, 0 at the end of the body, or -1 on error (client
  // gone, --socket-timeout, body over --limit-post).
  virtual ssize_t read(char* buf, std::size_t n) = 0;

  // --- response -----------------------------------------------------------

  // Validates and records the status line ("200 OK") and headers, copying
  // what it keeps (the views need only live for the call). Nothing is sent
  // yet: the head goes out with the first body bytes or at finish().
  // May be called again while head_sent() is false (the exc_info case).
  // Returns false with a reason in *why when the status or a header is
  // malformed (the caller then answers 500).
  virtual bool start_response(std::string_view status, std::span<const Header> headers,
                              std::string* why) = 0;
  virtual bool head_sent() const = 0;

  // The app knows the whole body's length (e.g. a one-element list): lets the
  // server send Content-Length instead of chunked framing. Call before the
  // first write; ignored if the app set Content-Length itself.
  virtual void set_length_hint(std::uint64_t n) = 0;

  // Sends body bytes (the head first, if still pending). Empty data is a
  // no-op. Parks while the socket is full.
  virtual bool write(std::string_view data) = 0;

  // Sends count bytes of fd from offset (count == UINT64_MAX: to EOF) with
  // sendfile(2) where the framing allows it.
  virtual bool sendfile(int fd, off_t offset, std::uint64_t count) = 0;

  // Completes the response: the head if still pending, the last chunk, and
  // keep-alive bookkeeping. Idempotent.
  virtual bool finish() = 0;

  // The app failed. Before the head went out: answers `status` with a short
  // body. After: the connection is closed so the client sees a truncated
  // response rather than a wrong one.
  virtual void fail(int status) = 0;

  virtual const std::string& error() const = 0;

  // The response status (0 until start_response), for the access log.
  virtual int status() const = 0;
};

}  // namespace spindle::core
