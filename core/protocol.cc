// What every protocol shares: the error answer, and the choice of protocol
// by listener. See protocol.hh.
#include "core/protocol.hh"

#include <cstdio>

#include "core/config.hh"
#include "core/http1_protocol.hh"
#include "core/http_date.hh"
#include "core/log.hh"
#include "core/transport.hh"
#include "core/uwsgi_protocol.hh"
#include "core/worker.hh"

namespace spindle::core {

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

}  // namespace

void error_answer(int status, bool head_request, std::string* out, std::string_view fields) {
  char body[64];
  int blen = snprintf(body, sizeof body, "%d %s\n", status, reason_phrase(status));
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n",
                      status, reason_phrase(status), blen);
  out->assign(head, static_cast<std::size_t>(hlen));
  out->append(fields);
  out->append("\r\n");
  if (!head_request) out->append(body, static_cast<std::size_t>(blen));
}

std::string Protocol::origin_fields() {
  std::string out;
  if (framing().origin)
    append_origin_fields(&out, true, !t_.worker().cfg().no_server_header);
  return out;
}

void Protocol::fail(int status, const std::string& reason) {
  log(Level::kWarn, "%s:%s %d %s; closing", t_.peer_addr().c_str(), t_.peer_port().c_str(), status,
      reason.c_str());
  std::string out;
  error_answer(status, false, &out, origin_fields());
  t_.send_now(out);
  // The client may still be sending what was refused (a body too large).
  t_.close_after_answer(true);
}

std::unique_ptr<Protocol> make_protocol(Proto p, Transport& t) {
  if (p == Proto::kUwsgi) return std::make_unique<UwsgiProtocol>(t);
  return std::make_unique<Http1Protocol>(t);
}

}  // namespace spindle::core
