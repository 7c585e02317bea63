// libFuzzer target: the HTTP request parser (head scanner, llhttp, the
// chunked decoder, Host and target checks) and the CGI variables built from
// what it accepts.
//
// Beyond "no crash, no sanitizer report", it checks the property the
// parser's users rely on: the outcome never depends on how the bytes were
// cut. The input goes once whole and once in pieces (sizes taken from the
// input's first byte); both parsers must agree on every message: the same
// status, the same bytes consumed, the same head, the same body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/http_parser.hh"
#include "core/listener.hh"
#include "core/request_vars.hh"

namespace {

using spindle::core::HttpParser;
using spindle::core::RequestHead;

void check(bool ok) {
  if (!ok) std::abort();
}

void same_head(const RequestHead& a, const RequestHead& b) {
  check(a.method == b.method && a.url == b.url);
  check(a.version_major == b.version_major && a.version_minor == b.version_minor);
  check(a.header_count == b.header_count);
  for (std::size_t i = 0; i < a.header_count; ++i)
    check(a.headers[i].name == b.headers[i].name && a.headers[i].value == b.headers[i].value);
  check(a.keep_alive == b.keep_alive && a.chunked == b.chunked && a.upgrade == b.upgrade);
  check(a.has_content_length == b.has_content_length && a.content_length == b.content_length);
  check(a.authority == b.authority && a.path_at == b.path_at);
}

// Feeds data[off..n) in pieces of `step` until a message completes or an
// error; returns bytes consumed or -1.
long run(HttpParser* p, const std::uint8_t* data, std::size_t n, std::size_t step,
         std::string* body) {
  std::size_t used = 0;
  while (used < n && !p->message_complete()) {
    std::size_t k = n - used < step ? n - used : step;
    long r = p->feed(reinterpret_cast<const char*>(data) + used, k, body);
    if (r < 0) return -1;
    check(static_cast<std::size_t>(r) <= k);
    used += static_cast<std::size_t>(r);
    if (static_cast<std::size_t>(r) < k) break;  // stopped at the end of a message
  }
  return static_cast<long>(used);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t step = 1 + data[0] % 13;
  const HttpParser::Limits limits{static_cast<std::size_t>(64 + (data[0] >> 4) * 64),
                                  (data[0] & 0x80) ? 100u : 0u};
  ++data;
  --size;
  static HttpParser whole, cut;
  whole.set_limits(limits);
  cut.set_limits(limits);
  std::string body_whole, body_cut;
  spindle::core::Listener listener;
  listener.server_name = "127.0.0.1";
  listener.server_port = "80";
  spindle::core::VarsBuilder vars;
  std::size_t off = 0;
  for (int message = 0; message < 8 && off < size; ++message) {
    whole.begin();
    cut.begin();
    body_whole.clear();
    body_cut.clear();
    long a = run(&whole, data + off, size - off, size - off, &body_whole);
    long b = run(&cut, data + off, size - off, step, &body_cut);
    check((a < 0) == (b < 0));
    if (a < 0) {
      check(whole.error_status() == cut.error_status());
      check(whole.error_status() >= 400 && whole.error_status() < 600);
      break;
    }
    check(a == b);
    check(whole.head_complete() == cut.head_complete());
    check(whole.message_complete() == cut.message_complete());
    check(body_whole == body_cut);
    if (limits.max_body) check(body_whole.size() <= limits.max_body);
    if (!whole.head_complete()) break;
    same_head(whole.head(), cut.head());
    build_http_vars(whole.head(), listener, "1.2.3.4", "5", &vars);
    vars.finish();
    if (!whole.message_complete()) break;
    off += static_cast<std::size_t>(a);
  }
  return 0;
}
