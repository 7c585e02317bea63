// permessage-deflate without a connection: which offers are accepted and
// what the answer says, RSV1 only where negotiated, a round trip through
// deflate_message and inflate_message (the example of RFC 7692 7.2.3.1),
// and inflating bounded by the size limit (1009) or refused (1007).
#include <zlib.h>

#include <string>

#include "core/websocket_codec.hh"
#include "core/websocket_deflate.hh"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

namespace ws = spindle::core::ws;

const char* kBoth = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

void test_offers(void**) {
  std::string r;
  int bits = 0;
  assert_true(ws::deflate_negotiate("permessage-deflate", &r, &bits));
  assert_string_equal(r.c_str(), kBoth);
  assert_int_equal(bits, 15);
  // What browsers send.
  assert_true(ws::deflate_negotiate("permessage-deflate; client_max_window_bits", &r, &bits));
  assert_string_equal(r.c_str(), kBoth);
  // A server window limit is kept and answered.
  assert_true(ws::deflate_negotiate("permessage-deflate; Server_Max_Window_Bits=\"10\"", &r, &bits));
  assert_int_equal(bits, 10);
  assert_string_equal(r.c_str(), (std::string(kBoth) + "; server_max_window_bits=10").c_str());
  // Declined: unknown or repeated parameters, bad or 8-bit windows, other
  // extensions; a later acceptable offer is taken.
  assert_false(ws::deflate_negotiate("permessage-deflate; foo", &r, &bits));
  assert_false(ws::deflate_negotiate(
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover", &r, &bits));
  assert_false(ws::deflate_negotiate("permessage-deflate; server_max_window_bits=8", &r, &bits));
  assert_false(ws::deflate_negotiate("permessage-deflate; server_max_window_bits=16", &r, &bits));
  assert_false(ws::deflate_negotiate("permessage-deflate; client_max_window_bits=x", &r, &bits));
  assert_false(ws::deflate_negotiate("x-webkit-deflate-frame", &r, &bits));
  assert_false(ws::deflate_negotiate("", &r, &bits));
  assert_true(ws::deflate_negotiate(
      "permessage-deflate; server_max_window_bits=8, permessage-deflate", &r, &bits));
  assert_int_equal(bits, 15);
}

void test_rsv1_only_when_allowed(void**) {
  std::string f("\xc1\x80\0\0\0\0", 6);  // FIN + RSV1, text, masked, empty
  ws::FrameHeader h;
  int code = 0;
  assert_int_equal(ws::parse_header(f.data(), f.size(), true, 0, &h, &code),
                   ws::Parse::kError);
  assert_int_equal(code, ws::kProtocolError);
  assert_int_equal(ws::parse_header(f.data(), f.size(), true, 0, &h, &code, true),
                   ws::Parse::kOk);
  assert_true(h.rsv1);
  f[0] = static_cast<char>(0xa1);  // RSV2 stays refused
  assert_int_equal(ws::parse_header(f.data(), f.size(), true, 0, &h, &code, true),
                   ws::Parse::kError);
}

void test_rfc_example_and_round_trip(void**) {
  // RFC 7692 7.2.3.1: "Hello" compressed, one block, no context takeover.
  std::string hello("\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
  int code = 0;
  assert_true(ws::inflate_message(&hello, 0, &code));
  assert_string_equal(hello.c_str(), "Hello");
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "spindle websocket ";
  for (int bits : {15, 9}) {
    std::string z = ws::deflate_message(text, bits);
    assert_true(z.size() < text.size() / 10);
    assert_true(ws::inflate_message(&z, 0, &code));
    assert_true(z == text);
  }
}

void test_inflate_bounded_and_checked(void**) {
  // 8 MiB of zeros compress to a few KiB: refused at the limit.
  std::string zeros(8 << 20, '\0');
  std::string z = ws::deflate_message(zeros, 15);
  assert_true(z.size() < 16384);
  int code = 0;
  assert_false(ws::inflate_message(&z, 1 << 20, &code));
  assert_int_equal(code, ws::kTooBig);
  // The limit itself passes.
  std::string exact = ws::deflate_message(std::string(1 << 20, 'a'), 15);
  assert_true(ws::inflate_message(&exact, 1 << 20, &code));
  assert_int_equal(exact.size(), 1 << 20);
  // Not deflate data.
  std::string junk("\xff\xff\xff\xff\xff", 5);
  assert_false(ws::inflate_message(&junk, 0, &code));
  assert_int_equal(code, ws::kInvalidPayload);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offers),
      cmocka_unit_test(test_rsv1_only_when_allowed),
      cmocka_unit_test(test_rfc_example_and_round_trip),
      cmocka_unit_test(test_inflate_bounded_and_checked),
  };
  return cmocka_run_group_tests_name("websocket deflate", tests, nullptr, nullptr);
}
