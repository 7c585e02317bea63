#include "core/chunked_decoder.hh"

#include <cstring>

#include "core/text.hh"

namespace spindle::core {

namespace {

// More hex digits than this is no chunk size a body limit could allow; it
// also bounds a size line padded with leading zeros.
constexpr int kMaxSizeDigits = 16;

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_ws(unsigned char c) { return c == ' ' || c == '\t'; }

// qdtext and the octets a quoted-pair may escape (RFC 9110 5.6.4).
bool is_qdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
bool is_quotable(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::kSize;
  size_ = left_ = payload_ = ext_bytes_ = 0;
  digits_ = 0;
  trailer_bytes_ = 0;
  status_ = 0;
  reason_ = "";
}

long ChunkedDecoder::fail(int status, const char* reason) {
  state_ = State::kError;
  status_ = status;
  reason_ = reason;
  return -1;
}

// Every byte of a chunk line after the size is an extension byte: it is
// bounded on its own and counts toward the body limit.
bool ChunkedDecoder::count_extension() {
  ++ext_bytes_;
  if (limits_.max_extensions && ext_bytes_ > limits_.max_extensions) {
    fail(400, "chunk extensions too long");
    return false;
  }
  if (limits_.max_body && payload_ + ext_bytes_ > limits_.max_body) {
    fail(413, "request body too large");
    return false;
  }
  return true;
}

long ChunkedDecoder::feed(const char* data, std::size_t n, std::string* body) {
  if (state_ == State::kError) return -1;
  std::size_t i = 0;
  while (i < n && state_ != State::kDone) {
    const auto c = static_cast<unsigned char>(data[i]);
    switch (state_) {
      case State::kSize: {
        int v = hex_value(c);
        if (v >= 0) {
          if (++digits_ > kMaxSizeDigits) return fail(400, "chunk size too long");
          size_ = size_ * 16 + static_cast<std::uint64_t>(v);
          break;
        }
        if (digits_ == 0) return fail(400, "invalid chunk size");
        if (limits_.max_body && size_ > limits_.max_body - payload_)
          return fail(413, "request body too large");
        if (c == '\r') {
          state_ = State::kLineLf;
        } else if (c == ';') {
          if (!count_extension()) return -1;
          state_ = State::kExtNameStart;
        } else if (is_ws(c)) {
          if (!count_extension()) return -1;
          state_ = State::kBeforeSemi;
        } else {
          return fail(400, "invalid chunk size");
        }
        break;
      }
      case State::kBeforeSemi:
        if (!count_extension()) return -1;
        if (c == ';')
          state_ = State::kExtNameStart;
        else if (!is_ws(c))
          return fail(400, "invalid chunk extension");
        break;
      case State::kExtNameStart:
        if (!count_extension()) return -1;
        if (is_tchar(c))
          state_ = State::kExtName;
        else if (!is_ws(c))
          return fail(400, "invalid chunk extension");
        break;
      case State::kExtName:
      case State::kAfterExtName:
        if (c == '\r') {
          state_ = State::kLineLf;
          break;
        }
        if (!count_extension()) return -1;
        if (c == '=')
          state_ = State::kExtValueStart;
        else if (c == ';')
          state_ = State::kExtNameStart;
        else if (is_ws(c))
          state_ = State::kAfterExtName;
        else if (!is_tchar(c) || state_ == State::kAfterExtName)
          return fail(400, "invalid chunk extension");
        break;
      case State::kExtValueStart:
        if (!count_extension()) return -1;
        if (c == '"')
          state_ = State::kExtQuoted;
        else if (is_tchar(c))
          state_ = State::kExtToken;
        else if (!is_ws(c))
          return fail(400, "invalid chunk extension");
        break;
      case State::kExtToken:
      case State::kAfterExtValue:
        if (c == '\r') {
          state_ = State::kLineLf;
          break;
        }
        if (!count_extension()) return -1;
        if (c == ';')
          state_ = State::kExtNameStart;
        else if (is_ws(c))
          state_ = State::kAfterExtValue;
        else if (!is_tchar(c) || state_ == State::kAfterExtValue)
          return fail(400, "invalid chunk extension");
        break;
      case State::kExtQuoted:
        if (!count_extension()) return -1;
        if (c == '"')
          state_ = State::kAfterExtValue;
        else if (c == '\\')
          state_ = State::kExtQuotedPair;
        else if (!is_qdtext(c))
          return fail(400, "invalid chunk extension");
        break;
      case State::kExtQuotedPair:
        if (!count_extension()) return -1;
        if (!is_quotable(c)) return fail(400, "invalid chunk extension");
        state_ = State::kExtQuoted;
        break;
      case State::kLineLf:
        if (c != '\n') return fail(400, "chunk line not ended by CRLF");
        if (size_ == 0) {
          state_ = State::kTrailerLineStart;
        } else {
          left_ = size_;
          state_ = State::kData;
        }
        break;
      case State::kData: {
        std::size_t k = n - i;
        if (k > left_) k = static_cast<std::size_t>(left_);
        body->append(data + i, k);
        payload_ += k;
        left_ -= k;
        i += k;
        if (left_ == 0) state_ = State::kDataCr;
        continue;
      }
      case State::kDataCr:
        if (c != '\r') return fail(400, "chunk data not followed by CRLF");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return fail(400, "chunk data not followed by CRLF");
        state_ = State::kSize;
        size_ = 0;
        digits_ = 0;
        break;
      case State::kTrailerLineStart:
      case State::kTrailerLine:
      case State::kTrailerLf:
        // Read to be skipped, never kept: see the header comment.
        if (++trailer_bytes_ > limits_.max_trailers && limits_.max_trailers)
          return fail(431, "trailer section too large");
        if (state_ == State::kTrailerLf) {
          if (c != '\n') return fail(400, "trailer line not ended by CRLF");
          state_ = State::kTrailerLineStart;
        } else if (c == '\r') {
          state_ = state_ == State::kTrailerLineStart ? State::kEndLf : State::kTrailerLf;
        } else if (c == '\n' || c == '\0' || (state_ == State::kTrailerLineStart && is_ws(c))) {
          return fail(400, "malformed trailer section");
        } else {
          state_ = State::kTrailerLine;
        }
        break;
      case State::kEndLf:
        if (c != '\n') return fail(400, "chunked body not ended by CRLF");
        state_ = State::kDone;
        break;
      case State::kDone:
      case State::kError: break;
    }
    ++i;
  }
  return static_cast<long>(i);
}

}  // namespace spindle::core
