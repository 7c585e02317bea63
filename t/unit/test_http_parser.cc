// HttpParser: request heads, bodies (plain and chunked), pipelining, and the
// status every kind of bad input maps to. Inputs are also fed in small
// pieces, because that is how they arrive from a socket.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/http_parser.hh"

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
using spindle::core::RequestHead;

// Feeds s in pieces of `step` bytes (0: all at once). Returns the total
// consumed, or -1 as soon as one feed() fails.
long feed_in_pieces(HttpParser* p, const std::string& s, std::size_t step, std::string* body) {
  if (step == 0) step = s.size();
  long total = 0;
  for (std::size_t off = 0; off < s.size(); off += step) {
    std::size_t n = s.size() - off < step ? s.size() - off : step;
    long r = p->feed(s.data() + off, n, body);
    if (r < 0) return -1;
    total += r;
    if (p->message_complete()) break;
  }
  return total;
}

bool header_is(const RequestHead& h, std::size_t i, const char* name, const char* value) {
  return i < h.header_count && h.headers[i].name == name && h.headers[i].value == value;
}

void expect_same_head(const RequestHead& a, const RequestHead& b) {
  assert_string_equal(a.method.c_str(), b.method.c_str());
  assert_string_equal(a.url.c_str(), b.url.c_str());
  assert_int_equal(a.version_major, b.version_major);
  assert_int_equal(a.version_minor, b.version_minor);
  assert_int_equal(a.header_count, b.header_count);
  for (std::size_t i = 0; i < a.header_count; ++i) {
    assert_string_equal(a.headers[i].name.c_str(), b.headers[i].name.c_str());
    assert_string_equal(a.headers[i].value.c_str(), b.headers[i].value.c_str());
  }
  assert_int_equal(a.keep_alive, b.keep_alive);
  assert_int_equal(a.chunked, b.chunked);
  assert_int_equal(a.has_content_length, b.has_content_length);
  assert_int_equal(a.content_length, b.content_length);
  assert_int_equal(a.expect_continue, b.expect_continue);
}

// Parses s whole and returns the error status (0 when it parsed).
int status_of(const std::string& s, HttpParser::Limits limits = {}) {
  HttpParser p;
  p.set_limits(limits);
  std::string body;
  long r = p.feed(s.data(), s.size(), &body);
  if (r < 0) {
    assert_int_not_equal(p.error_status(), 0);
    assert_false(p.error_reason().empty());
    return p.error_status();
  }
  assert_int_equal(p.error_status(), 0);
  return 0;
}

const std::string kSimpleGet =
    "GET /path/to?x=1&y=2 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: t/1.0\r\n"
    "Accept: */*\r\n"
    "X-Empty:\r\n"
    "\r\n";

void test_simple_get(void**) {
  HttpParser p;
  std::string body;
  assert_false(p.head_complete());
  long r = p.feed(kSimpleGet.data(), kSimpleGet.size(), &body);
  assert_int_equal(r, kSimpleGet.size());
  assert_true(p.head_complete());
  assert_true(p.message_complete());
  assert_int_equal(p.error_status(), 0);
  const RequestHead& h = p.head();
  assert_string_equal(h.method.c_str(), "GET");
  assert_string_equal(h.url.c_str(), "/path/to?x=1&y=2");
  assert_int_equal(h.version_major, 1);
  assert_int_equal(h.version_minor, 1);
  assert_int_equal(h.header_count, 4);
  assert_true(header_is(h, 0, "Host", "example.com"));
  assert_true(header_is(h, 1, "User-Agent", "t/1.0"));
  assert_true(header_is(h, 2, "Accept", "*/*"));
  assert_true(header_is(h, 3, "X-Empty", ""));
  assert_true(h.keep_alive);
  assert_false(h.chunked);
  assert_false(h.has_content_length);
  assert_false(h.expect_continue);
  assert_false(h.upgrade);
  assert_true(body.empty());
  assert_int_equal(p.body_received(), 0);
}

void test_header_value_whitespace_trimmed(void**) {
  HttpParser p;
  std::string body;
  const std::string s = "GET / HTTP/1.1\r\nHost: h\r\nX-A:   spaced value  \r\nX-B:\tv\t\r\n\r\n";
  assert_int_equal(p.feed(s.data(), s.size(), &body), s.size());
  assert_true(header_is(p.head(), 1, "X-A", "spaced value"));
  assert_true(header_is(p.head(), 2, "X-B", "v"));
}

void test_keep_alive_rules(void**) {
  struct Case {
    const char* head;
    bool keep_alive;
    int minor;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, 1},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false, 1},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", false, 1},
      {"GET / HTTP/1.0\r\nHost: a\r\n\r\n", false, 0},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, 0},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true, 0},
  };
  for (const Case& c : cases) {
    HttpParser p;
    std::string body, s = c.head;
    assert_int_equal(p.feed(s.data(), s.size(), &body), s.size());
    assert_true(p.message_complete());
    assert_int_equal(p.head().version_minor, c.minor);
    assert_int_equal(p.head().keep_alive, c.keep_alive);
  }
}

void test_head_split_byte_by_byte(void**) {
  const std::string s =
      "POST /split/me?q=%20 HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "X-Long-Header-Name: a value with spaces\r\n"
      "Content-Type: text/plain\r\n"
      "Content-Length: 4\r\n"
      "\r\n"
      "abcd";
  HttpParser whole;
  std::string whole_body;
  assert_int_equal(whole.feed(s.data(), s.size(), &whole_body), s.size());
  assert_true(whole.message_complete());

  HttpParser split;
  std::string split_body;
  std::size_t head_end = s.find("\r\n\r\n") + 4;
  for (std::size_t i = 0; i < s.size(); ++i) {
    assert_false(split.message_complete());
    // The head is complete exactly when its last byte has gone in.
    assert_int_equal(split.head_complete(), i >= head_end);
    assert_int_equal(split.feed(s.data() + i, 1, &split_body), 1);
  }
  assert_true(split.head_complete());
  assert_true(split.message_complete());
  expect_same_head(whole.head(), split.head());
  assert_int_equal(split.head().header_count, 4);
  assert_true(header_is(split.head(), 1, "X-Long-Header-Name", "a value with spaces"));
  assert_string_equal(split_body.c_str(), "abcd");
  assert_string_equal(whole_body.c_str(), "abcd");
}

// A head the limit accepts when it arrives whole is accepted when it
// arrives one byte at a time: the limit is about the head, not about how
// the client's packets were cut.
void test_head_limit_independent_of_split(void**) {
  const std::string s =
      "GET /x HTTP/1.1\r\nHost: h\r\n"
      "X-A-Rather-Long-Header-Name-Of-Forty-Bytes: 1\r\n"
      "X-Another-Rather-Long-Header-Name-Too: 2\r\n"
      "\r\n";
  HttpParser::Limits limits;
  limits.max_head = s.size();
  assert_int_equal(status_of(s, limits), 0);

  HttpParser p;
  p.set_limits(limits);
  std::string body;
  assert_int_equal(feed_in_pieces(&p, s, 1, &body), s.size());
  assert_int_equal(p.error_status(), 0);
  assert_true(p.message_complete());
}

void test_pipelined_requests(void**) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: a\r\nX-1: x\r\nX-2: y\r\n\r\n";
  const std::string second = "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyz";
  const std::string third = "GET /three HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string buf = first + second + third;
  HttpParser p;
  std::string body;

  long r = p.feed(buf.data(), buf.size(), &body);
  assert_int_equal(r, first.size());
  assert_true(p.message_complete());
  assert_string_equal(p.head().url.c_str(), "/one");
  assert_int_equal(p.head().header_count, 3);
  assert_true(body.empty());
  // Until begin(), nothing more is taken.
  assert_int_equal(p.feed(buf.data() + r, buf.size() - r, &body), 0);

  std::size_t off = static_cast<std::size_t>(r);
  p.begin();
  assert_false(p.head_complete());
  assert_false(p.message_complete());
  r = p.feed(buf.data() + off, buf.size() - off, &body);
  assert_int_equal(r, second.size());
  assert_true(p.message_complete());
  assert_string_equal(p.head().method.c_str(), "POST");
  assert_string_equal(p.head().url.c_str(), "/two");
  assert_int_equal(p.head().header_count, 2);
  assert_true(header_is(p.head(), 0, "Host", "b"));
  assert_true(p.head().has_content_length);
  assert_string_equal(body.c_str(), "xyz");

  off += static_cast<std::size_t>(r);
  body.clear();
  p.begin();
  r = p.feed(buf.data() + off, buf.size() - off, &body);
  assert_int_equal(r, third.size());
  assert_true(p.message_complete());
  assert_string_equal(p.head().method.c_str(), "GET");
  assert_string_equal(p.head().url.c_str(), "/three");
  assert_int_equal(p.head().header_count, 1);
  assert_false(p.head().has_content_length);
  assert_true(body.empty());
}

// The next request's head begins in the same buffer but ends in a later one.
void test_pipelined_second_split(void**) {
  const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string buf = first + second.substr(0, 10);
  HttpParser p;
  std::string body;
  assert_int_equal(p.feed(buf.data(), buf.size(), &body), first.size());
  p.begin();
  assert_int_equal(p.feed(buf.data() + first.size(), 10, &body), 10);
  assert_false(p.head_complete());
  const std::string rest = second.substr(10);
  assert_int_equal(p.feed(rest.data(), rest.size(), &body), rest.size());
  assert_true(p.message_complete());
  assert_string_equal(p.head().url.c_str(), "/b");
  assert_true(header_is(p.head(), 0, "Host", "h"));
}

void test_content_length_body(void**) {
  const std::string head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
  const std::string s = head + "hello world";
  for (std::size_t step : {0, 1, 3, 7}) {
    HttpParser p;
    std::string body;
    assert_int_equal(feed_in_pieces(&p, s, step, &body), s.size());
    assert_true(p.message_complete());
    assert_true(p.head().has_content_length);
    assert_int_equal(p.head().content_length, 11);
    assert_false(p.head().chunked);
    assert_string_equal(body.c_str(), "hello world");
    assert_int_equal(p.body_received(), 11);
  }
  // The head alone: complete head, message still waiting for its body.
  HttpParser p;
  std::string body;
  assert_int_equal(p.feed(head.data(), head.size(), &body), head.size());
  assert_true(p.head_complete());
  assert_false(p.message_complete());
  assert_true(body.empty());
  assert_int_equal(p.feed("hello", 5, &body), 5);
  assert_false(p.message_complete());
  assert_int_equal(p.body_received(), 5);
  // Bytes beyond the body belong to the next request.
  const std::string tail = " worldGET";
  assert_int_equal(p.feed(tail.data(), tail.size(), &body), 6);
  assert_true(p.message_complete());
  assert_string_equal(body.c_str(), "hello world");
}

void test_chunked_body(void**) {
  const std::string s =
      "POST /c HTTP/1.1\r\nHost: h\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "5\r\nhello\r\n"
      "1;ext=val\r\n \r\n"
      "A\r\n0123456789\r\n"
      "0\r\n\r\n";
  for (std::size_t step : {0, 1, 2, 5}) {
    HttpParser p;
    std::string body;
    assert_int_equal(feed_in_pieces(&p, s, step, &body), s.size());
    assert_true(p.message_complete());
    assert_true(p.head().chunked);
    assert_false(p.head().has_content_length);
    assert_string_equal(body.c_str(), "hello 0123456789");
    assert_int_equal(p.body_received(), 16);
  }
}

void test_chunked_with_trailers(void**) {
  const std::string head = "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string s = head + "3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other: 1\r\n\r\nGET";
  for (std::size_t step : {0, 1}) {
    HttpParser p;
    std::string body;
    long r = feed_in_pieces(&p, s, step, &body);
    assert_int_equal(r, s.size() - 3);
    assert_true(p.message_complete());
    assert_int_equal(p.error_status(), 0);
    assert_string_equal(body.c_str(), "abc");
    // The head seen at headers-complete is intact at its front.
    assert_true(header_is(p.head(), 0, "Host", "a"));
    assert_true(header_is(p.head(), 1, "Transfer-Encoding", "chunked"));
    assert_string_equal(p.head().url.c_str(), "/t");
  }
}

void test_unsupported_transfer_coding(void**) {
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
  assert_int_equal(
      status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  // Chunked in any case is still chunked.
  assert_int_equal(
      status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"), 0);
}

void test_content_length_with_chunked(void**) {
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                   400);
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                             "Content-Length: 5\r\n\r\n0\r\n\r\n"),
                   400);
}

void test_bad_content_length(void**) {
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"), 400);
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400);
  assert_int_equal(
      status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
      400);
}

void test_malformed_request_line(void**) {
  assert_int_equal(status_of("GET / HTTP/1.1 extra\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / FTP/1.1\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/x.1\r\n\r\n"), 400);
  assert_int_equal(status_of("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  assert_int_equal(status_of("\x01\x02\x03\r\n\r\n"), 400);
}

void test_invalid_header_token(void**) {
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX(y): x\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX\"q: x\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n"), 400);
}

// RFC 9112 5.1: no whitespace inside or after a field name. A proxy in
// front may read "Transfer-Encoding : chunked" differently (smuggling).
void test_header_name_whitespace_or_empty_refused(void**) {
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n"), 400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-Space : x\r\n\r\n"), 400);
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n"
                             "Content-Length: 3\r\n\r\nabc"),
                   400);
  assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\n: novalue\r\n\r\n"), 400);
}

void test_head_too_large(void**) {
  HttpParser::Limits limits;
  limits.max_head = 1024;
  const std::string big(2000, 'a');
  const std::string big_header = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + big + "\r\n\r\n";
  const std::string big_url = "GET /" + big + " HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string many = [] {
    std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 200; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  }();
  for (const std::string& s : {big_header, big_url, many}) {
    assert_int_equal(status_of(s, limits), 431);
    // In small pieces, the head never completes: the limit still holds.
    for (std::size_t step : {1, 100}) {
      const std::string partial = s.substr(0, s.size() - 4);
      HttpParser p;
      p.set_limits(limits);
      std::string body;
      assert_int_equal(feed_in_pieces(&p, partial, step, &body), -1);
      assert_int_equal(p.error_status(), 431);
      assert_false(p.head_complete());
    }
  }
  // Under the limit is fine.
  assert_int_equal(
      status_of("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + big.substr(0, 900) + "\r\n\r\n", limits),
      0);
}

// Whitespace that llhttp skips without a callback still counts as head.
void test_head_limit_counts_skipped_whitespace(void**) {
  HttpParser::Limits limits;
  limits.max_head = 1024;
  const std::string s = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad:" + std::string(4096, ' ');
  HttpParser p;
  p.set_limits(limits);
  std::string body;
  assert_int_equal(feed_in_pieces(&p, s, 256, &body), -1);
  assert_int_equal(p.error_status(), 431);

  // Empty lines before the request line, without end.
  std::string blank;
  for (int i = 0; i < 4096; ++i) blank += "\r\n";
  HttpParser q;
  q.set_limits(limits);
  assert_int_equal(feed_in_pieces(&q, blank, 256, &body), -1);
  assert_int_equal(q.error_status(), 431);
}

void test_body_too_large_at_headers(void**) {
  HttpParser::Limits limits;
  limits.max_body = 100;
  HttpParser p;
  p.set_limits(limits);
  std::string body;
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n";
  assert_int_equal(p.feed(head.data(), head.size(), &body), -1);
  assert_int_equal(p.error_status(), 413);
  assert_false(p.head_complete());

  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", limits),
                   0);
  // 0 means unlimited.
  assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n"),
                   0);
}

void test_chunked_body_too_large(void**) {
  HttpParser::Limits limits;
  limits.max_body = 10;
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  {
    HttpParser p;
    p.set_limits(limits);
    std::string body;
    const std::string s = head + "5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n";
    assert_int_equal(feed_in_pieces(&p, s, 3, &body), s.size());
    assert_true(p.message_complete());
    assert_string_equal(body.c_str(), "abcdefghij");
  }
  for (std::size_t step : {0, 1, 4}) {
    HttpParser p;
    p.set_limits(limits);
    std::string body;
    const std::string s = head + "5\r\nabcde\r\n6\r\nfghijk\r\n0\r\n\r\n";
    assert_int_equal(feed_in_pieces(&p, s, step, &body), -1);
    assert_int_equal(p.error_status(), 413);
    assert_true(p.head_complete());
    assert_false(p.message_complete());
    assert_true(body.size() <= 10);
  }
}

void test_expect_continue(void**) {
  {
    HttpParser p;
    std::string body;
    const std::string s =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(p.feed(s.data(), s.size(), &body), s.size());
    assert_true(p.head_complete());
    assert_false(p.message_complete());
    assert_true(p.head().expect_continue);
    assert_int_equal(p.feed("abc", 3, &body), 3);
    assert_true(p.message_complete());
    // The next message starts without it.
    p.begin();
    const std::string next = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(p.feed(next.data(), next.size(), &body), next.size());
    assert_false(p.head().expect_continue);
  }
  {
    HttpParser p;
    std::string body;
    const std::string s =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n";
    assert_int_equal(p.feed(s.data(), s.size(), &body), s.size());
    assert_true(p.head().expect_continue);
  }
  {
    HttpParser p;
    std::string body;
    const std::string s = "POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(p.feed(s.data(), s.size(), &body), s.size());
    assert_true(p.head_complete());
    assert_false(p.head().expect_continue);
  }
  assert_int_equal(
      status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: teapot\r\n\r\n"), 417);
}

void test_connect_refused(void**) {
  assert_int_equal(status_of("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
                   405);
}

void test_upgrade(void**) {
  HttpParser p;
  std::string body;
  const std::string s =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  const std::string buf = s + "\x81\x00";
  long r = p.feed(buf.data(), buf.size(), &body);
  assert_int_equal(r, s.size());
  assert_true(p.head_complete());
  assert_true(p.head().upgrade);
  assert_true(body.empty());

  HttpParser plain;
  assert_int_equal(plain.feed(kSimpleGet.data(), kSimpleGet.size(), &body), kSimpleGet.size());
  assert_false(plain.head().upgrade);
}

// A server that does not switch protocols answers an Upgrade request as
// plain HTTP (curl's "Upgrade: h2c" is the common case); the connection
// then carries on with the next request.
void test_request_after_declined_upgrade(void**) {
  HttpParser p;
  std::string body;
  const std::string first =
      "GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string buf = first + second;
  long r = p.feed(buf.data(), buf.size(), &body);
  assert_int_equal(r, first.size());
  assert_true(p.message_complete());
  assert_true(p.head().upgrade);
  p.begin();
  r = p.feed(buf.data() + first.size(), second.size(), &body);
  assert_int_equal(r, second.size());
  assert_true(p.message_complete());
  assert_string_equal(p.head().url.c_str(), "/b");
  assert_false(p.head().upgrade);
}

// After begin(), nothing of the previous message shows through.
void test_begin_resets_head(void**) {
  HttpParser p;
  std::string body;
  const std::string a =
      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\nX-1: "
      "1\r\n\r\nhi";
  assert_int_equal(p.feed(a.data(), a.size(), &body), a.size());
  assert_int_equal(p.head().header_count, 4);
  assert_int_equal(p.body_received(), 2);
  p.begin();
  assert_false(p.head_complete());
  assert_false(p.message_complete());
  assert_int_equal(p.body_received(), 0);
  assert_int_equal(p.head().header_count, 0);
  const std::string b = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  body.clear();
  assert_int_equal(p.feed(b.data(), b.size(), &body), b.size());
  assert_string_equal(p.head().method.c_str(), "GET");
  assert_string_equal(p.head().url.c_str(), "/b");
  assert_int_equal(p.head().header_count, 1);
  assert_true(header_is(p.head(), 0, "Host", "h"));
  assert_false(p.head().has_content_length);
  assert_false(p.head().expect_continue);
  assert_true(body.empty());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_get),
      cmocka_unit_test(test_header_value_whitespace_trimmed),
      cmocka_unit_test(test_keep_alive_rules),
      cmocka_unit_test(test_head_split_byte_by_byte),
      cmocka_unit_test(test_head_limit_independent_of_split),
      cmocka_unit_test(test_pipelined_requests),
      cmocka_unit_test(test_pipelined_second_split),
      cmocka_unit_test(test_content_length_body),
      cmocka_unit_test(test_chunked_body),
      cmocka_unit_test(test_chunked_with_trailers),
      cmocka_unit_test(test_unsupported_transfer_coding),
      cmocka_unit_test(test_content_length_with_chunked),
      cmocka_unit_test(test_bad_content_length),
      cmocka_unit_test(test_malformed_request_line),
      cmocka_unit_test(test_invalid_header_token),
      cmocka_unit_test(test_header_name_whitespace_or_empty_refused),
      cmocka_unit_test(test_head_too_large),
      cmocka_unit_test(test_head_limit_counts_skipped_whitespace),
      cmocka_unit_test(test_body_too_large_at_headers),
      cmocka_unit_test(test_chunked_body_too_large),
      cmocka_unit_test(test_expect_continue),
      cmocka_unit_test(test_connect_refused),
      cmocka_unit_test(test_upgrade),
      cmocka_unit_test(test_request_after_declined_upgrade),
      cmocka_unit_test(test_begin_resets_head),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
