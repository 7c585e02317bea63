// A wire format on a Transport: HTTP/1.x (http1_protocol.cc) or the uwsgi
// binary protocol (uwsgi_protocol.cc). The protocol turns bytes into
// requests and owns the Exchange that serves them; everything that differs
// between wire formats is here and nowhere else.
//
// Flow
//  - Loop side: the transport calls on_readable() whenever the fd is
//    readable and no core holds the connection. The protocol reads (through
//    the transport's buffer), parses, and either waits for more, answers bad
//    input with fail(), or submits its Exchange to the scheduler.
//  - Core side: the Exchange calls begin() before the app runs, read_body()
//    for wsgi.input, and next() when the response is complete; next() either
//    has the following (pipelined) request ready on the same core, or hands
//    the connection back to the loop side, or closes it.
//
// A protocol that serves many exchanges at once (HTTP/2) or that leaves
// HTTP (a websocket after the upgrade) is another implementation of this
// interface on the same transport; see DESIGN.md.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "core/access_log.hh"
#include "core/exchange.hh"
#include "core/listener.hh"
#include "core/static_send.hh"

namespace spindle::core {

class Transport;
class Exchange;

// What a response head may use on this protocol.
struct Framing {
  bool chunked = false;              // Transfer-Encoding: chunked is understood
  bool announce_keep_alive = false;  // HTTP/1.0: keep-alive must be said
  bool origin = false;  // we answer the client itself: Date and Server are ours to send
};

class Protocol {
 public:
  explicit Protocol(Transport& t) : t_(t) {}
  virtual ~Protocol() = default;

  // Loop side: read and parse until a request head is complete (then the
  // exchange is submitted), more bytes are needed, or the input is bad.
  virtual void on_readable() = 0;

  // Core side, for the Exchange.
  // Fills the request (variables, method, scheme, keep-alive, request line).
  virtual void begin(Exchange& ex) = 0;
  // Reads request body bytes: >0 count, 0 at the end, -1 on error (the
  // exchange's error() says why).
  virtual ssize_t read_body(Exchange& ex, char* buf, std::size_t n) = 0;
  virtual Framing framing() const = 0;
  // A status that explains a failed request better than the app's (the
  // body was refused as too large), or 0.
  virtual int refused_status() const { return 0; }
  // The response is complete; `reuse`: the connection may carry another
  // request. True when the next request is ready to run on this core now.
  virtual bool next(Exchange& ex, bool reuse) = 0;

  // The one way to answer with an error outside a running app: logs the
  // reason, sends `status` with a short body (best effort, never blocking:
  // the peer misbehaved or the worker is stopping) and closes.
  void fail(int status, const std::string& reason);

  // The Date and Server fields ("Name: value\r\n") an answer of ours
  // carries: none behind nginx, which adds its own.
  std::string origin_fields();

  Transport& transport() { return t_; }

  // Loop side: the socket drained while a static file's answer was in
  // flight (core/static_send.hh); sends more.
  void on_writable();

 protected:
  // Loop side, with a whole request in (head, and no body): answers it from
  // --static-map & co. without a core when they name a file, or refuse it.
  // True when the request was taken; static_done() follows once it is out.
  bool try_static(std::span<const Var> vars, bool keep_alive, bool announce_keep_alive,
                  std::string_view request_line);
  // The static answer is out and `reuse` says whether the connection may
  // carry another request: read or parse the next one, or close.
  virtual void static_done(bool reuse) = 0;

  Transport& t_;

 private:
  void pump_static();

  // A static answer and what it logs, made with the connection's first one:
  // most connections never serve a file, and the ones parked in an app
  // should not carry its buffers.
  struct StaticState {
    StaticSend send;
    AccessCopy access;  // the request, for the access log
    bool keep_alive = false;
    double started = 0;
  };
  std::unique_ptr<StaticState> static_;
};

// The protocol a listener speaks.
std::unique_ptr<Protocol> make_protocol(Proto p, Transport& t);

// A short error answer ("413 Content Too Large\n", Connection: close) into
// *out, with `fields` ("Name: value\r\n"...) in its head; the body is left
// out when answering a HEAD request.
void error_answer(int status, bool head_request, std::string* out, std::string_view fields = {});

}  // namespace spindle::core
