// Small text helpers the protocol code shares.
#pragma once

#include <strings.h>

#include <cstdint>
#include <string_view>

namespace spindle::core {

// ASCII case-insensitive equality (header names, tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// A tchar: a character of a token (RFC 9110 5.6.2), as in method and
// field names. A table: the head scanner asks for every method byte.
namespace detail {
struct TcharTable {
  bool ok[256] = {};
  constexpr TcharTable() {
    for (int c = 33; c < 127; ++c) ok[c] = true;
    for (const char* p = "()<>@,;:\\\"/[]?={}"; *p; ++p) ok[static_cast<unsigned char>(*p)] = false;
  }
};
inline constexpr TcharTable kTchar;
}  // namespace detail

inline bool is_tchar(unsigned char c) { return detail::kTchar.ok[c]; }

// A non-empty run of decimal digits that fits in 64 bits; nothing else.
inline bool parse_u64(std::string_view s, std::uint64_t* out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace spindle::core
