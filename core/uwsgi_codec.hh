// The uwsgi binary protocol (what nginx's uwsgi_pass speaks), as pure
// functions: no I/O, unit-tested in t/unit/test_uwsgi_codec.cc.
//
// A request packet is a 4-byte header, then `size` bytes of variables:
//   u8 modifier1 | u16le size | u8 modifier2 | { u16le klen, key, u16le vlen, value }*
// then the request body (CONTENT_LENGTH bytes). modifier1 0 = WSGI request.
// The response is a plain HTTP/1.x response on the same stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/exchange.hh"

namespace spindle::core::uwsgi {

inline constexpr std::size_t kHeaderSize = 4;

struct PacketHeader {
  std::uint8_t modifier1 = 0;
  std::uint16_t size = 0;
  std::uint8_t modifier2 = 0;
};

enum class Status { kOk, kNeedMore, kMalformed };

// Reads the 4-byte header from p[0..n). kNeedMore when n < 4.
Status parse_header(const char* p, std::size_t n, PacketHeader* out);

// Splits a vars block of exactly n bytes into name/value views into p.
// kMalformed when a length runs past the block or a key is empty.
Status parse_vars(const char* p, std::size_t n, std::vector<Var>* out);

// Appends one variable in wire format (key and value must be < 64 KiB).
void append_var(std::string* out, std::string_view name, std::string_view value);

// A whole request packet: header + vars (no body).
std::string encode_request(std::span<const Var> vars, std::uint8_t modifier1 = 0,
                           std::uint8_t modifier2 = 0);

}  // namespace spindle::core::uwsgi
