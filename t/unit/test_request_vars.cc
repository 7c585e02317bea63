// The CGI variables built from an HTTP head: what the application sees in
// its environ. Heads come from the real parser, so the test covers what a
// client can actually send.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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

using spindle::core::build_http_vars;
using spindle::core::HttpParser;
using spindle::core::Listener;
using spindle::core::percent_decode;
using spindle::core::RequestHead;
using spindle::core::Var;
using spindle::core::VarsBuilder;

Listener test_listener() {
  Listener l;
  l.spec = "127.0.0.1:8080";
  l.server_name = "127.0.0.1";
  l.server_port = "8080";
  return l;
}

// Parses a whole head (it must be valid) and builds its vars into *out.
void vars_for(const std::string& head, VarsBuilder* out, HttpParser* p) {
  std::string body;
  long r = p->feed(head.data(), head.size(), &body);
  assert_int_equal(r, head.size());
  assert_true(p->head_complete());
  build_http_vars(p->head(), test_listener(), "10.1.2.3", "54321", out);
  out->finish();
}

std::size_t count_named(std::span<const Var> vars, std::string_view name) {
  std::size_t n = 0;
  for (const Var& v : vars) n += v.name == name;
  return n;
}

bool var_is(const VarsBuilder& b, std::string_view name, std::string_view value) {
  return b.find(name) == value;
}

void test_request_line_vars(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for("GET /a%20b/c?x=1&y=%20z HTTP/1.1\r\nHost: h\r\n\r\n", &b, &p);
  assert_true(var_is(b, "REQUEST_METHOD", "GET"));
  assert_true(var_is(b, "SCRIPT_NAME", ""));
  assert_true(var_is(b, "PATH_INFO", "/a b/c"));
  assert_true(var_is(b, "QUERY_STRING", "x=1&y=%20z"));
  assert_true(var_is(b, "REQUEST_URI", "/a%20b/c?x=1&y=%20z"));
  assert_true(var_is(b, "SERVER_PROTOCOL", "HTTP/1.1"));
  assert_true(var_is(b, "SERVER_NAME", "127.0.0.1"));
  assert_true(var_is(b, "SERVER_PORT", "8080"));
  assert_true(var_is(b, "REMOTE_ADDR", "10.1.2.3"));
  assert_true(var_is(b, "REMOTE_PORT", "54321"));
  assert_true(var_is(b, "HTTP_HOST", "h"));
}

void test_method_and_protocol(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for("DELETE /x HTTP/1.0\r\n\r\n", &b, &p);
  assert_true(var_is(b, "REQUEST_METHOD", "DELETE"));
  assert_true(var_is(b, "SERVER_PROTOCOL", "HTTP/1.0"));
  assert_true(var_is(b, "QUERY_STRING", ""));
  assert_true(var_is(b, "PATH_INFO", "/x"));
}

void test_listener_and_peer(void**) {
  HttpParser p;
  std::string body;
  const std::string s = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  p.feed(s.data(), s.size(), &body);
  Listener l;
  l.server_name = "::1";
  l.server_port = "9443";
  VarsBuilder b;
  build_http_vars(p.head(), l, "fe80::1", "1", &b);
  b.finish();
  assert_true(var_is(b, "SERVER_NAME", "::1"));
  assert_true(var_is(b, "SERVER_PORT", "9443"));
  assert_true(var_is(b, "REMOTE_ADDR", "fe80::1"));
  assert_true(var_is(b, "REMOTE_PORT", "1"));
}

void test_percent_decode(void**) {
  assert_string_equal(percent_decode("/plain").c_str(), "/plain");
  assert_string_equal(percent_decode("%41%42c").c_str(), "ABc");
  assert_string_equal(percent_decode("%2f%2F").c_str(), "//");
  // UTF-8 escapes decode to the raw bytes, not to one character.
  std::string euro = percent_decode("%E2%82%AC");
  assert_int_equal(euro.size(), 3);
  assert_int_equal(static_cast<unsigned char>(euro[0]), 0xE2);
  assert_int_equal(static_cast<unsigned char>(euro[1]), 0x82);
  assert_int_equal(static_cast<unsigned char>(euro[2]), 0xAC);
  // Invalid or cut escapes stay as they are.
  assert_string_equal(percent_decode("%zz").c_str(), "%zz");
  assert_string_equal(percent_decode("a%4").c_str(), "a%4");
  assert_string_equal(percent_decode("a%").c_str(), "a%");
  assert_string_equal(percent_decode("%4g%41").c_str(), "%4gA");
  assert_string_equal(percent_decode("%%41").c_str(), "%A");
  assert_string_equal(percent_decode("100%").c_str(), "100%");
  // Decoding is done once: %2541 is "%41", not "A".
  assert_string_equal(percent_decode("%2541").c_str(), "%41");
  std::string nul = percent_decode("a%00b");
  assert_int_equal(nul.size(), 3);
  assert_int_equal(nul[1], '\0');
  assert_true(percent_decode("").empty());
}

void test_path_info_decoding(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for("GET /a%2Fb/%E2%82%AC/%zz/%41 HTTP/1.1\r\nHost: h\r\n\r\n", &b, &p);
  // %2F becomes a '/' byte like any other: the app cannot tell them apart.
  assert_true(var_is(b, "PATH_INFO", "/a/b/\xE2\x82\xAC/%zz/A"));
  assert_true(var_is(b, "REQUEST_URI", "/a%2Fb/%E2%82%AC/%zz/%41"));
}

void test_query_string(void**) {
  struct Case {
    const char* target;
    const char* path;
    const char* query;
  } cases[] = {
      {"/p", "/p", ""},        {"/p?", "/p", ""},
      {"/p?a=1", "/p", "a=1"}, {"/p?a=%2F&b=c+d", "/p", "a=%2F&b=c+d"},
      {"/p?a?b", "/p", "a?b"}, {"/p%3Fq?r", "/p?q", "r"},
  };
  for (const Case& c : cases) {
    HttpParser p;
    VarsBuilder b;
    vars_for(std::string("GET ") + c.target + " HTTP/1.1\r\nHost: h\r\n\r\n", &b, &p);
    assert_string_equal(std::string(b.find("PATH_INFO")).c_str(), c.path);
    assert_string_equal(std::string(b.find("QUERY_STRING")).c_str(), c.query);
    assert_string_equal(std::string(b.find("REQUEST_URI")).c_str(), c.target);
  }
}

// RFC 9112 3.2.2: the target's authority wins over the Host header.
void test_absolute_form_authority_is_the_host(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for("GET http://origin.example:8080/x HTTP/1.1\r\nHost: other.example\r\n\r\n", &b, &p);
  assert_string_equal(std::string(b.find("HTTP_HOST")).c_str(), "origin.example:8080");
  HttpParser p2;
  VarsBuilder b2;
  vars_for("GET http://origin.example?q HTTP/1.1\r\nHost: origin.example\r\n\r\n", &b2, &p2);
  assert_string_equal(std::string(b2.find("HTTP_HOST")).c_str(), "origin.example");
  assert_string_equal(std::string(b2.find("PATH_INFO")).c_str(), "/");
}

void test_absolute_form_target(void**) {
  struct Case {
    const char* target;
    const char* path;
    const char* query;
  } cases[] = {
      {"http://host/x?y", "/x", "y"},   {"http://host:8080/a%20b", "/a b", ""},
      {"https://host/s/t", "/s/t", ""}, {"http://host", "/", ""},
      {"http://host?q=1", "/", "q=1"},
  };
  for (const Case& c : cases) {
    HttpParser p;
    VarsBuilder b;
    vars_for(std::string("GET ") + c.target + " HTTP/1.1\r\nHost: host\r\n\r\n", &b, &p);
    assert_string_equal(std::string(b.find("PATH_INFO")).c_str(), c.path);
    assert_string_equal(std::string(b.find("QUERY_STRING")).c_str(), c.query);
    assert_string_equal(std::string(b.find("REQUEST_URI")).c_str(), c.target);
  }
}

void test_content_headers_unprefixed(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for(
      "POST /f HTTP/1.1\r\nHost: h\r\ncontent-type: application/json\r\nContent-Length: 12\r\n"
      "X-Foo: bar\r\n\r\n",
      &b, &p);
  std::span<const Var> vars = b.finish();
  assert_true(var_is(b, "CONTENT_TYPE", "application/json"));
  assert_true(var_is(b, "CONTENT_LENGTH", "12"));
  assert_int_equal(count_named(vars, "CONTENT_TYPE"), 1);
  assert_int_equal(count_named(vars, "CONTENT_LENGTH"), 1);
  assert_int_equal(count_named(vars, "HTTP_CONTENT_TYPE"), 0);
  assert_int_equal(count_named(vars, "HTTP_CONTENT_LENGTH"), 0);
  assert_true(var_is(b, "HTTP_X_FOO", "bar"));

  // Without the headers, neither variable is invented.
  HttpParser q;
  VarsBuilder c;
  vars_for("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &c, &q);
  vars = c.finish();
  assert_int_equal(count_named(vars, "CONTENT_TYPE"), 0);
  assert_int_equal(count_named(vars, "CONTENT_LENGTH"), 0);
}

void test_http_header_names(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Foo: 1\r\nx-lower-case: 2\r\nAccept-Encoding: gzip\r\n"
      "X-Empty:\r\nX-Digits-123: 3\r\n\r\n",
      &b, &p);
  assert_true(var_is(b, "HTTP_X_FOO", "1"));
  assert_true(var_is(b, "HTTP_X_LOWER_CASE", "2"));
  assert_true(var_is(b, "HTTP_ACCEPT_ENCODING", "gzip"));
  assert_true(var_is(b, "HTTP_X_DIGITS_123", "3"));
  std::span<const Var> vars = b.finish();
  assert_int_equal(count_named(vars, "HTTP_X_EMPTY"), 1);
  assert_true(b.find("HTTP_X_EMPTY").empty());
  // Names are only ever upper case.
  assert_int_equal(count_named(vars, "HTTP_X_Foo"), 0);
  assert_int_equal(count_named(vars, "HTTP_x_lower_case"), 0);
}

// "X_Foo" would become HTTP_X_FOO too: a client could pass it off as a
// header a proxy in front sets (or strips) as X-Foo.
void test_underscore_header_dropped(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for("GET / HTTP/1.1\r\nHost: h\r\nX_Foo: evil\r\nX-Foo: good\r\nX_Only: gone\r\n\r\n", &b,
           &p);
  assert_true(var_is(b, "HTTP_X_FOO", "good"));
  std::span<const Var> vars = b.finish();
  assert_int_equal(count_named(vars, "HTTP_X_FOO"), 1);
  assert_int_equal(count_named(vars, "HTTP_X_ONLY"), 0);
  for (const Var& v : vars) assert_true(v.value.find("evil") == std::string_view::npos);
  for (const Var& v : vars) assert_true(v.value.find("gone") == std::string_view::npos);

  // Content_Type cannot stand in for Content-Type either.
  HttpParser q;
  VarsBuilder c;
  vars_for("POST / HTTP/1.1\r\nHost: h\r\nContent_Type: text/evil\r\n\r\n", &c, &q);
  assert_int_equal(count_named(c.finish(), "CONTENT_TYPE"), 0);
}

void test_duplicate_headers_joined(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for(
      "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-Other: o\r\naccept: b\r\nACCEPT: c\r\n"
      "Cookie: k=1\r\nCookie: j=2\r\n\r\n",
      &b, &p);
  assert_true(var_is(b, "HTTP_ACCEPT", "a, b, c"));
  assert_true(var_is(b, "HTTP_X_OTHER", "o"));
  // Cookie pairs are separated by "; " (RFC 6265), not ", ".
  assert_true(var_is(b, "HTTP_COOKIE", "k=1; j=2"));
  std::span<const Var> vars = b.finish();
  assert_int_equal(count_named(vars, "HTTP_ACCEPT"), 1);
  assert_int_equal(count_named(vars, "HTTP_COOKIE"), 1);
}

// Each of the fixed variables appears once.
void test_fixed_vars_once(void**) {
  HttpParser p;
  VarsBuilder b;
  vars_for("GET /x?y HTTP/1.1\r\nHost: h\r\n\r\n", &b, &p);
  std::span<const Var> vars = b.finish();
  for (const char* name :
       {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI",
        "SERVER_PROTOCOL", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST"})
    assert_int_equal(count_named(vars, name), 1);
  assert_int_equal(vars.size(), 11);
}

// A reused parser keeps old header slots past header_count; the vars come
// from this request's headers only.
void test_stale_header_slots_ignored(void**) {
  HttpParser p;
  VarsBuilder b;
  std::string body;
  const std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n";
  assert_int_equal(p.feed(first.data(), first.size(), &body), first.size());
  p.begin();
  vars_for("GET /2 HTTP/1.1\r\nHost: h\r\nX-A: new\r\n\r\n", &b, &p);
  assert_true(p.head().headers.size() >= 3);
  std::span<const Var> vars = b.finish();
  assert_true(var_is(b, "HTTP_X_A", "new"));
  assert_int_equal(count_named(vars, "HTTP_X_B"), 0);
  assert_int_equal(count_named(vars, "HTTP_X_C"), 0);
  assert_true(var_is(b, "PATH_INFO", "/2"));

  // Same with a hand-made head.
  RequestHead h;
  h.method = "GET";
  h.url = "/";
  h.headers = {{"X-Kept", "k"}, {"X-Stale", "s"}};
  h.header_count = 1;
  VarsBuilder c;
  build_http_vars(h, test_listener(), "a", "1", &c);
  vars = c.finish();
  assert_true(var_is(c, "HTTP_X_KEPT", "k"));
  assert_int_equal(count_named(vars, "HTTP_X_STALE"), 0);
}

void test_builder_find_and_finish(void**) {
  VarsBuilder b;
  b.add("A", "1");
  b.add("EMPTY", "");
  b.add("B", std::string(1000, 'b'));
  std::span<const Var> vars = b.finish();
  assert_int_equal(vars.size(), 3);
  assert_true(vars[0].name == "A" && vars[0].value == "1");
  assert_true(vars[1].name == "EMPTY" && vars[1].value.empty());
  assert_true(vars[2].name == "B" && vars[2].value == std::string(1000, 'b'));
  assert_true(b.find("A") == "1");
  assert_true(b.find("B").size() == 1000);
  assert_true(b.find("MISSING").empty());
  assert_true(b.find("a").empty());  // names are exact
  // Adding after finish() and finishing again keeps the earlier entries
  // right, even when the arena has to grow.
  for (int i = 0; i < 100; ++i) b.add("K" + std::to_string(i), std::string(100, 'v'));
  vars = b.finish();
  assert_int_equal(vars.size(), 103);
  assert_true(b.find("A") == "1");
  assert_true(b.find("B") == std::string(1000, 'b'));
  assert_true(b.find("K99") == std::string(100, 'v'));
}

void test_builder_static_names_and_growth(void**) {
  static constexpr char kName[] = "STATIC_NAME";
  VarsBuilder b;
  // The first values fit in the string's own small buffer; the ones after
  // move the arena to the heap, and every view handed out moves with it.
  b.add_static(kName, "v");
  b.add("SMALL", "s");
  for (int i = 0; i < 50; ++i) b.add_static(kName, std::string(40, static_cast<char>('a' + i % 26)));
  std::span<const Var> vars = b.finish();
  assert_int_equal(vars.size(), 52);
  assert_ptr_equal(vars[0].name.data(), kName);  // not copied
  assert_true(vars[0].value == "v");
  assert_true(vars[1].name == "SMALL" && vars[1].value == "s");
  assert_true(vars[51].value == std::string(40, 'a' + 49 % 26));
  assert_ptr_equal(vars[51].name.data(), kName);

  // Reserved room: the adds that fit do not move the arena.
  b.clear();
  b.reserve(3, 3000);
  b.add("A", std::string(1000, 'x'));
  const char* first = b.finish()[0].value.data();
  b.add("B", std::string(1000, 'y'));
  b.add_static(kName, std::string(900, 'z'));
  vars = b.finish();
  assert_ptr_equal(vars[0].value.data(), first);
  assert_true(vars[2].value == std::string(900, 'z'));
}

void test_builder_reuse_after_clear(void**) {
  VarsBuilder b;
  HttpParser p;
  vars_for("POST /first/long/path?first=query HTTP/1.1\r\nHost: h\r\nX-First: " +
               std::string(500, 'f') + "\r\nContent-Type: text/first\r\nContent-Length: 0\r\n\r\n",
           &b, &p);
  assert_true(var_is(b, "HTTP_X_FIRST", std::string(500, 'f')));
  std::string first_uri(b.find("REQUEST_URI"));

  // The same builder, refilled: shorter values now sit where longer ones
  // were, and nothing of the first request survives.
  HttpParser q;
  vars_for("GET /2 HTTP/1.0\r\nX-Second: s\r\n\r\n", &b, &q);
  std::span<const Var> vars = b.finish();
  assert_true(var_is(b, "REQUEST_METHOD", "GET"));
  assert_true(var_is(b, "PATH_INFO", "/2"));
  assert_true(var_is(b, "QUERY_STRING", ""));
  assert_true(var_is(b, "REQUEST_URI", "/2"));
  assert_true(var_is(b, "SERVER_PROTOCOL", "HTTP/1.0"));
  assert_true(var_is(b, "HTTP_X_SECOND", "s"));
  assert_int_equal(count_named(vars, "HTTP_X_FIRST"), 0);
  assert_int_equal(count_named(vars, "CONTENT_TYPE"), 0);
  assert_int_equal(count_named(vars, "CONTENT_LENGTH"), 0);
  assert_int_equal(vars.size(), 11);
  assert_string_equal(first_uri.c_str(), "/first/long/path?first=query");

  // clear() alone leaves an empty set.
  b.clear();
  assert_int_equal(b.finish().size(), 0);
  assert_true(b.find("REQUEST_METHOD").empty());
}

// --- the uwsgi port ----------------------------------------------------------

using spindle::core::build_uwsgi_vars;

bool uwsgi_vars(std::vector<Var> raw, VarsBuilder* b, std::string* why,
                std::uint64_t* length = nullptr) {
  std::uint64_t n = 0;
  bool ok = build_uwsgi_vars(raw, test_listener(), b, length ? length : &n, why);
  b->finish();
  return ok;
}

// A packet carrying REQUEST_METHOD twice let the server read one method and
// the app the other (HEAD for the server, GET for the app).
void test_uwsgi_repeated_variable_is_refused(void**) {
  for (const char* name :
       {"REQUEST_METHOD", "CONTENT_LENGTH", "PATH_INFO", "UWSGI_SCHEME", "HTTPS", "X"}) {
    VarsBuilder b;
    std::string why;
    assert_false(uwsgi_vars(
        {{"REQUEST_METHOD", "GET"}, {name, "1"}, {"REQUEST_URI", "/"}, {name, "2"}}, &b, &why));
    assert_true(why.find(name) != std::string::npos);
  }
}

// nginx passes a header sent on two lines as two HTTP_* variables: one
// header, joined as on the HTTP port.
void test_uwsgi_repeated_header_is_joined(void**) {
  VarsBuilder b;
  std::string why;
  assert_true(uwsgi_vars({{"REQUEST_METHOD", "GET"},
                          {"HTTP_ACCEPT", "a"},
                          {"HTTP_COOKIE", "k=1"},
                          {"HTTP_X", "x"},
                          {"HTTP_ACCEPT", "b"},
                          {"HTTP_COOKIE", "j=2"},
                          {"HTTP_ACCEPT", "c"}},
                         &b, &why));
  assert_true(var_is(b, "HTTP_ACCEPT", "a, b, c"));
  assert_true(var_is(b, "HTTP_COOKIE", "k=1; j=2"));
  assert_true(var_is(b, "HTTP_X", "x"));
  std::span<const Var> vars = b.finish();
  assert_int_equal(count_named(vars, "HTTP_ACCEPT"), 1);
  assert_int_equal(count_named(vars, "HTTP_COOKIE"), 1);
}

void test_uwsgi_packet_without_request_method_is_refused(void**) {
  VarsBuilder b;
  std::string why;
  assert_false(uwsgi_vars({{"REQUEST_URI", "/"}, {"PATH_INFO", "/"}}, &b, &why));
  assert_false(uwsgi_vars({{"REQUEST_METHOD", ""}, {"REQUEST_URI", "/"}}, &b, &why));
  assert_false(uwsgi_vars({}, &b, &why));
}

void test_uwsgi_defaults_and_length(void**) {
  VarsBuilder b;
  std::string why;
  std::uint64_t length = 99;
  assert_true(uwsgi_vars({{"REQUEST_METHOD", "POST"},
                          {"REQUEST_URI", "/a%20b?x=1"},
                          {"CONTENT_LENGTH", "12"},
                          {"HTTP_CONTENT_LENGTH", "12"}},
                         &b, &why, &length));
  assert_int_equal(length, 12);
  assert_true(var_is(b, "PATH_INFO", "/a b"));
  assert_true(var_is(b, "QUERY_STRING", "x=1"));
  assert_true(var_is(b, "SCRIPT_NAME", ""));
  assert_true(var_is(b, "SERVER_PROTOCOL", "HTTP/1.0"));
  assert_true(var_is(b, "SERVER_PORT", "8080"));
  assert_int_equal(count_named(b.finish(), "HTTP_CONTENT_LENGTH"), 0);
  assert_false(uwsgi_vars({{"REQUEST_METHOD", "POST"}, {"CONTENT_LENGTH", "1x"}}, &b, &why));
}

// Thousands of variables, none repeated: found fast, all kept.
void test_uwsgi_many_variables(void**) {
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i) names.push_back("HTTP_X_" + std::to_string(i));
  std::vector<Var> raw = {{"REQUEST_METHOD", "GET"}};
  for (const std::string& n : names) raw.push_back({n, "v"});
  VarsBuilder b;
  std::string why;
  assert_true(uwsgi_vars(raw, &b, &why));
  assert_int_equal(count_named(b.finish(), "HTTP_X_4999"), 1);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_line_vars),
      cmocka_unit_test(test_method_and_protocol),
      cmocka_unit_test(test_listener_and_peer),
      cmocka_unit_test(test_percent_decode),
      cmocka_unit_test(test_path_info_decoding),
      cmocka_unit_test(test_query_string),
      cmocka_unit_test(test_absolute_form_target),
      cmocka_unit_test(test_absolute_form_authority_is_the_host),
      cmocka_unit_test(test_content_headers_unprefixed),
      cmocka_unit_test(test_http_header_names),
      cmocka_unit_test(test_underscore_header_dropped),
      cmocka_unit_test(test_duplicate_headers_joined),
      cmocka_unit_test(test_fixed_vars_once),
      cmocka_unit_test(test_stale_header_slots_ignored),
      cmocka_unit_test(test_builder_find_and_finish),
      cmocka_unit_test(test_builder_static_names_and_growth),
      cmocka_unit_test(test_builder_reuse_after_clear),
      cmocka_unit_test(test_uwsgi_repeated_variable_is_refused),
      cmocka_unit_test(test_uwsgi_repeated_header_is_joined),
      cmocka_unit_test(test_uwsgi_packet_without_request_method_is_refused),
      cmocka_unit_test(test_uwsgi_defaults_and_length),
      cmocka_unit_test(test_uwsgi_many_variables),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
