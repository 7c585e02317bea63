// Unit tests for the Date header's value (core/http_date.cc).
#include <time.h>

#include <cstring>
#include <string>

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

#include "core/http_date.hh"

namespace {

using spindle::core::HttpDate;

std::string formatted(std::time_t t) {
  char out[HttpDate::kLength];
  HttpDate::format(t, out);
  return std::string(out, HttpDate::kLength);
}

void test_imf_fixdate(void** state) {
  assert_string_equal(formatted(784111777).c_str(), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110
  assert_string_equal(formatted(0).c_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
  assert_string_equal(formatted(951782400).c_str(), "Tue, 29 Feb 2000 00:00:00 GMT");
  assert_string_equal(formatted(4102444799).c_str(), "Thu, 31 Dec 2099 23:59:59 GMT");
}

void test_now_is_the_current_second(void** state) {
  HttpDate d;
  for (;;) {
    std::time_t before = time(nullptr);
    std::string v(d.now());
    std::time_t after = time(nullptr);
    if (before != after) continue;  // crossed a second boundary: ask again
    // The coarse clock may lag the precise one by a tick.
    assert_true(v == formatted(before) || v == formatted(before - 1));
    break;
  }
  // Same second, same bytes, same buffer.
  std::string_view a = d.now();
  std::string_view b = d.now();
  assert_true(a.data() == b.data());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_imf_fixdate),
      cmocka_unit_test(test_now_is_the_current_second),
  };
  return cmocka_run_group_tests_name("http_date", tests, nullptr, nullptr);
}
