#include "core/request_vars.hh"

#include <strings.h>

#include <algorithm>

#include "core/listener.hh"
#include "core/text.hh"

namespace spindle::core {

void VarsBuilder::clear() {
  arena_.clear();
  vars_.clear();
}

void VarsBuilder::reserve(std::size_t vars, std::size_t bytes) {
  vars_.reserve(vars);
  if (arena_.capacity() < arena_.size() + bytes) {
    std::string bigger;
    bigger.reserve(arena_.size() + bytes);
    bigger.append(arena_);
    const char* old = arena_.data();
    for (Var& v : vars_) {
      auto moved = [&](std::string_view s) {
        auto at = reinterpret_cast<std::uintptr_t>(s.data()) - reinterpret_cast<std::uintptr_t>(old);
        return at <= arena_.size() ? std::string_view(bigger.data() + at, s.size()) : s;
      };
      v.name = moved(v.name);
      v.value = moved(v.value);
    }
    arena_.swap(bigger);
  }
}

// Appends a and b to the arena and returns where a now starts. When the
// arena must grow, the views already handed out are moved with it.
char* VarsBuilder::append(std::string_view a, std::string_view b) {
  std::size_t need = a.size() + b.size();
  if (arena_.capacity() - arena_.size() < need) reserve(0, std::max(need, arena_.size() + 64));
  std::size_t at = arena_.size();
  arena_.append(a);
  arena_.append(b);
  return arena_.data() + at;
}

void VarsBuilder::add(std::string_view name, std::string_view value) {
  char* p = append(name, value);
  vars_.push_back(Var{std::string_view(p, name.size()),
                      std::string_view(p + name.size(), value.size())});
}

void VarsBuilder::add_static(std::string_view name, std::string_view value) {
  char* p = append(value);
  vars_.push_back(Var{name, std::string_view(p, value.size())});
}

std::string_view VarsBuilder::find(std::string_view name) const {
  for (const Var& v : vars_)
    if (v.name == name) return v.value;
  return {};
}

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Repeated fields join with ", " (RFC 9110 5.3), except Cookie, whose
// pairs are separated by "; " (RFC 6265 5.4).
const char* join_separator(std::string_view name) {
  return iequals(name, "cookie") || iequals(name, "HTTP_COOKIE") ? "; " : ", ";
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

void build_http_vars(const RequestHead& head, const Listener& listener,
                     std::string_view remote_addr, std::string_view remote_port, VarsBuilder* out) {
  out->clear();
  // The parser checked the target: an origin-form path, '*', or an
  // absolute form whose authority overrides the Host header (RFC 9112
  // 3.2.2) and whose path is still a local path.
  std::string_view url = head.url;
  std::string_view target = url.substr(head.path_at);
  std::string_view path = target, query;
  std::size_t q = target.find('?');
  if (q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (path.empty()) path = "/";
  std::string_view authority = head.authority;
  char proto[16];
  int n = snprintf(proto, sizeof proto, "HTTP/%d.%d", head.version_major, head.version_minor);

  // Sized up front: the ten variables below, one per header at most, and
  // Host's from an absolute target; names of HTTP_* variables are the
  // header's own plus 5.
  std::size_t bytes = head.method.size() + 2 * url.size() + static_cast<std::size_t>(n) +
                      listener.server_name.size() + listener.server_port.size() +
                      remote_addr.size() + remote_port.size() + 2 * authority.size() + 9;
  for (std::size_t i = 0; i < head.header_count; ++i)
    bytes += head.headers[i].name.size() + 5 + head.headers[i].value.size();
  out->reserve(10 + head.header_count + (authority.empty() ? 0 : 1), bytes);
  out->add_static("REQUEST_METHOD", head.method);
  out->add_static("SCRIPT_NAME", "");
  out->add_static("PATH_INFO", percent_decode(path));
  out->add_static("QUERY_STRING", query);
  out->add_static("REQUEST_URI", url);
  out->add_static("SERVER_PROTOCOL", std::string_view(proto, static_cast<std::size_t>(n)));
  out->add_static("SERVER_NAME", listener.server_name);
  out->add_static("SERVER_PORT", listener.server_port);
  out->add_static("REMOTE_ADDR", remote_addr);
  out->add_static("REMOTE_PORT", remote_port);

  std::string key, value;
  bool host_seen = false;
  for (std::size_t i = 0; i < head.header_count; ++i) {
    const HeaderField& f = head.headers[i];
    // A name with '_' would alias a '-' name once mapped to HTTP_*: a
    // client could spoof a header a proxy in front believes it set.
    if (f.name.find('_') != std::string::npos) continue;
    bool seen = false;
    for (std::size_t j = 0; j < i && !seen; ++j) seen = iequals(head.headers[j].name, f.name);
    if (seen) continue;
    value = f.value;
    const char* sep = join_separator(f.name);
    for (std::size_t j = i + 1; j < head.header_count; ++j) {
      if (iequals(head.headers[j].name, f.name)) {
        value += sep;
        value += head.headers[j].value;
      }
    }
    if (strcasecmp(f.name.c_str(), "content-type") == 0) {
      out->add_static("CONTENT_TYPE", value);
      continue;
    }
    if (strcasecmp(f.name.c_str(), "content-length") == 0) {
      out->add_static("CONTENT_LENGTH", value);
      continue;
    }
    if (!authority.empty() && iequals(f.name, "host")) {
      host_seen = true;
      out->add_static("HTTP_HOST", authority);
      continue;
    }
    key.assign("HTTP_");
    for (char c : f.name)
      key.push_back(c == '-' ? '_' : static_cast<char>(toupper(static_cast<unsigned char>(c))));
    out->add(key, value);
  }
  if (!authority.empty() && !host_seen) out->add_static("HTTP_HOST", authority);
}

bool build_uwsgi_vars(std::span<const Var> raw, const Listener& listener, VarsBuilder* out,
                      std::uint64_t* content_length, std::string* why) {
  out->clear();
  *content_length = 0;
  // Repeated names, found by sorting (a packet may hold thousands of
  // variables): next[i] links a variable to the next of the same name,
  // later[i] marks all but the first.
  static thread_local std::vector<std::uint32_t> order, next;
  static thread_local std::vector<char> later;
  const std::size_t n = raw.size();
  order.resize(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return raw[a].name < raw[b].name; });
  next.assign(n, UINT32_MAX);
  later.assign(n, 0);
  for (std::size_t k = 1; k < n; ++k) {
    const Var& v = raw[order[k]];
    if (v.name != raw[order[k - 1]].name) continue;
    if (!v.name.starts_with("HTTP_")) {
      *why = "repeated uwsgi variable ";
      why->append(v.name);
      return false;
    }
    next[order[k - 1]] = order[k];
    later[order[k]] = 1;
  }
  std::size_t bytes = 2 * 64 + listener.server_name.size() + listener.server_port.size();
  for (const Var& v : raw) bytes += v.name.size() + v.value.size() + 2;
  out->reserve(n + 6, bytes);
  bool has_script = false, has_path = false, has_query = false, has_proto = false;
  bool has_name = false, has_port = false, has_method = false;
  std::string_view uri;
  std::string joined;
  for (std::size_t i = 0; i < n; ++i) {
    const Var& v = raw[i];
    // nginx passes every request header as HTTP_*, Content-Type and
    // Content-Length too; the environ carries those without the prefix.
    if (later[i] || v.name == "HTTP_CONTENT_TYPE" || v.name == "HTTP_CONTENT_LENGTH") continue;
    if (next[i] == UINT32_MAX) {
      out->add(v.name, v.value);
    } else {
      joined.assign(v.value);
      for (std::uint32_t j = next[i]; j != UINT32_MAX; j = next[j]) {
        joined += join_separator(v.name);
        joined += raw[j].value;
      }
      out->add(v.name, joined);
    }
    has_method |= v.name == "REQUEST_METHOD" && !v.value.empty();
    has_script |= v.name == "SCRIPT_NAME";
    has_path |= v.name == "PATH_INFO";
    has_query |= v.name == "QUERY_STRING";
    has_proto |= v.name == "SERVER_PROTOCOL";
    has_name |= v.name == "SERVER_NAME";
    has_port |= v.name == "SERVER_PORT";
    if (v.name == "REQUEST_URI") uri = v.value;
    if (v.name == "CONTENT_LENGTH" && !v.value.empty() && !parse_u64(v.value, content_length)) {
      *why = "bad CONTENT_LENGTH";
      return false;
    }
  }
  if (!has_method) {
    *why = "uwsgi packet without REQUEST_METHOD";
    return false;
  }
  std::string_view target = uri.substr(0, uri.find('#'));
  std::size_t q = target.find('?');
  if (!has_script) out->add_static("SCRIPT_NAME", "");
  if (!has_path) out->add_static("PATH_INFO", percent_decode(target.substr(0, q)));
  if (!has_query)
    out->add_static("QUERY_STRING",
                    q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  if (!has_proto) out->add_static("SERVER_PROTOCOL", "HTTP/1.0");
  if (!has_name) out->add_static("SERVER_NAME", listener.server_name);
  if (!has_port) out->add_static("SERVER_PORT", listener.server_port);
  return true;
}

}  // namespace spindle::core
