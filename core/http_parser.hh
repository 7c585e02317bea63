// HTTP/1.x request parsing: turns bytes into a request head, body bytes
// (de-chunked) and a message-complete mark, and maps every kind of bad input
// to the status the client should get (400, 405, 413, 431, 501, 505).
//
// Three parts, each seeing only its own bytes:
//  - a scanner over the raw head: it takes the method itself (any token, so
//    extension methods reach the app), finds where the head ends, and
//    refuses what llhttp would let through: a second space in the request
//    line, a fragment, a folded header line (obs-fold);
//  - llhttp, fed exactly the head (with a stand-in for the method): the
//    request line's and the fields' syntax, Content-Length, Transfer-Encoding
//    and their conflicts, Connection;
//  - the body: counted to Content-Length, or de-chunked by ChunkedDecoder
//    (trailer fields are dropped there and never become headers).
// Then the head is checked as a whole: Host (exactly one, valid; required
// in HTTP/1.1) and the request target (origin, absolute or '*' form).
//
// The parser is fed whatever bytes arrive; it stops at the end of each
// message so pipelined requests are taken one at a time. Header names and
// values are copied out, so the caller may reuse its read buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/chunked_decoder.hh"
#include "llhttp.h"

namespace spindle::core {

struct HeaderField {
  std::string name;
  std::string value;
};

struct RequestHead {
  std::string method;
  std::string url;
  int version_major = 1;
  int version_minor = 1;
  std::vector<HeaderField> headers;  // in arrival order; unused tail kept for reuse
  std::size_t header_count = 0;
  bool keep_alive = true;
  bool chunked = false;
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  bool expect_continue = false;
  bool upgrade = false;
  // From the request target: the absolute form's authority (it replaces
  // Host), and where the path starts in url (0 for the origin form).
  std::string authority;
  std::size_t path_at = 0;
};

class HttpParser {
 public:
  // More fields than this is an attack or a broken client (Apache's default
  // limit too); it also bounds the per-request work on duplicate names.
  static constexpr std::size_t kMaxHeaders = 100;

  struct Limits {
    std::size_t max_head = 8192;  // request line + headers, bytes
    std::uint64_t max_body = 0;   // 0: unlimited
  };

  HttpParser();
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  void set_limits(const Limits& l) { limits_ = l; }

  // Starts a new message (the first one, or the next after message_complete()).
  void begin();

  // Parses data[0..n). Returns the number of bytes consumed (it stops right
  // after a complete message) or -1 on bad input (see error_status()).
  // De-chunked body bytes are appended to *body.
  long feed(const char* data, std::size_t n, std::string* body);

  bool head_complete() const { return head_complete_; }
  bool message_complete() const { return message_complete_; }
  const RequestHead& head() const { return head_; }
  std::uint64_t body_received() const { return body_received_; }

  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }

 private:
  // Where the head scanner is.
  enum class Scan {
    kLead,  // empty lines before the request line are skipped
    kLeadLf,
    kMethod,
    kTargetStart,  // right after the method's space
    kTarget,
    kVersionStart,
    kVersion,
    kLineStart,  // a header line, or the empty line that ends the head
    kField,
    kEndLf,
    kDone,
  };

  static int on_url(llhttp_t*, const char*, std::size_t);
  static int on_header_field(llhttp_t*, const char*, std::size_t);
  static int on_header_value(llhttp_t*, const char*, std::size_t);
  static int on_headers_complete(llhttp_t*);
  static const llhttp_settings_t* shared_settings();
  int fail(int status, const char* reason);  // returns HPE_USER, for callbacks
  long feed_head(const char* data, std::size_t n);
  long run_llhttp(const char* data, std::size_t n, bool head_ends);
  long feed_body(const char* data, std::size_t n, std::string* body);
  int check_head();

  llhttp_t parser_;
  Limits limits_;
  RequestHead head_;
  Scan scan_ = Scan::kLead;
  std::size_t head_raw_ = 0;  // head bytes so far, every one counted
  std::unique_ptr<ChunkedDecoder> chunked_;  // made by the first chunked body
  std::uint64_t body_left_ = 0;  // Content-Length bytes still to come
  std::uint64_t body_received_ = 0;
  bool in_value_ = false;
  bool head_complete_ = false;
  bool message_complete_ = false;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace spindle::core
