// HTTP/1.0 and 1.1 on a transport: llhttp parsing (core/http_parser.hh),
// keep-alive, pipelining, 100-continue, chunked request bodies. One
// Exchange, reused for each request in turn. See core/protocol.hh.
#pragma once

#include <cstdint>
#include <string>

#include "core/exchange.hh"
#include "core/http_parser.hh"
#include "core/loop.hh"
#include "core/protocol.hh"
#include "core/request_vars.hh"

namespace spindle::core {

class Http1Protocol final : public Protocol {
 public:
  explicit Http1Protocol(Transport& t);

  void on_readable() override;
  void begin(Exchange& ex) override;
  ssize_t read_body(Exchange& ex, char* buf, std::size_t n) override;
  Framing framing() const override;
  // A body the parser refused (413...) or that came too slowly (408).
  int refused_status() const override;
  bool next(Exchange& ex, bool reuse) override;

 protected:
  void static_done(bool reuse) override;

 private:
  enum class Pipelined { kNone, kHead, kFailed };
  Pipelined start_next();
  long feed_scratch(const char* p, std::size_t n);
  bool buffering_body();
  bool drain_body(Exchange& ex);
  void submit();

  HttpParser parser_;
  VarsBuilder vars_;
  std::string body_;  // de-chunked bytes not yet read by the app
  std::size_t body_off_ = 0;
  bool continue_sent_ = false;
  bool vars_built_ = false;              // by submit(), for the static files' lookup
  std::int64_t body_wait_from_ms_ = -1;  // when the loop side began reading the body
  Task static_next_;                     // a pipelined request handed back to the loop side
  Exchange ex_;
};

}  // namespace spindle::core
