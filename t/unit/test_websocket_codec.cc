// RFC 6455 framing without a connection: the handshake key, the examples of
// RFC 6455 5.7, masking enforced, length forms, control-frame rules, the
// size limit (1009), close payloads and codes, UTF-8 validation (1007) fed
// in pieces.
#include <cstring>
#include <string>

#include "core/websocket_codec.hh"

// Project headers come before <cmocka.h>: its fail() macro would rewrite
// any member function named fail.
extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

namespace ws = spindle::core::ws;

ws::Parse parse(const std::string& bytes, ws::FrameHeader* h, int* code, bool mask = true,
                std::uint64_t max = 0) {
  return ws::parse_header(bytes.data(), bytes.size(), mask, max, h, code);
}

void test_accept_key_of_the_rfc_example(void**) {
  assert_string_equal(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==").c_str(),
                      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

void test_masked_hello_of_the_rfc(void**) {
  std::string f("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
  ws::FrameHeader h;
  int code = 0;
  assert_int_equal(parse(f, &h, &code), ws::Parse::kOk);
  assert_true(h.fin);
  assert_int_equal(h.opcode, ws::kText);
  assert_int_equal(h.length, 5);
  assert_int_equal(h.header_size, 6);
  std::string payload = f.substr(h.header_size);
  // Unmasked in two pieces: the mask position carries over.
  ws::unmask(payload.data(), 2, h.mask, 0);
  ws::unmask(payload.data() + 2, 3, h.mask, 2);
  assert_string_equal(payload.c_str(), "Hello");
}

void test_unmasked_client_frame_is_a_protocol_error(void**) {
  std::string f("\x81\x05Hello", 7);  // RFC 5.7's unmasked example: a server's frame
  ws::FrameHeader h;
  int code = 0;
  assert_int_equal(parse(f, &h, &code), ws::Parse::kError);
  assert_int_equal(code, ws::kProtocolError);
  assert_int_equal(parse(f, &h, &code, false), ws::Parse::kOk);  // what a client accepts
}

void test_header_in_pieces_needs_more(void**) {
  std::string f("\x82\xfe\x01\x00\x01\x02\x03\x04", 8);  // 256 bytes, 16-bit length
  ws::FrameHeader h;
  int code = 0;
  for (std::size_t n = 0; n < f.size(); ++n)
    assert_int_equal(ws::parse_header(f.data(), n, true, 0, &h, &code), ws::Parse::kNeedMore);
  assert_int_equal(parse(f, &h, &code), ws::Parse::kOk);
  assert_int_equal(h.length, 256);
  assert_int_equal(h.header_size, 8);
}

void test_64_bit_length_and_non_minimal_forms(void**) {
  ws::FrameHeader h;
  int code = 0;
  std::string big("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04", 14);
  assert_int_equal(parse(big, &h, &code), ws::Parse::kOk);
  assert_int_equal(h.length, 65536);
  std::string short16("\x82\xfe\x00\x7d\x01\x02\x03\x04", 8);  // 125 in the 16-bit form
  assert_int_equal(parse(short16, &h, &code), ws::Parse::kError);
  assert_int_equal(code, ws::kProtocolError);
  std::string top_bit("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04", 14);
  assert_int_equal(parse(top_bit, &h, &code), ws::Parse::kError);
}

void test_control_frame_rules(void**) {
  ws::FrameHeader h;
  int code = 0;
  std::string fragmented_ping("\x09\x80\x01\x02\x03\x04", 6);  // FIN clear
  assert_int_equal(parse(fragmented_ping, &h, &code), ws::Parse::kError);
  assert_int_equal(code, ws::kProtocolError);
  std::string long_ping("\x89\xfe\x00\x7e\x01\x02\x03\x04", 8);  // 126 bytes
  assert_int_equal(parse(long_ping, &h, &code), ws::Parse::kError);
  std::string pong("\x8a\x80\x01\x02\x03\x04", 6);
  assert_int_equal(parse(pong, &h, &code), ws::Parse::kOk);
  assert_int_equal(h.opcode, ws::kPong);
}

void test_reserved_bits_and_opcodes(void**) {
  ws::FrameHeader h;
  int code = 0;
  assert_int_equal(parse(std::string("\xc1\x80\x01\x02\x03\x04", 6), &h, &code),
                   ws::Parse::kError);  // RSV1 without permessage-deflate
  assert_int_equal(parse(std::string("\x83\x80\x01\x02\x03\x04", 6), &h, &code),
                   ws::Parse::kError);  // opcode 3 is reserved
  assert_int_equal(code, ws::kProtocolError);
}

void test_max_size_closes_with_1009(void**) {
  ws::FrameHeader h;
  int code = 0;
  std::string f("\x82\xfe\x04\x00\x01\x02\x03\x04", 8);  // 1024 bytes
  assert_int_equal(parse(f, &h, &code, true, 1023), ws::Parse::kError);
  assert_int_equal(code, ws::kTooBig);
  assert_int_equal(parse(f, &h, &code, true, 1024), ws::Parse::kOk);
}

void test_server_frame_headers(void**) {
  std::string out;
  ws::frame_header(ws::kText, true, 5, &out);
  assert_int_equal(out.size(), 2);
  assert_memory_equal(out.data(), "\x81\x05", 2);
  out.clear();
  ws::frame_header(ws::kBinary, false, 300, &out);
  assert_memory_equal(out.data(), "\x02\x7e\x01\x2c", 4);
  out.clear();
  ws::frame_header(ws::kBinary, true, 70000, &out);
  assert_int_equal(out.size(), 10);
  assert_memory_equal(out.data(), "\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10);
}

void test_close_payload_and_codes(void**) {
  std::string p = ws::close_payload(1009, "too big");
  assert_int_equal(p.size(), 9);
  assert_memory_equal(p.data(), "\x03\xf1too big", 9);
  std::string long_reason(200, 'x');
  long_reason[122] = '\xc3';  // a two-byte sequence across the cut
  long_reason[123] = '\xa9';
  assert_true(ws::close_payload(1000, long_reason).size() <= 125);
  assert_true(ws::valid_close_code(1000));
  assert_true(ws::valid_close_code(1011));
  assert_true(ws::valid_close_code(1012));  // service restart
  assert_true(ws::valid_close_code(1014));  // bad gateway
  assert_false(ws::valid_close_code(1016));
  assert_true(ws::valid_close_code(3000));
  assert_true(ws::valid_close_code(4999));
  assert_false(ws::valid_close_code(1005));
  assert_false(ws::valid_close_code(1006));
  assert_false(ws::valid_close_code(1015));
  assert_false(ws::valid_close_code(999));
  assert_false(ws::valid_close_code(2000));
  assert_false(ws::valid_close_code(5000));
}

bool utf8(const std::string& s) {
  ws::Utf8Validator v;
  return v.feed(s.data(), s.size()) && v.complete();
}

void test_utf8_valid_and_invalid(void**) {
  assert_true(utf8("plain ascii"));
  assert_true(utf8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));  // κόσμε
  assert_true(utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  assert_true(utf8("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  assert_false(utf8("\xc0\xaf"));           // overlong '/'
  assert_false(utf8("\xe0\x80\xaf"));       // overlong, three bytes
  assert_false(utf8("\xed\xa0\x80"));       // U+D800, a surrogate
  assert_false(utf8("\xf4\x90\x80\x80"));   // past U+10FFFF
  assert_false(utf8("\x80"));               // a stray continuation byte
  assert_false(utf8("\xce"));               // unfinished at the end
  assert_false(utf8("\xce\x41"));           // not a continuation byte
}

void test_utf8_across_fragments(void**) {
  std::string s("\xe2\x82\xac", 3);  // €, split after each byte
  ws::Utf8Validator v;
  assert_true(v.feed(s.data(), 1));
  assert_false(v.complete());
  assert_true(v.feed(s.data() + 1, 1));
  assert_true(v.feed(s.data() + 2, 1));
  assert_true(v.complete());
  // A surrogate is refused at its second byte, before the rest arrives.
  ws::Utf8Validator w;
  assert_false(w.feed("\xed\xa0", 2));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_key_of_the_rfc_example),
      cmocka_unit_test(test_masked_hello_of_the_rfc),
      cmocka_unit_test(test_unmasked_client_frame_is_a_protocol_error),
      cmocka_unit_test(test_header_in_pieces_needs_more),
      cmocka_unit_test(test_64_bit_length_and_non_minimal_forms),
      cmocka_unit_test(test_control_frame_rules),
      cmocka_unit_test(test_reserved_bits_and_opcodes),
      cmocka_unit_test(test_max_size_closes_with_1009),
      cmocka_unit_test(test_server_frame_headers),
      cmocka_unit_test(test_close_payload_and_codes),
      cmocka_unit_test(test_utf8_valid_and_invalid),
      cmocka_unit_test(test_utf8_across_fragments),
  };
  return cmocka_run_group_tests_name("websocket codec", tests, nullptr, nullptr);
}
