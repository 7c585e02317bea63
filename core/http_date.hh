// The Date header's value (RFC 9110 5.6.7 IMF-fixdate), formatted at most
// once a second: a response asks for it, and only the first one in a new
// second pays for gmtime and the formatting (a coarse clock read costs a few
// nanoseconds through the vDSO).
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace spindle::core {

class HttpDate {
 public:
  static constexpr std::size_t kLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

  // The value for now; valid until the next call.
  std::string_view now();

  // The value for a given time (for tests and the first call).
  static void format(std::time_t t, char out[kLength]);

 private:
  std::time_t second_ = -1;
  char text_[kLength] = {};
};

// One per worker process.
HttpDate& http_date();

// What an origin server adds to every response head (RFC 9110 6.6.1, 10.2.4):
// "Date: ...\r\n", and "Server: spindle\r\n" when `server`.
void append_origin_fields(std::string* out, bool date, bool server);

}  // namespace spindle::core
