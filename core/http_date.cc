#include "core/http_date.hh"

#include <time.h>

namespace spindle::core {

namespace {

constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char* two(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

char* copy(char* p, const char* s, int n) {
  for (int i = 0; i < n; ++i) p[i] = s[i];
  return p + n;
}

}  // namespace

void HttpDate::format(std::time_t t, char out[kLength]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  char* p = out;
  p = copy(p, kDays[tm.tm_wday], 3);
  p = copy(p, ", ", 2);
  p = two(p, tm.tm_mday);
  *p++ = ' ';
  p = copy(p, kMonths[tm.tm_mon], 3);
  *p++ = ' ';
  int year = tm.tm_year + 1900;
  p = two(p, year / 100 % 100);
  p = two(p, year % 100);
  *p++ = ' ';
  p = two(p, tm.tm_hour);
  *p++ = ':';
  p = two(p, tm.tm_min);
  *p++ = ':';
  p = two(p, tm.tm_sec);
  copy(p, " GMT", 4);
}

std::string_view HttpDate::now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != second_) {
    second_ = ts.tv_sec;
    format(second_, text_);
  }
  return {text_, kLength};
}

void append_origin_fields(std::string* out, bool date, bool server) {
  if (date) {
    out->append("Date: ");
    out->append(http_date().now());
    out->append("\r\n");
  }
  if (server) out->append("Server: spindle\r\n");
}

HttpDate& http_date() {
  static thread_local HttpDate date;  // one per serving thread (--threads)
  return date;
}

}  // namespace spindle::core
