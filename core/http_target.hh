// The request target and the Host field, checked strictly (RFC 9112 3.2,
// 3.3): what is refused here never reaches the app, because a proxy in
// front and the app would otherwise disagree about which host, which path
// or which resource a request names.
#pragma once

#include <cstddef>
#include <string_view>

namespace spindle::core {

struct Target {
  enum class Form { kOrigin, kAbsolute, kAsterisk };
  Form form = Form::kOrigin;
  // The absolute form's authority (host[:port], no userinfo); empty otherwise.
  std::string_view authority;
  // Where the path (or '?', or the end) starts in the target: 0 for the
  // origin form, after the authority for the absolute form.
  std::size_t path_at = 0;
};

// Splits and checks a request target: "/path?query", "*", or
// "http(s)://authority/path?query". Refuses any other form, a fragment,
// another scheme, userinfo and an invalid authority. Returns false with a
// one-line reason in *why.
bool parse_target(std::string_view target, Target* out, const char** why);

// A Host field value: uri-host [":" port], where uri-host is a reg-name,
// an IPv4 address or a bracketed IP literal. The empty value is valid (a
// client sends it when the target has no authority).
bool valid_host(std::string_view host);

}  // namespace spindle::core
