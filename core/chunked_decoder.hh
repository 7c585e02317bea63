// The chunked transfer coding of a request body (RFC 9112 7.1), decoded
// byte by byte so that it never depends on how the client's packets were
// cut.
//
// What it accepts and refuses, and why it is ours rather than llhttp's:
//  - chunk extensions are parsed to the grammar, whitespace (BWS) around
//    ';' and '=' included, quoted values included, and then ignored. Their
//    bytes count toward the body limit and are bounded per message, so an
//    extension can never be a way around --limit-post;
//  - the trailer section is read, bounded, and dropped: trailer fields are
//    not headers (RFC 9110 6.5.1) and must never reach the environ;
//  - line ends are CRLF, strictly: a bare LF inside the framing is where
//    front-end proxies and back-ends disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spindle::core {

class ChunkedDecoder {
 public:
  struct Limits {
    std::uint64_t max_body = 0;      // payload + extension bytes; 0: unlimited
    std::size_t max_extensions = 0;  // extension bytes per message
    std::size_t max_trailers = 0;    // trailer section bytes per message
  };

  void set_limits(const Limits& l) { limits_ = l; }
  void reset();

  // Decodes data[0..n), appending payload bytes to *body. Returns the bytes
  // consumed: all of them, or fewer when the message ends inside data (it
  // stops right after the final CRLF). -1 on bad input (status()/reason()).
  long feed(const char* data, std::size_t n, std::string* body);

  bool done() const { return state_ == State::kDone; }
  std::uint64_t payload() const { return payload_; }
  std::uint64_t extension_bytes() const { return ext_bytes_; }
  int status() const { return status_; }
  const char* reason() const { return reason_; }

 private:
  enum class State {
    kSize,          // hex digits of the chunk size
    kBeforeSemi,    // BWS after the size: only ';' may follow
    kExtNameStart,  // after ';': BWS, then a token
    kExtName,
    kAfterExtName,   // BWS, then '=', ';' or CR
    kExtValueStart,  // after '=': BWS, then a token or a quoted string
    kExtToken,
    kExtQuoted,
    kExtQuotedPair,
    kAfterExtValue,
    kLineLf,  // CR seen at the end of a chunk line
    kData,
    kDataCr,
    kDataLf,
    kTrailerLineStart,
    kTrailerLine,
    kTrailerLf,
    kEndLf,  // CR of the empty line that ends the message
    kDone,
    kError,
  };

  long fail(int status, const char* reason);
  bool count_extension();

  Limits limits_;
  State state_ = State::kSize;
  std::uint64_t size_ = 0;  // of the chunk being read
  std::uint64_t left_ = 0;  // its payload bytes still to come
  int digits_ = 0;
  std::uint64_t payload_ = 0;
  std::uint64_t ext_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  int status_ = 0;
  const char* reason_ = "";
};

}  // namespace spindle::core
