// The uwsgi binary protocol codec: what nginx's uwsgi_pass sends, byte for
// byte, and what the parser refuses.
#include <cstdio>
#include <string>
#include <vector>

#include "core/uwsgi_codec.hh"

// Project headers come before <cmocka.h>: its fail() macro would rewrite
// any member function named fail (core::Exchange has one).
extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Var;
namespace uwsgi = spindle::core::uwsgi;

template <std::size_t N>
std::string bytes(const char (&lit)[N]) {
  return std::string(lit, N - 1);
}

unsigned byte_at(const std::string& s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

void expect_vars(const std::vector<Var>& got, const std::vector<Var>& want) {
  assert_int_equal(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    assert_true(got[i].name == want[i].name);
    assert_true(got[i].value == want[i].value);
  }
}

void test_round_trip(void**) {
  const std::string big(300, 'x');
  const std::vector<Var> vars = {
      {"REQUEST_METHOD", "POST"}, {"PATH_INFO", "/a b/\xc3\xa9"}, {"QUERY_STRING", ""},
      {"HTTP_X_BIG", big},        {"CONTENT_LENGTH", "5"},
  };
  std::string packet = uwsgi::encode_request(vars);
  uwsgi::PacketHeader h;
  assert_int_equal(uwsgi::parse_header(packet.data(), packet.size(), &h), uwsgi::Status::kOk);
  assert_int_equal(h.modifier1, 0);
  assert_int_equal(h.modifier2, 0);
  assert_int_equal(h.size, packet.size() - uwsgi::kHeaderSize);

  std::vector<Var> out;
  assert_int_equal(uwsgi::parse_vars(packet.data() + uwsgi::kHeaderSize, h.size, &out),
                   uwsgi::Status::kOk);
  expect_vars(out, vars);
  // Views point into the packet: parsing copies nothing.
  const char* begin = packet.data();
  const char* end = packet.data() + packet.size();
  for (const Var& v : out) {
    assert_true(v.name.data() >= begin && v.name.data() + v.name.size() <= end);
  }
}

void test_modifiers(void**) {
  const std::vector<Var> vars = {{"A", "b"}};
  std::string packet = uwsgi::encode_request(vars, 5, 200);
  assert_int_equal(byte_at(packet, 0), 5);
  assert_int_equal(byte_at(packet, 3), 200);
  uwsgi::PacketHeader h;
  assert_int_equal(uwsgi::parse_header(packet.data(), packet.size(), &h), uwsgi::Status::kOk);
  assert_int_equal(h.modifier1, 5);
  assert_int_equal(h.modifier2, 200);
  assert_int_equal(h.size, 6);
}

void test_little_endian_sizes(void**) {
  const std::string value(300, 'v');  // 300 = 0x012c
  std::string block;
  uwsgi::append_var(&block, "K", value);
  assert_int_equal(block.size(), 2 + 1 + 2 + 300);
  assert_int_equal(byte_at(block, 0), 1);
  assert_int_equal(byte_at(block, 1), 0);
  assert_int_equal(byte_at(block, 3), 0x2c);
  assert_int_equal(byte_at(block, 4), 0x01);

  const std::vector<Var> vars = {{"K", value}};
  std::string packet = uwsgi::encode_request(vars);
  // 305 = 0x0131, low byte first.
  assert_int_equal(byte_at(packet, 1), 0x31);
  assert_int_equal(byte_at(packet, 2), 0x01);

  // Bytes with the high bit set are sizes, not negative chars.
  uwsgi::PacketHeader h;
  std::string header = bytes("\x00\xff\xfe\x00");
  assert_int_equal(uwsgi::parse_header(header.data(), header.size(), &h), uwsgi::Status::kOk);
  assert_int_equal(h.size, 0xfeff);

  const std::string longest(65535, 'z');
  block.clear();
  uwsgi::append_var(&block, "L", longest);
  assert_int_equal(byte_at(block, 3), 0xff);
  assert_int_equal(byte_at(block, 4), 0xff);
  std::vector<Var> out;
  assert_int_equal(uwsgi::parse_vars(block.data(), block.size(), &out), uwsgi::Status::kOk);
  assert_int_equal(out.size(), 1);
  assert_int_equal(out[0].value.size(), 65535);
}

void test_empty_value_and_empty_block(void**) {
  std::string block = bytes("\x01\x00" "A" "\x00\x00");
  std::vector<Var> out;
  assert_int_equal(uwsgi::parse_vars(block.data(), block.size(), &out), uwsgi::Status::kOk);
  assert_int_equal(out.size(), 1);
  assert_true(out[0].name == "A");
  assert_true(out[0].value.empty());

  out.clear();
  assert_int_equal(uwsgi::parse_vars(block.data(), 0, &out), uwsgi::Status::kOk);
  assert_int_equal(out.size(), 0);

  std::string packet = uwsgi::encode_request({});
  assert_string_equal(packet.c_str(), "");  // first byte is modifier1 = 0
  assert_int_equal(packet.size(), 4);
  assert_int_equal(byte_at(packet, 1) | byte_at(packet, 2), 0);
}

void test_truncated_block(void**) {
  const std::vector<Var> vars = {{"REQUEST_METHOD", "GET"}, {"Q", ""}, {"HTTP_HOST", "h"}};
  std::string packet = uwsgi::encode_request(vars);
  std::string block = packet.substr(uwsgi::kHeaderSize);
  // A block cut anywhere but between two variables is malformed; cut between
  // them it is a shorter valid block.
  std::vector<std::size_t> boundaries = {0};
  for (const Var& v : vars) {
    boundaries.push_back(boundaries.back() + 4 + v.name.size() + v.value.size());
  }
  assert_int_equal(boundaries.back(), block.size());
  for (std::size_t n = 0; n <= block.size(); ++n) {
    std::vector<Var> out;
    uwsgi::Status st = uwsgi::parse_vars(block.data(), n, &out);
    bool boundary = false;
    for (std::size_t b : boundaries) boundary = boundary || b == n;
    if (st != (boundary ? uwsgi::Status::kOk : uwsgi::Status::kMalformed)) {
      print_error("block cut at %zu of %zu: status %d\n", n, block.size(), static_cast<int>(st));
      fail();
    }
  }
  // A key length that runs past the end.
  std::string past = bytes("\x05\x00" "AB");
  std::vector<Var> out;
  assert_int_equal(uwsgi::parse_vars(past.data(), past.size(), &out), uwsgi::Status::kMalformed);
  // A value length that runs past the end.
  past = bytes("\x01\x00" "A" "\x09\x00" "short");
  assert_int_equal(uwsgi::parse_vars(past.data(), past.size(), &out), uwsgi::Status::kMalformed);
}

void test_empty_key(void**) {
  std::string block = bytes("\x00\x00" "\x01\x00" "x");
  std::vector<Var> out;
  assert_int_equal(uwsgi::parse_vars(block.data(), block.size(), &out), uwsgi::Status::kMalformed);
  // After a good variable too.
  block = bytes("\x01\x00" "A" "\x01\x00" "b" "\x00\x00" "\x00\x00");
  assert_int_equal(uwsgi::parse_vars(block.data(), block.size(), &out), uwsgi::Status::kMalformed);
}

void test_header_needs_four_bytes(void**) {
  const std::string header = bytes("\x00\x10\x00\x00");
  for (std::size_t n = 0; n < uwsgi::kHeaderSize; ++n) {
    uwsgi::PacketHeader h;
    h.size = 77;
    assert_int_equal(uwsgi::parse_header(header.data(), n, &h), uwsgi::Status::kNeedMore);
    assert_int_equal(h.size, 77);
  }
  uwsgi::PacketHeader h;
  assert_int_equal(uwsgi::parse_header(header.data(), 4, &h), uwsgi::Status::kOk);
  assert_int_equal(h.size, 16);
}

// What nginx's uwsgi_pass sends for "GET / HTTP/1.1" with "Host: localhost"
// (a subset of its variables, in its order), written out by hand.
void test_nginx_bytes(void**) {
  const std::string packet = bytes(
      "\x00\x74\x00\x00"
      "\x0e\x00" "REQUEST_METHOD" "\x03\x00" "GET"
      "\x0c\x00" "QUERY_STRING" "\x00\x00"
      "\x0b\x00" "REQUEST_URI" "\x01\x00" "/"
      "\x09\x00" "PATH_INFO" "\x01\x00" "/"
      "\x0f\x00" "SERVER_PROTOCOL" "\x08\x00" "HTTP/1.1"
      "\x09\x00" "HTTP_HOST" "\x09\x00" "localhost");
  uwsgi::PacketHeader h;
  assert_int_equal(uwsgi::parse_header(packet.data(), packet.size(), &h), uwsgi::Status::kOk);
  assert_int_equal(h.modifier1, 0);
  assert_int_equal(h.size, 116);
  assert_int_equal(packet.size(), uwsgi::kHeaderSize + 116);
  std::vector<Var> out;
  assert_int_equal(uwsgi::parse_vars(packet.data() + 4, h.size, &out), uwsgi::Status::kOk);
  const std::vector<Var> want = {
      {"REQUEST_METHOD", "GET"}, {"QUERY_STRING", ""},          {"REQUEST_URI", "/"},
      {"PATH_INFO", "/"},        {"SERVER_PROTOCOL", "HTTP/1.1"}, {"HTTP_HOST", "localhost"},
  };
  expect_vars(out, want);
  // And the encoder produces exactly those bytes.
  assert_true(uwsgi::encode_request(want) == packet);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_modifiers),
      cmocka_unit_test(test_little_endian_sizes),
      cmocka_unit_test(test_empty_value_and_empty_block),
      cmocka_unit_test(test_truncated_block),
      cmocka_unit_test(test_empty_key),
      cmocka_unit_test(test_header_needs_four_bytes),
      cmocka_unit_test(test_nginx_bytes),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
