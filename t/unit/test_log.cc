// Log lines: one event on one line, whatever a request put in it. A CR, LF
// or NUL from a request line or a uwsgi variable reached the log raw,
// forging lines; long lines were cut silently.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.hh"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Level;

// Runs fn with stderr sent to a temporary file; returns what was written.
template <typename Fn>
std::string capture(Fn fn) {
  char path[] = "/tmp/spindle-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  char buf[65536];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

std::size_t count(const std::string& s, char c) {
  std::size_t n = 0;
  for (char x : s) n += x == c;
  return n;
}

void test_log_line_never_carries_cr_lf_or_nul(void**) {
  const char raw[] = "GET /x\r\n2026-01-01 00:00:00.000 [1] ACCESS forged\x1b[2J\0tail";
  const std::string evil(raw, sizeof raw - 1);
  std::string out = capture([&] {
    spindle::core::log_access("\"%.*s\" %d", static_cast<int>(evil.size()), evil.data(), 200);
    spindle::core::log(Level::kWarn, "bad %s", "a\rb\nc\td\x7f");
  });
  assert_int_equal(count(out, '\n'), 2);
  assert_int_equal(count(out, '\r'), 0);
  assert_int_equal(out.find('\0'), std::string::npos);
  assert_int_equal(out.find('\x1b'), std::string::npos);
  assert_true(out.find("GET /x\\r\\n2026-01-01") != std::string::npos);
  // printf stops a %s at a NUL: nothing after it reaches the line.
  assert_true(out.find("forged\\x1b[2J\" 200\n") != std::string::npos);
  assert_true(out.find("WARN bad a\\rb\\nc\\td\\x7f\n") != std::string::npos);
}

void test_long_log_line_is_cut_with_a_marker(void**) {
  const std::string big(100000, 'x');
  std::string out = capture([&] { spindle::core::log(Level::kInfo, "%s|end", big.c_str()); });
  assert_int_equal(count(out, '\n'), 1);
  assert_true(out.size() < 20000);
  assert_true(out.find("|end") == std::string::npos);
  assert_true(out.find(" [cut: ") != std::string::npos);
  assert_true(out.find("more bytes]\n") != std::string::npos);
  // Escaping cannot push a line past its bound either.
  const std::string ctl(100000, '\n');
  out = capture([&] { spindle::core::log(Level::kInfo, "%s", ctl.c_str()); });
  assert_int_equal(count(out, '\n'), 1);
  assert_true(out.size() < 40000);
}

// A traceback's lines each become one line; a CR inside one is escaped.
void test_log_text_splits_on_newlines_only(void**) {
  const char text[] = "Traceback\n  line one\r\n  line two\n";
  std::string out = capture([&] { spindle::core::log_text(Level::kError, text, sizeof text - 1); });
  assert_int_equal(count(out, '\n'), 3);
  assert_true(out.find("line one\\r\n") != std::string::npos);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_line_never_carries_cr_lf_or_nul),
      cmocka_unit_test(test_long_log_line_is_cut_with_a_marker),
      cmocka_unit_test(test_log_text_splits_on_newlines_only),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
