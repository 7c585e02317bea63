// The uwsgi binary protocol (what nginx's uwsgi_pass speaks): one request
// per connection, a vars block then the body, the response in HTTP/1.x form
// delimited by the close. See core/protocol.hh and core/uwsgi_codec.hh.
#pragma once

#include <cstdint>

#include "core/exchange.hh"
#include "core/protocol.hh"
#include "core/request_vars.hh"

namespace spindle::core {

class UwsgiProtocol final : public Protocol {
 public:
  explicit UwsgiProtocol(Transport& t) : Protocol(t), ex_(t, *this) {}

  void on_readable() override;
  void begin(Exchange& ex) override;
  ssize_t read_body(Exchange& ex, char* buf, std::size_t n) override;
  Framing framing() const override { return {}; }
  bool next(Exchange& ex, bool reuse) override;

 protected:
  void static_done(bool) override;

 private:
  enum class Parse { kNeedMore, kReady, kFailed };
  Parse parse();

  VarsBuilder vars_;
  std::uint64_t body_left_ = 0;
  std::uint8_t modifier2_ = 0;
  Exchange ex_;
};

}  // namespace spindle::core
