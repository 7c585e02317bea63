// Hostile request heads and bodies: regression tests for what a security
// review found the parser let through (each test is named after what
// broke). Every input is also fed in small pieces, because the packet
// boundaries must never change the outcome.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/http_parser.hh"
#include "core/listener.hh"
#include "core/request_vars.hh"

// Project headers come before <cmocka.h>: its fail() macro would rewrite
// any member function named fail (HttpParser has one).
extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::HttpParser;
using spindle::core::Listener;
using spindle::core::RequestHead;
using spindle::core::VarsBuilder;

// Feeds s in pieces of `step` bytes (0: all at once); returns the error
// status, or 0 when a whole message parsed. *body gets the body.
int parse(HttpParser* p, const std::string& s, std::size_t step, std::string* body) {
  if (step == 0) step = s.size();
  for (std::size_t off = 0; off < s.size() && !p->message_complete(); off += step) {
    std::size_t n = s.size() - off < step ? s.size() - off : step;
    long r = p->feed(s.data() + off, n, body);
    if (r < 0) {
      assert_int_not_equal(p->error_status(), 0);
      return p->error_status();
    }
  }
  return p->message_complete() ? 0 : -1;  // -1: still waiting for bytes
}

// The status for s, which must be the same however s is cut.
int status_of(const std::string& s, HttpParser::Limits limits = {}) {
  int first = -2;
  for (std::size_t step : {0, 1, 2, 7}) {
    HttpParser p;
    p.set_limits(limits);
    std::string body;
    int st = parse(&p, s, step, &body);
    if (first == -2) first = st;
    assert_int_equal(st, first);
  }
  return first;
}

std::string host_var(const std::string& s) {
  HttpParser p;
  std::string body;
  assert_int_equal(parse(&p, s, 0, &body), 0);
  Listener l;
  l.server_name = "127.0.0.1";
  l.server_port = "80";
  VarsBuilder b;
  build_http_vars(p.head(), l, "1.2.3.4", "5", &b);
  b.finish();
  return std::string(b.find("HTTP_HOST"));
}

const std::string kChunkedHead =
    "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

// A chunked request in one packet had its trailer merged into the headers:
// Host became "a, evil" and a trailer Content-Length cut wsgi.input.
void test_trailer_fields_never_become_headers(void**) {
  const std::string s = kChunkedHead +
                        "5\r\nhello\r\n0\r\nHost: evil\r\nContent-Length: 3\r\n"
                        "Cookie: session=stolen\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
  for (std::size_t step : {0, 1, 3, 100}) {
    HttpParser p;
    std::string body;
    assert_int_equal(parse(&p, s, step, &body), 0);
    assert_string_equal(body.c_str(), "hello");
    const RequestHead& h = p.head();
    assert_int_equal(h.header_count, 2);
    assert_string_equal(h.headers[0].value.c_str(), "a");
    assert_false(h.has_content_length);
  }
  assert_string_equal(host_var(s).c_str(), "a");
}

void test_trailer_section_is_bounded(void**) {
  HttpParser::Limits limits;
  limits.max_head = 1024;
  std::string s = kChunkedHead + "0\r\n";
  for (int i = 0; i < 100; ++i)
    s += "X-Trailer-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
  s += "\r\n";
  assert_int_equal(status_of(s, limits), 431);
  assert_int_equal(status_of(kChunkedHead + "0\r\n folded: x\r\n\r\n"), 400);
  assert_int_equal(status_of(kChunkedHead + "0\r\nX: a\nY: b\r\n\r\n"), 400);
}

// A 500 KB chunk extension was accepted with --limit-post 1000.
void test_chunk_extensions_count_toward_the_body_limit(void**) {
  HttpParser::Limits limits;
  limits.max_body = 1000;
  const std::string big_ext = "5;x=" + std::string(500 * 1024, 'a') + "\r\nhello\r\n0\r\n\r\n";
  assert_int_equal(status_of(kChunkedHead + big_ext, limits), 413);
  // Without --limit-post, the per-message bound (the head limit) holds.
  assert_int_equal(status_of(kChunkedHead + big_ext), 400);
  // Many small ones add up.
  std::string many;
  for (int i = 0; i < 400; ++i) many += "1;e=vvvvvvvvvvvvvvvvvvvvvvvvv\r\nx\r\n";
  assert_int_equal(status_of(kChunkedHead + many + "0\r\n\r\n", limits), 413);
  // Leading zeros are bounded too.
  assert_int_equal(status_of(kChunkedHead + std::string(100, '0') + "5\r\nhello\r\n0\r\n\r\n"),
                   400);
}

// RFC 9112 7.1.1: BWS around ';' and '=' was refused.
void test_chunk_extension_with_whitespace_is_accepted(void**) {
  for (const char* line :
       {"5 ; a=b", "5;a=b", "5 ;a", "5\t; a = b", "5; a=\"q \\\" q\"", "5;a;b=c ; d"}) {
    HttpParser p;
    std::string body;
    const std::string s = kChunkedHead + line + "\r\nhello\r\n0\r\n\r\n";
    for (std::size_t step : {0, 1}) {
      HttpParser q;
      body.clear();
      assert_int_equal(parse(&q, s, step, &body), 0);
      assert_string_equal(body.c_str(), "hello");
    }
  }
  for (const char* line :
       {"5 ", "5 x", "5;", "5;=b", "5;a=", "5;a=\"open", "5;a b", "5;a=b c", " 5", "5;a=\x01"}) {
    assert_int_equal(status_of(kChunkedHead + line + "\r\nhello\r\n0\r\n\r\n"), 400);
  }
}

void test_chunk_framing_needs_crlf(void**) {
  assert_int_equal(status_of(kChunkedHead + "5\nhello\r\n0\r\n\r\n"), 400);
  assert_int_equal(status_of(kChunkedHead + "5\r\nhelloX\r\n0\r\n\r\n"), 400);
  assert_int_equal(status_of(kChunkedHead + "5\r\nhello\r\n0\r\n\n"), 400);
}

// RFC 9112 3.2: Host is required in HTTP/1.1, once, and valid.
void test_http11_without_host_is_400(void**) {
  assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.0\r\n\r\n"), 0);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);  // empty is valid
}

void test_two_hosts_is_400(void**) {
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

void test_invalid_host_is_400(void**) {
  for (const char* v :
       {"a b/c", "a/b", "x, evil", "a@b", "[::1", "[]", "a:b:c", "a:8x", "a%zz", "\"a\""}) {
    assert_int_equal(status_of(std::string("GET / HTTP/1.1\r\nHost: ") + v + "\r\n\r\n"), 400);
  }
  for (const char* v : {"example.com", "example.com:8080", "127.0.0.1:1", "[::1]:80", "[::1]",
                        "xn--bcher-kva.example", "a_b.c~d", "host:", "a%20b"}) {
    assert_int_equal(status_of(std::string("GET / HTTP/1.1\r\nHost: ") + v + "\r\n\r\n"), 0);
  }
}

// RFC 9112 3.2.2: the absolute form's authority is the host; userinfo
// must never become HTTP_HOST.
void test_absolute_form_userinfo_is_refused(void**) {
  assert_int_equal(status_of("GET http://user:pass@evil/x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET http://@evil/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_string_equal(host_var("GET http://origin:81/x HTTP/1.1\r\nHost: a\r\n\r\n").c_str(),
                      "origin:81");
  assert_string_equal(host_var("GET HTTPS://origin/x HTTP/1.1\r\nHost: a\r\n\r\n").c_str(),
                      "origin");
}

void test_absolute_form_other_scheme_is_400(void**) {
  for (const char* t :
       {"ftp://x/", "file:///etc/passwd", "javascript:alert(1)", "http:/x", "http:x", "http://",
        "http:///x", "http://:80/", "http://a b/", "x", "a/b"}) {
    assert_int_equal(status_of(std::string("GET ") + t + " HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  }
}

void test_asterisk_only_with_options(void**) {
  assert_int_equal(status_of("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  assert_int_equal(status_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 400);
}

void test_fragment_or_two_spaces_in_request_line_is_400(void**) {
  assert_int_equal(status_of("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET /a?q#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

// "Transfer-Encoding:\r\n chunked" was decoded as chunked.
void test_obs_fold_is_400_not_folded(void**) {
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n"
                             "\r\n0\r\n\r\n"),
                   400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
}

// Extension methods were refused with 400; RFC 9110 9.1 allows any token.
void test_extension_methods_reach_the_app(void**) {
  for (const char* m :
       {"PROPFIND", "PURGE", "BREW", "get", "X-CUSTOM_1", "QUERY", "M!#$%&'*+.^`|~"}) {
    const std::string s = std::string(m) + " /x HTTP/1.1\r\nHost: a\r\n\r\n";
    for (std::size_t step : {0, 1}) {
      HttpParser p;
      std::string body;
      assert_int_equal(parse(&p, s, step, &body), 0);
      assert_string_equal(p.head().method.c_str(), m);
      assert_string_equal(p.head().url.c_str(), "/x");
    }
  }
  // A body is framed the same way for any method.
  HttpParser p;
  std::string body;
  assert_int_equal(
      parse(&p, "FROB /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 1, &body), 0);
  assert_string_equal(body.c_str(), "abc");
  // Not tokens: still 400.
  assert_int_equal(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of("G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert_int_equal(status_of(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  // Nor a method as long as the head limit.
  HttpParser::Limits limits;
  limits.max_head = 256;
  assert_int_equal(status_of(std::string(300, 'M') + " / HTTP/1.1\r\nHost: a\r\n\r\n", limits),
                   431);
}

// Empty lines before a request line are skipped, as RFC 9112 2.2 asks.
void test_leading_empty_lines_skipped(void**) {
  HttpParser p;
  std::string body;
  assert_int_equal(parse(&p, "\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", 1, &body), 0);
  assert_string_equal(p.head().url.c_str(), "/x");
  assert_int_equal(status_of("\r\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

// The fuzzer's property: a bad byte early in a head gets its status whether
// the head arrives whole or cut, even when the head also outgrows its limit
// (or breaks the scanner's rules) further on.
void test_first_error_wins_however_the_bytes_are_cut(void**) {
  HttpParser::Limits limits;
  limits.max_head = 200;
  const std::string bad_char = "GET / HTTP/1.1\r\nHost: a\r\nX\x01: y\r\n";
  assert_int_equal(status_of(bad_char + "X-Pad: " + std::string(400, 'p') + "\r\n\r\n", limits),
                   400);
  assert_int_equal(status_of(bad_char + " folded\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(400, 'p'), limits),
                   431);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trailer_fields_never_become_headers),
      cmocka_unit_test(test_trailer_section_is_bounded),
      cmocka_unit_test(test_chunk_extensions_count_toward_the_body_limit),
      cmocka_unit_test(test_chunk_extension_with_whitespace_is_accepted),
      cmocka_unit_test(test_chunk_framing_needs_crlf),
      cmocka_unit_test(test_http11_without_host_is_400),
      cmocka_unit_test(test_two_hosts_is_400),
      cmocka_unit_test(test_invalid_host_is_400),
      cmocka_unit_test(test_absolute_form_userinfo_is_refused),
      cmocka_unit_test(test_absolute_form_other_scheme_is_400),
      cmocka_unit_test(test_asterisk_only_with_options),
      cmocka_unit_test(test_fragment_or_two_spaces_in_request_line_is_400),
      cmocka_unit_test(test_obs_fold_is_400_not_folded),
      cmocka_unit_test(test_extension_methods_reach_the_app),
      cmocka_unit_test(test_leading_empty_lines_skipped),
      cmocka_unit_test(test_first_error_wins_however_the_bytes_are_cut),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
