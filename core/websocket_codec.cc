// RFC 6455 framing, close codes, UTF-8 validation and the handshake key
// (SHA-1 per FIPS 180-4, base64 per RFC 4648). See websocket_codec.hh.
#include "core/websocket_codec.hh"

#include <cstring>

namespace spindle::core::ws {

namespace {

bool is_control(std::uint8_t op) { return op & 0x8; }

bool known_opcode(std::uint8_t op) {
  return op == kContinuation || op == kText || op == kBinary || op == kClose || op == kPing ||
         op == kPong;
}

std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

// SHA-1 of a short message (the key and the GUID: one or two blocks).
void sha1(const std::string& msg, std::uint8_t out[20]) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string m = msg;
  std::uint64_t bits = static_cast<std::uint64_t>(msg.size()) * 8;
  m.push_back(static_cast<char>(0x80));
  while (m.size() % 64 != 56) m.push_back('\0');
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>((bits >> (i * 8)) & 0xff));
  for (std::size_t off = 0; off < m.size(); off += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* b = reinterpret_cast<const unsigned char*>(m.data() + off + i * 4);
      w[i] = (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) |
             (std::uint32_t(b[2]) << 8) | b[3];
    }
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j) out[i * 4 + j] = static_cast<std::uint8_t>(h[i] >> (24 - j * 8));
}

std::string base64(const std::uint8_t* p, std::size_t n) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = std::uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= std::uint32_t(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
  return out;
}

}  // namespace

Parse parse_header(const char* data, std::size_t n, bool require_mask, std::uint64_t max_payload,
                   FrameHeader* h, int* close_code, bool allow_rsv1) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  if (n < 2) return Parse::kNeedMore;
  auto error = [&](int code) {
    *close_code = code;
    return Parse::kError;
  };
  h->fin = p[0] & 0x80;
  h->opcode = p[0] & 0x0f;
  h->masked = p[1] & 0x80;
  // Only permessage-deflate's RSV1 may be used; RSV2 and RSV3 never.
  h->rsv1 = p[0] & 0x40;
  if ((p[0] & 0x30) || (h->rsv1 && !allow_rsv1)) return error(kProtocolError);
  if (!known_opcode(h->opcode)) return error(kProtocolError);
  if (require_mask && !h->masked) return error(kProtocolError);
  std::uint64_t len = p[1] & 0x7f;
  std::size_t at = 2;
  if (is_control(h->opcode) && (!h->fin || len > 125)) return error(kProtocolError);
  if (len == 126) {
    if (n < at + 2) return Parse::kNeedMore;
    len = (std::uint64_t(p[at]) << 8) | p[at + 1];
    at += 2;
    if (len < 126) return error(kProtocolError);
  } else if (len == 127) {
    if (n < at + 8) return Parse::kNeedMore;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[at + i];
    at += 8;
    if (len <= 0xffff || (len >> 63)) return error(kProtocolError);
  }
  if (h->masked) {
    if (n < at + 4) return Parse::kNeedMore;
    memcpy(h->mask, p + at, 4);
    at += 4;
  }
  if (max_payload && len > max_payload) return error(kTooBig);
  h->length = len;
  h->header_size = at;
  return Parse::kOk;
}

void unmask(char* p, std::size_t n, const std::uint8_t mask[4], std::uint64_t offset) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ mask[(offset + i) & 3]);
}

void frame_header(std::uint8_t opcode, bool fin, std::uint64_t n, std::string* out) {
  out->push_back(static_cast<char>((fin ? 0x80 : 0) | (opcode & 0x0f)));
  if (n < 126) {
    out->push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    out->push_back(static_cast<char>(126));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n & 0xff));
  } else {
    out->push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  }
}

std::string close_payload(int code, std::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>((code >> 8) & 0xff));
  out.push_back(static_cast<char>(code & 0xff));
  // 125 bytes at most in a control frame; never cut a UTF-8 sequence.
  std::size_t room = reason.size() < 123 ? reason.size() : 123;
  while (room > 0 && room < reason.size() &&
         (static_cast<unsigned char>(reason[room]) & 0xc0) == 0x80)
    --room;
  out.append(reason.substr(0, room));
  return out;
}

bool valid_close_code(int code) {
  if (code >= 3000 && code <= 4999) return true;  // registered / private use
  switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
    case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:  // registered with IANA after RFC 6455
      return true;
    default:
      return false;  // 1004-1006 and 1015 are never sent; the rest reserved
  }
}

std::string accept_key(std::string_view client_key) {
  std::string msg(client_key);
  msg += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // the GUID of RFC 6455 1.3
  std::uint8_t digest[20];
  sha1(msg, digest);
  return base64(digest, sizeof digest);
}

bool Utf8Validator::feed(const char* p, std::size_t n) {
  for (std::size_t i = 0; ok_ && i < n; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (need_ == 0) {
      if (c < 0x80) continue;
      if (c >= 0xc2 && c <= 0xdf) {
        cp_ = c & 0x1f;
        need_ = 1;
        min_ = 0x80;
      } else if (c >= 0xe0 && c <= 0xef) {
        cp_ = c & 0x0f;
        need_ = 2;
        min_ = 0x800;
      } else if (c >= 0xf0 && c <= 0xf4) {
        cp_ = c & 0x07;
        need_ = 3;
        min_ = 0x10000;
      } else {
        ok_ = false;  // a stray continuation byte, 0xc0/0xc1 or past 0xf4
      }
      continue;
    }
    if ((c & 0xc0) != 0x80) {
      ok_ = false;
      break;
    }
    cp_ = (cp_ << 6) | (c & 0x3f);
    --need_;
    // Reject as early as the prefix decides it: overlong forms, surrogates
    // and code points past U+10FFFF (so a bad message fails fast).
    std::uint32_t lowest = cp_ << (6 * need_);
    std::uint32_t highest = lowest | ((1u << (6 * need_)) - 1);
    if (highest < min_ || lowest > 0x10ffff || (lowest >= 0xd800 && highest <= 0xdfff) ||
        (need_ == 0 && cp_ >= 0xd800 && cp_ <= 0xdfff))
      ok_ = false;
  }
  return ok_;
}

}  // namespace spindle::core::ws
