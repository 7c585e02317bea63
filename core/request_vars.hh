// The request's CGI-style variables (what becomes a WSGI environ), kept in
// one arena per connection so a request costs no allocation once warm.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/exchange.hh"
#include "core/http_parser.hh"

namespace spindle::core {

struct Listener;

class VarsBuilder {
 public:
  void clear();
  // Room for `vars` variables of `bytes` bytes (names and values) in all,
  // so that the adds that follow do not grow the buffers step by step.
  void reserve(std::size_t vars, std::size_t bytes);
  // Copies name and value into the arena.
  void add(std::string_view name, std::string_view value);
  // As add(), for a name that outlives the builder (a string literal): only
  // the value is copied.
  void add_static(std::string_view name, std::string_view value);
  // Views into the arena (and the static names); valid until the next
  // clear()/add().
  std::span<const Var> finish() const { return vars_; }
  std::string_view find(std::string_view name) const;  // after finish()

 private:
  char* append(std::string_view a, std::string_view b = {});

  // The names and values, back to back. A parked request keeps it (and
  // vars_) until it ends, so both are sized to what they hold.
  std::string arena_;
  std::vector<Var> vars_;
};

// Decodes %XX escapes (an invalid escape is kept as it is).
std::string percent_decode(std::string_view s);

// Fills *out from an HTTP request head: REQUEST_METHOD, REQUEST_URI,
// PATH_INFO (decoded), QUERY_STRING, SCRIPT_NAME, SERVER_PROTOCOL,
// SERVER_NAME, SERVER_PORT, REMOTE_ADDR, REMOTE_PORT, CONTENT_TYPE,
// CONTENT_LENGTH and HTTP_* (names with '_' dropped, duplicates joined).
void build_http_vars(const RequestHead& head, const Listener& listener,
                     std::string_view remote_addr, std::string_view remote_port, VarsBuilder* out);

// Fills *out from the variables of a uwsgi packet (what nginx sent), adding
// what PEP 3333 requires and a front end may leave out (SCRIPT_NAME,
// PATH_INFO, QUERY_STRING, SERVER_PROTOCOL, SERVER_NAME, SERVER_PORT), and
// sets *content_length (0 without CONTENT_LENGTH).
// A repeated HTTP_* variable is one header sent on several lines (nginx
// passes each line): its values are joined as on the HTTP port. Any other
// repeated variable, a missing REQUEST_METHOD or a bad CONTENT_LENGTH
// refuses the packet, so the server and the app can never read different
// methods or lengths from it: returns false with the reason in *why.
bool build_uwsgi_vars(std::span<const Var> raw, const Listener& listener, VarsBuilder* out,
                      std::uint64_t* content_length, std::string* why);

}  // namespace spindle::core
