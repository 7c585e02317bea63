// The access log: which requests get a line, and what the line says.
//
// The exchange (and the static-file path) collect an AccessRecord when a
// response is over and call log_request(); everything about the line's shape
// lives here. Without --log-format the line is
//
//   <prefix> ACCESS ADDR "REQUEST LINE" STATUS BYTES TIMEms "REFERER" "USER AGENT"
//
// with " (cut off)" at the end when the response could not be completed
// (BYTES is then what was actually written after the head). With
// --log-format the line is that format with uWSGI's %(name) variables filled
// in, and no prefix, as uWSGI writes it.
//
// Settings are read once at option time (add_log_options) and inherited by
// the workers over fork; they are not changed afterwards.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/exchange.hh"

namespace spindle::core {

class OptionTable;

struct AccessRecord {
  std::span<const Var> vars;   // the request's CGI variables
  std::string_view peer;       // the socket's peer, when vars have no REMOTE_ADDR
  std::string_view line;       // "GET / HTTP/1.1"
  int status = 0;
  std::uint64_t body_bytes = 0;  // body bytes written
  std::uint64_t head_bytes = 0;  // response head bytes written
  bool cut = false;              // the response could not be completed
  double seconds = 0;            // from the request's start to its end
  int core = 0;
  int worker = 0;
  int headers = 0;               // header fields in the response head
  int read_errors = 0;           // failed body reads
  std::uint32_t switches = 0;    // times the request's core was resumed
  std::uint8_t modifier2 = 0;    // the uwsgi packet's modifier2 (0 on HTTP)
  std::span<const Var> logvars{};  // what the app set (uwsgi.set_logvar)
};

// uWSGI's request log variables (uwsgi.set_logvar / get_logvar): a name
// that is no other %(variable) prints what the app set for it. From inside
// a core only; false outside a request.
bool set_request_logvar(std::string_view name, std::string_view value);
bool get_request_logvar(std::string_view name, std::string* value);

// The header fields in a response head ("HTTP/1.1 200 OK\r\n...\r\n\r\n").
int count_head_fields(std::string_view head);

// Whether this request gets a line: always, unless --disable-logging; then
// only if --log-4xx, --log-5xx or --log-slow asks for it (as uWSGI).
bool access_wanted(bool disabled, int status, double seconds);

// Writes the line (see above) to the request log.
void log_request(const AccessRecord& r);

// Owned copies of a request's variables and line, for a response that
// outlives the request head (static files sent from the loop).
class AccessCopy {
 public:
  void keep(std::span<const Var> vars, std::string_view line);
  std::span<const Var> vars() const { return vars_; }
  const std::string& line() const { return line_; }

 private:
  std::vector<std::string> store_;
  std::vector<Var> vars_;
  std::string line_;
};

// The logging rows of the option table: log-format, log-4xx, log-5xx,
// log-slow, log-x-forwarded-for, log-date, logger, req-logger.
void add_log_options(OptionTable& table);

}  // namespace spindle::core
