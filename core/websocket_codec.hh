// RFC 6455 pieces that need no connection: the opening handshake's accept
// key, frame headers (parse with masking enforced and a size limit, build
// for server frames), payload unmasking, close codes and incremental UTF-8
// validation of text messages. The websocket protocol on a transport is
// built from these (see core/README.md, "Room for later protocols").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spindle::core::ws {

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close status codes this side sends (RFC 6455 7.4.1).
enum CloseCode : int {
  kNormal = 1000,
  kGoingAway = 1001,
  kProtocolError = 1002,
  kUnsupportedData = 1003,
  kInvalidPayload = 1007,  // e.g. a text message that is not UTF-8
  kPolicyViolation = 1008,
  kTooBig = 1009,
  kInternalError = 1011,
};

struct FrameHeader {
  bool fin = false;
  std::uint8_t opcode = 0;
  bool masked = false;
  bool rsv1 = false;  // a compressed message's first frame (RFC 7692)
  std::uint8_t mask[4] = {0, 0, 0, 0};
  std::uint64_t length = 0;      // payload bytes
  std::size_t header_size = 0;   // bytes before the payload
};

enum class Parse { kNeedMore, kOk, kError };

// Parses the frame header at data[0..n). kNeedMore: not all of it is there
// yet. kError: *close_code says how to close (1002 for reserved bits, an
// unknown opcode, a fragmented or oversized control frame, a non-minimal
// length or — with require_mask, as a server must — an unmasked frame;
// 1009 for a payload over max_payload, 0 meaning no limit). RSV1 is
// refused too unless allow_rsv1 (permessage-deflate was negotiated; the
// caller checks it is set only where RFC 7692 allows).
Parse parse_header(const char* data, std::size_t n, bool require_mask, std::uint64_t max_payload,
                   FrameHeader* h, int* close_code, bool allow_rsv1 = false);

// XORs p[0..n) with the mask; `offset` is the position of p[0] in the
// payload (a payload may be unmasked in pieces).
void unmask(char* p, std::size_t n, const std::uint8_t mask[4], std::uint64_t offset);

// Appends the header of an unmasked (server) frame for a payload of n bytes.
void frame_header(std::uint8_t opcode, bool fin, std::uint64_t n, std::string* out);

// A close frame's payload: the code (network order) and a reason cut to
// what fits a control frame.
std::string close_payload(int code, std::string_view reason);

// Whether a peer may send this code in a close frame (RFC 6455 7.4).
bool valid_close_code(int code);

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string accept_key(std::string_view client_key);

// Validates UTF-8 fed in pieces (a text message's fragments; a code point
// may be split across them): rejects overlong forms, surrogates and code
// points past U+10FFFF as soon as they are seen.
class Utf8Validator {
 public:
  // False once the input seen so far cannot be UTF-8.
  bool feed(const char* p, std::size_t n);
  // True when everything fed is valid and no code point is left unfinished.
  bool complete() const { return ok_ && need_ == 0; }
  void reset() { *this = Utf8Validator(); }

 private:
  std::uint32_t cp_ = 0;
  int need_ = 0;           // continuation bytes still expected
  std::uint32_t min_ = 0;  // smallest code point the current form may encode
  bool ok_ = true;
};

}  // namespace spindle::core::ws
