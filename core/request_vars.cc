#include "core/request_vars.hh"

#include <strings.h>

#include "core/listener.hh"
#include "core/text.hh"

namespace spindle::core {

void VarsBuilder::clear() {
  arena_.clear();
  offsets_.clear();
  vars_.clear();
}

void VarsBuilder::add(std::string_view name, std::string_view value) {
  offsets_.push_back(static_cast<std::uint32_t>(arena_.size()));
  offsets_.push_back(static_cast<std::uint32_t>(name.size()));
  arena_.append(name);
  offsets_.push_back(static_cast<std::uint32_t>(arena_.size()));
  offsets_.push_back(static_cast<std::uint32_t>(value.size()));
  arena_.append(value);
}

std::span<const Var> VarsBuilder::finish() {
  vars_.clear();
  const char* base = arena_.data();
  for (std::size_t i = 0; i + 3 < offsets_.size(); i += 4) {
    vars_.push_back(Var{std::string_view(base + offsets_[i], offsets_[i + 1]),
                        std::string_view(base + offsets_[i + 2], offsets_[i + 3])});
  }
  return vars_;
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
                     std::string_view remote_addr, std::string_view remote_port,
                     VarsBuilder* out) {
  out->clear();
  std::string_view url = head.url;
  std::string_view target = url.substr(0, url.find('#'));  // a fragment is not sent, but may be
  std::string_view path = target, query;
  std::size_t q = target.find('?');
  if (q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  // An absolute-form target (GET http://host/x) still names a local path,
  // and its authority overrides the Host header (RFC 9112 3.2.2).
  std::string_view authority;
  if (path.size() > 8 && (strncasecmp(path.data(), "http://", 7) == 0 ||
                          strncasecmp(path.data(), "https://", 8) == 0)) {
    std::size_t start = path.find("//") + 2;
    std::size_t slash = path.find('/', start);
    authority = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  char proto[16];
  int n = snprintf(proto, sizeof proto, "HTTP/%d.%d", head.version_major, head.version_minor);

  out->add("REQUEST_METHOD", head.method);
  out->add("SCRIPT_NAME", "");
  out->add("PATH_INFO", percent_decode(path));
  out->add("QUERY_STRING", query);
  out->add("REQUEST_URI", url);
  out->add("SERVER_PROTOCOL", std::string_view(proto, static_cast<std::size_t>(n)));
  out->add("SERVER_NAME", listener.server_name);
  out->add("SERVER_PORT", listener.server_port);
  out->add("REMOTE_ADDR", remote_addr);
  out->add("REMOTE_PORT", remote_port);

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
    for (std::size_t j = i + 1; j < head.header_count; ++j) {
      if (iequals(head.headers[j].name, f.name)) {
        value += ", ";
        value += head.headers[j].value;
      }
    }
    if (strcasecmp(f.name.c_str(), "content-type") == 0) {
      out->add("CONTENT_TYPE", value);
      continue;
    }
    if (strcasecmp(f.name.c_str(), "content-length") == 0) {
      out->add("CONTENT_LENGTH", value);
      continue;
    }
    if (!authority.empty() && iequals(f.name, "host")) {
      host_seen = true;
      out->add("HTTP_HOST", authority);
      continue;
    }
    key.assign("HTTP_");
    for (char c : f.name)
      key.push_back(c == '-' ? '_' : static_cast<char>(toupper(static_cast<unsigned char>(c))));
    out->add(key, value);
  }
  if (!authority.empty() && !host_seen) out->add("HTTP_HOST", authority);
}

}  // namespace spindle::core
