#include "core/http_target.hh"

#include <strings.h>

#include <cstring>

namespace spindle::core {

namespace {

bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
bool is_unreserved(unsigned char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(unsigned char c) { return c != 0 && std::strchr("!$&'()*+,;=", c) != nullptr; }

// reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4 addresses
// are reg-names as far as characters go.
bool valid_reg_name(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '%') {
      if (i + 2 >= s.size() || !is_hex(static_cast<unsigned char>(s[i + 1])) ||
          !is_hex(static_cast<unsigned char>(s[i + 2])))
        return false;
      i += 2;
    } else if (!is_unreserved(c) && !is_sub_delim(c)) {
      return false;
    }
  }
  return true;
}

// The inside of [ ]: an IPv6 address or an IPvFuture, by their characters.
bool valid_ip_literal(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!is_unreserved(c) && !is_sub_delim(c) && c != ':') return false;
  }
  return true;
}

bool valid_port(std::string_view s) {
  for (char c : s)
    if (!is_digit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

bool valid_host(std::string_view host) {
  if (!host.empty() && host[0] == '[') {
    std::size_t close = host.find(']');
    if (close == std::string_view::npos || !valid_ip_literal(host.substr(1, close - 1)))
      return false;
    std::string_view rest = host.substr(close + 1);
    return rest.empty() || (rest[0] == ':' && valid_port(rest.substr(1)));
  }
  std::size_t colon = host.find(':');
  if (colon == std::string_view::npos) return valid_reg_name(host);
  return valid_reg_name(host.substr(0, colon)) && valid_port(host.substr(colon + 1));
}

bool parse_target(std::string_view target, Target* out, const char** why) {
  *out = Target{};
  if (target.find('#') != std::string_view::npos) {
    *why = "fragment in the request target";
    return false;
  }
  if (!target.empty() && target[0] == '/') return true;
  if (target == "*") {
    out->form = Target::Form::kAsterisk;
    return true;
  }
  // absolute-form: scheme "://" authority [path-abempty] ["?" query]
  std::size_t colon = target.find(':');
  std::string_view scheme = target.substr(0, colon);
  if (colon == std::string_view::npos || scheme.empty() ||
      !is_alpha(static_cast<unsigned char>(scheme[0]))) {
    *why = "invalid request target";
    return false;
  }
  if (!((scheme.size() == 4 && strncasecmp(scheme.data(), "http", 4) == 0) ||
        (scheme.size() == 5 && strncasecmp(scheme.data(), "https", 5) == 0))) {
    *why = "request target scheme is not http or https";
    return false;
  }
  if (target.substr(colon + 1, 2) != "//") {
    *why = "invalid request target";
    return false;
  }
  std::size_t start = colon + 3;
  std::size_t end = target.find_first_of("/?", start);
  if (end == std::string_view::npos) end = target.size();
  std::string_view authority = target.substr(start, end - start);
  if (authority.find('@') != std::string_view::npos) {
    *why = "userinfo in the request target";
    return false;
  }
  if (authority.empty() || authority[0] == ':' || !valid_host(authority)) {
    *why = "invalid authority in the request target";
    return false;
  }
  out->form = Target::Form::kAbsolute;
  out->authority = authority;
  out->path_at = end;
  return true;
}

}  // namespace spindle::core
